"""``seg collect google`` and ``seg collect bing``: web image search in headless Chromium, then download.

Both commands are built by :func:`search_command` from the engine's name; the engine's page structure is not here but
in its profile (``seg/collector/engines/<name>.json``), which ``--profile`` replaces and ``--print-profile`` shows.
"""

from __future__ import annotations

import json

import click

from seg import cli_options as opt
from seg.cli_collect_urls import download_options, download_options_from

#: Filter values of the shipped profiles, for --help (a --profile file may define others; tests keep these in step).
FILTER_HELP = {
    "size": ("large", "medium", "icon"),
    "type": ("photo", "clipart", "lineart", "face", "animated"),
    "colour": (
        "color",
        "gray",
        "transparent",
        "red",
        "orange",
        "yellow",
        "green",
        "teal",
        "blue",
        "purple",
        "pink",
        "white",
        "black",
        "brown",
    ),
    "rights": ("any", "creative-commons", "commercial"),
    "safe": ("on", "off"),
}
FILTER_TEXT = {
    "size": "Image size.",
    "type": "Kind of image.",
    "colour": "Colour: color, gray (black and white), transparent background, or a dominant colour.",
    "rights": "Usage rights (Bing also has public-domain); the manifest's licence column records the choice.",
    "safe": "Safe search (default: the engine's own).",
}


def _filter_options(command):
    for name in reversed(list(FILTER_HELP)):
        flags = ["--colour", "--color", "colour"] if name == "colour" else [f"--{name}"]
        command = click.option(*flags, metavar="[" + "|".join(FILTER_HELP[name]) + "]", help=FILTER_TEXT[name])(command)
    return command


def search_command(engine: str) -> click.Command:
    """The ``seg collect <engine>`` command for a shipped engine profile."""

    @click.command(engine)
    @click.argument("queries", nargs=-1, metavar="QUERY...")
    @click.option(
        "--limit",
        "-n",
        type=click.IntRange(min=1),
        default=50,
        show_default=True,
        help="Images to keep for EACH query (earlier runs into --out count).",
    )
    @click.option(
        "--out", "-o", type=click.Path(file_okay=False), help="Output folder (images/, manifest.csv, dataset/)."
    )
    @_filter_options
    @click.option(
        "--profile",
        type=click.Path(exists=True, dir_okay=False),
        help=f"An engine profile file to use instead of the shipped '{engine}' one (start from --print-profile).",
    )
    @click.option("--print-profile", is_flag=True, help="Print the engine profile (shipped, or --profile) and exit.")
    @click.option(
        "--page-timeout",
        type=click.FloatRange(min=0, min_open=True),
        default=15.0,
        show_default=True,
        help="Seconds for a results page to show its results.",
    )
    @click.option("--show-browser", is_flag=True, help="Run Chromium in a window (needs a display), to watch it.")
    @download_options
    @opt.overwrite
    def command(queries, limit, out, profile, print_profile, page_timeout, show_browser, overwrite, **params):
        from pathlib import Path

        from seg.collector.engine_profile import load_profile, shipped_profile_path
        from seg.collector.search import collect_images
        from seg.errors import SegError

        path = Path(profile) if profile else shipped_profile_path(engine)
        if print_profile:
            click.echo(path.read_text(encoding="utf-8"), nl=False)
            return
        if not queries:
            raise click.UsageError("expected at least one QUERY")
        if not out:
            raise click.UsageError("missing option '--out'")
        filters = {name: params.pop(name) for name in FILTER_HELP}
        options = download_options_from(params)
        report = collect_images(
            load_profile(path),
            list(queries),
            out,
            limit=limit,
            filters=filters,
            options=options,
            overwrite=overwrite,
            page_timeout=page_timeout,
            headless=not show_browser,
            progress=opt.progress_bar(f"{engine} images", "img"),
        )
        click.echo(json.dumps(report))
        if report["problems"]:
            raise SegError("; ".join(report["problems"]))

    name = engine.capitalize()
    command.help = f"""Search {name} Images for each QUERY in headless Chromium and download up to --limit images EACH.

    Each result is opened to reach its full-size image; when that fails the thumbnail is kept instead (the
    manifest's source column says which). All queries go into one --out folder: images/, one manifest.csv (with a
    query column) and dataset/. Run the same command again to resume. When {name}'s page layout has changed, the
    command fails naming the profile to fix: copy it with --print-profile, edit its selectors, pass it with --profile.

    \b
    Example:
      seg collect {engine} "red kite" "kestrel hovering" --limit 200 --size large --type photo --out birds/
      seg collect {engine} --print-profile > {engine}.json
      seg collect {engine} "red kite" --profile {engine}.json --rights creative-commons --safe on --out birds/
    """
    return command


google = search_command("google")
bing = search_command("bing")
