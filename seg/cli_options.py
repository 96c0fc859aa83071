"""Options shared by seg's commands and their parsing callbacks (usage errors exit 2)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable

import click

from seg.errors import OptionError, SegError
from seg.formats import FORMATS


def parse_rename(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> dict[str, str]:
    rename = {}
    for value in values:
        old, sep, new = value.partition("=")
        if not sep or not old or not new:
            raise click.BadParameter(f"expected OLD=NEW, got {value!r}", ctx=ctx, param=param)
        rename[old] = new
    return rename


def parse_classes(ctx: click.Context, param: click.Parameter, value: str | None) -> list[str] | None:
    if value is None:
        return None
    names = [n.strip() for n in value.split(",") if n.strip()]
    if not names:
        raise click.BadParameter("expected comma-separated class names", ctx=ctx, param=param)
    return names


def parse_size(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[int, int] | None:
    if value is None:
        return None
    width, sep, height = value.lower().partition("x")
    try:
        size = int(width), int(height)
    except ValueError:
        size = None
    if not sep or size is None or min(size) <= 0:
        raise click.BadParameter(f"expected WIDTHxHEIGHT like 640x480, got {value!r}", ctx=ctx, param=param)
    return size


def progress_bar(description: str, unit: str = "item") -> Callable[[Iterable], Iterable] | None:
    """A tqdm wrapper when stderr is a terminal; None (no bar) in pipes and tests."""
    if not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    def wrap(iterable: Iterable, total: int | None = None) -> Iterable:
        return tqdm(iterable, desc=description, total=total, unit=unit, leave=False)

    return wrap


source_format = click.option(
    "--from", "from_format", type=click.Choice(list(FORMATS)), help="Source format (detected when omitted)."
)
target_format = click.option(
    "--to", "to_format", type=click.Choice(list(FORMATS)), required=True, help="Output format."
)
overwrite = click.option("--overwrite", is_flag=True, help="Replace existing outputs.")
on_error = click.option(
    "--on-error",
    type=click.Choice(["raise", "skip"]),
    default="raise",
    show_default=True,
    help="Stop at the first bad item, or skip bad items and write a report of them.",
)
images_dir = click.option(
    "--images",
    type=click.Path(exists=True, file_okay=False),
    help="Image folder (file names are relative to it; sizes are read from it when a format has none).",
)
image_size = click.option("--image-size", callback=parse_size, help="Size of every image, WIDTHxHEIGHT.")
rename = click.option(
    "--rename", multiple=True, callback=parse_rename, metavar="OLD=NEW", help="Rename a category (repeatable)."
)
classes = click.option("--classes", callback=parse_classes, help="Keep only these categories, comma-separated.")


DEFAULT_URL = "http://127.0.0.1:8080"  # seg.annotate.client.DEFAULT_URL, kept here so --help imports nothing heavy


class SegGroup(click.Group):
    """Turns SegError into a one-line message and exit code 1 (2 for options a format does not take, like click's
    own usage errors)."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except SegError as e:
            click.echo(f"seg: error: {e}", err=True)
            ctx.exit(2 if isinstance(e, OptionError) else 1)


def server_options(command):
    """--url, --api-key and --timeout, read from LABEL_STUDIO_URL and LABEL_STUDIO_API_KEY when not given."""
    command = click.option(
        "--timeout", type=click.FloatRange(min=1), default=30, show_default=True, help="Seconds to wait for an answer."
    )(command)
    command = click.option(
        "--api-key",
        envvar="LABEL_STUDIO_API_KEY",
        show_envvar=True,
        help="Label Studio access token (Account & Settings). Prefer the environment variable: options show in ps.",
    )(command)
    return click.option(
        "--url",
        envvar="LABEL_STUDIO_URL",
        show_envvar=True,
        default=DEFAULT_URL,
        show_default=True,
        help="Label Studio server.",
    )(command)
