"""``seg annotate``: push images and predictions to a Label Studio server, pull annotations back, check the setup."""

from __future__ import annotations

import json
from pathlib import Path

import click

from seg import cli_options as opt
from seg.formats import FORMATS


@click.group("annotate", cls=opt.SegGroup)
def annotate() -> None:
    """Annotate with a Label Studio server: push images (and predictions), pull annotations back.

    \b
    Example:
      export LABEL_STUDIO_URL=http://127.0.0.1:8080 LABEL_STUDIO_API_KEY=...
      seg annotate doctor --images tiles/
      seg annotate push tiles/ --project buildings --classes building,road
      seg annotate pull --project buildings -o labelled/
    """


@annotate.command()
@click.argument("images", type=click.Path(exists=True, file_okay=False))
@click.option("--project", required=True, help="Project title (created when missing).")
@click.option("--classes", callback=opt.parse_classes, help="Class names, comma-separated (added when missing).")
@click.option(
    "--tool", type=click.Choice(["polygon", "brush"]), help="Labeling tool (default: the project's, else polygon)."
)
@click.option("--predictions", type=click.Path(exists=True), help="Predictions to pre-annotate with (any format).")
@click.option("--predictions-format", type=click.Choice(list(FORMATS)), help="Format of --predictions (detected).")
@click.option(
    "--model-version", default="seg", show_default=True, help="Predictions' model version (replaced on re-push)."
)
@opt.server_options
def push(images, project, classes, tool, predictions, predictions_format, model_version, url, api_key, timeout):
    """Push an image folder (and predictions) to a project; pushing again adds only new images.

    \b
    Example:
      seg annotate push tiles/ --project buildings --classes building,road
      seg annotate push tiles/ --project buildings --predictions run/predictions.json --model-version unet-3
    """
    from seg.annotate.client import connect
    from seg.annotate.push import push as push_images
    from seg.annotate.push import read_predictions

    found = None if predictions is None else read_predictions(predictions, predictions_format, Path(images))
    with connect(url, api_key, timeout) as client:
        report = push_images(
            client,
            Path(images),
            project=project,
            classes=classes or (),
            tool=tool,
            predictions=found,
            model_version=model_version,
            progress=opt.progress_bar("pushing", "img"),
        )
    click.echo(json.dumps(report, indent=2))


@annotate.command()
@click.option("--project", required=True, help="Project id or title.")
@click.option(
    "-o", "--out", type=click.Path(), required=True, help="Output: a Dataset folder, or a file/folder in --to."
)
@click.option(
    "--to", "to_format", type=click.Choice(list(FORMATS)), help="Output format (default: seg's Dataset folder)."
)
@click.option(
    "--which",
    type=click.Choice(["annotations", "predictions", "both"]),
    default="annotations",
    show_default=True,
    help="What to pull.",
)
@opt.images_dir
@opt.on_error
@opt.overwrite
@opt.server_options
def pull(project, out, to_format, which, images, on_error, overwrite, url, api_key, timeout):
    """Pull a project's annotations (or predictions) into a Dataset folder or any format.

    \b
    Example:
      seg annotate pull --project buildings -o labelled/ --images tiles/
      seg annotate pull --project 3 --to coco -o labelled.json
    """
    from seg.dataset.store import save_dataset
    from seg.formats import write
    from seg.outputs import check_writable

    check_writable(out, overwrite)
    dataset, problems = pull_dataset(project, which, url, api_key, timeout, on_error, images)
    if to_format is None:
        save_dataset(dataset, out, overwrite=overwrite)
        report = {"out": str(out), "images": len(dataset.images), "objects": len(dataset.objects)}
    else:
        report = write(dataset, out, to_format, overwrite=overwrite)
    if problems.skipped:
        report["skipped"] = problems.to_records()
    click.echo(json.dumps(report, indent=2, default=str))


@annotate.command()
@click.option("--project", help="Project id or title whose images should load.")
@click.option("--images", type=click.Path(exists=True, file_okay=False), help="Folder that should be served from disk.")
@opt.server_options
def doctor(project, images, url, api_key, timeout):
    """Check the Label Studio setup: server, version, API key, local files, a project's images.

    Exits with 1 when a check fails.

    \b
    Example:
      seg annotate doctor --images tiles/ --project buildings
    """
    from seg.annotate.doctor import doctor as run_doctor

    checks = run_doctor(url, api_key, project=project, images=images, timeout=timeout)
    width = max(len(c.name) for c in checks)
    for check in checks:
        click.echo(f"{'✓' if check.ok else '✗'} {check.name:<{width}}  {check.detail}")
        if check.advice:
            click.echo(f"  {'':<{width}}  → {check.advice}")
    if not all(c.ok for c in checks):
        raise click.exceptions.Exit(1)


def pull_dataset(
    project: str, which: str, url: str, api_key: str | None, timeout: float, on_error: str, images: str | None
):
    """Pull a project into a Dataset under the ``on_error`` policy; returns the Dataset and the Problems."""
    from seg.annotate.client import connect
    from seg.annotate.pull import pull
    from seg.dataset.problems import Problems

    problems = Problems(on_error)
    with connect(url, api_key, timeout) as client:
        dataset = pull(
            client, project, which=which, image_root=images, problems=problems, progress=opt.progress_bar("pulling")
        )
    return dataset, problems
