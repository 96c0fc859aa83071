"""``seg collect urls`` and the download options shared with the web search commands."""

from __future__ import annotations

import json

import click

from seg import cli_options as opt
from seg.collector.download import DownloadOptions

_DEFAULTS = DownloadOptions()
#: Option keys that :func:`download_options` adds and :func:`download_options_from` pops.
OPTION_KEYS = ("workers", "timeout", "retries", "max_size", "allow_private", "rate", "near_duplicates")


def download_options(command):
    """--workers, --timeout, --retries, --max-size, --allow-private, --rate and --near-duplicates."""
    options = [
        click.option(
            "--workers",
            type=click.IntRange(min=1),
            default=_DEFAULTS.workers,
            show_default=True,
            help="Concurrent downloads.",
        ),
        click.option(
            "--timeout",
            type=click.FloatRange(min=0, min_open=True),
            default=_DEFAULTS.timeout,
            show_default=True,
            help="Seconds to connect and between reads (a whole image gets three times this).",
        ),
        click.option(
            "--retries",
            type=click.IntRange(min=0),
            default=_DEFAULTS.retries,
            show_default=True,
            help="Extra tries after timeouts, connection errors, 429 and 5xx.",
        ),
        click.option(
            "--max-size",
            type=click.FloatRange(min=0, min_open=True),
            default=_DEFAULTS.max_bytes / 2**20,
            show_default=True,
            help="Largest image in MB (MiB); larger downloads are refused.",
        ),
        click.option(
            "--allow-private",
            is_flag=True,
            help="Also fetch from loopback, private and link-local addresses (refused by default).",
        ),
        click.option(
            "--rate",
            type=click.FloatRange(min=0),
            default=_DEFAULTS.host_rate,
            show_default=True,
            help="Most requests per second to one host (0: no limit).",
        ),
        click.option(
            "--near-duplicates",
            type=click.IntRange(-1, 64),
            default=_DEFAULTS.near_duplicates,
            show_default=True,
            help="Bits apart for two perceptual hashes to be near-duplicates (-1: keep near-duplicates).",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def download_options_from(params: dict) -> DownloadOptions:
    """Pop the :func:`download_options` keys from a command's keyword arguments into DownloadOptions."""
    return DownloadOptions(
        workers=params.pop("workers"),
        timeout=params.pop("timeout"),
        retries=params.pop("retries"),
        max_bytes=max(1, round(params.pop("max_size") * 2**20)),
        allow_private=params.pop("allow_private"),
        host_rate=params.pop("rate"),
        near_duplicates=params.pop("near_duplicates"),
    )


@click.command("urls")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--out", "-o", type=click.Path(file_okay=False), required=True, help="Output folder (images/, manifest.csv)."
)
@click.option("--limit", type=click.IntRange(min=1), help="Stop once this many images are kept (earlier runs count).")
@download_options
@opt.overwrite
def urls(file, out, limit, overwrite, **params):
    """Download the images listed in FILE: real images only, duplicates removed, resumable.

    FILE holds one URL per line (blank lines and # comments ignored), or is a CSV with an image_url (or url) column
    and optional title, page_url, licence, query and thumbnail_url columns. The output folder gets images/ (files
    named by content), manifest.csv (one row per URL: status, error, hashes, provenance) and dataset/. Run the same
    command again to resume: finished URLs are skipped, transient failures tried again.

    \b
    Example:
      seg collect urls photos.txt --out photos/ --limit 200
      seg collect urls found.csv --out found/ --workers 16 --rate 2 --max-size 20
    """
    from seg.collector.download import download
    from seg.collector.url_list import read_url_file

    options = download_options_from(params)
    candidates = read_url_file(file)
    report = download(
        candidates,
        out,
        options=options,
        limit=limit,
        overwrite=overwrite,
        progress=opt.progress_bar("downloading", "url"),
    )
    click.echo(json.dumps(report))
