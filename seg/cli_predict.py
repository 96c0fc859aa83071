"""``seg predict``: masks, overlays and predicted objects of a trained run for a folder of images."""

from __future__ import annotations

import json

import click

from seg import cli_options as opt


@click.command("predict")
@click.argument("run", type=click.Path(exists=True, file_okay=False))
@click.argument("images", type=click.Path(exists=True))
@click.option("-o", "--out", type=click.Path(), required=True, help="Output folder (resumed when run again).")
@click.option("--weights", type=click.Choice(["best", "last"]), default="best", show_default=True)
@click.option(
    "--overlap", type=click.FloatRange(0, 0.9), default=0.25, show_default=True, help="Sliding-window overlap."
)
@click.option("--batch-size", type=click.IntRange(min=1), default=4, show_default=True, help="Windows per pass.")
@click.option(
    "--min-area", type=click.IntRange(min=0), default=4, show_default=True, help="Drop smaller objects (pixels)."
)
@click.option(
    "--on-error",
    type=click.Choice(["skip", "raise"]),
    default="skip",
    show_default=True,
    help="Skip unreadable images (listed in summary.json) or stop at the first.",
)
@opt.overwrite
def predict(run, images, out, weights, overlap, batch_size, min_area, on_error, overwrite):
    """Predict every image of IMAGES (a file, a folder searched recursively, or a mask folder) with RUN (a `seg train`
    folder).

    OUT gets masks/ (class-index PNGs), overlays/ (JPEGs), dataset/ (the predicted objects with scores, for `seg
    curate --predictions` and `seg annotate push --predictions`), classes.json, index.html (a contact sheet, least
    confident first) and summary.json. Images larger than the run's input size are predicted with overlapping
    windows. Running again into the same OUT predicts only the images not done yet.

    \b
    Example:
      seg predict runs/unet tiles/ -o predictions/
      seg curate masks/ --predictions predictions/dataset --top 100 -o curated/
    """
    from seg.train.native_logs import filter_native_logs

    filter_native_logs()
    from seg.train.predict import predict_images

    summary = predict_images(
        run,
        images,
        out,
        weights=weights,
        overlap=overlap,
        batch_size=batch_size,
        min_area=min_area,
        overwrite=overwrite,
        on_error=on_error,
        progress=opt.progress_bar("predicting", "image"),
    )
    skipped = summary["skipped"]
    if skipped:
        click.echo(f"seg: skipped {len(skipped)} unreadable image(s), e.g. {skipped[0]['path']}", err=True)
    click.echo(json.dumps({**summary, "skipped": len(skipped)}, indent=2))
