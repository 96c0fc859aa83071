"""``seg evaluate``: score a trained run on a mask folder."""

from __future__ import annotations

import json

import click

from seg import cli_options as opt


@click.command("evaluate")
@click.argument("run", type=click.Path(exists=True, file_okay=False))
@click.argument("data", type=click.Path(exists=True, file_okay=False))
@click.option("-o", "--out", type=click.Path(file_okay=False), help="Output folder (default: RUN/evaluation).")
@click.option("--split", help="Split folder to score (default: test when there is one, else every image).")
@click.option("--weights", type=click.Choice(["best", "last"]), default="best", show_default=True)
@click.option(
    "--overlap", type=click.FloatRange(0, 0.9), default=0.25, show_default=True, help="Sliding-window overlap."
)
@click.option("--batch-size", type=click.IntRange(min=1), default=4, show_default=True)
@opt.overwrite
def evaluate(run, data, out, split, weights, overlap, batch_size, overwrite):
    """Score RUN (a `seg train` folder) on DATA (a mask folder): mean IoU, per-class IoU, frequency-weighted IoU, pixel
    accuracy and the confusion matrix, in OUT/metrics.json and OUT/confusion.png.

    Images are predicted at full resolution with the sliding window of `seg predict`.

    \b
    Example:
      seg evaluate runs/unet masks/ --split test
    """
    from seg.train.native_logs import filter_native_logs

    filter_native_logs()
    from seg.train.evaluate import evaluate_run

    metrics = evaluate_run(
        run,
        data,
        out,
        split=split,
        weights=weights,
        overlap=overlap,
        batch_size=batch_size,
        overwrite=overwrite,
        progress=opt.progress_bar("evaluating", "image"),
    )
    click.echo(json.dumps({k: metrics[k] for k in _SUMMARY if k in metrics}, indent=2))


_SUMMARY = ("out", "split", "images", "mean_iou", "frequency_weighted_iou", "pixel_accuracy", "per_class_iou")
