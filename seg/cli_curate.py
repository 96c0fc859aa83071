"""``seg curate``: score every annotation, keep the best N, and write the curated set with a report."""

from __future__ import annotations

import json

import click

from seg import cli_options as opt
from seg.formats import FORMATS


@click.command("curate")
@click.argument("source", type=click.Path(exists=True))
@click.option("-o", "--out", type=click.Path(file_okay=False), required=True, help="Output folder.")
@click.option("--top", type=click.IntRange(min=1), help="Keep this many images (or objects with --by object).")
@click.option("--min-score", type=click.FloatRange(0, 1), help="Keep everything scoring at least this, instead.")
@click.option("--reference", type=click.Path(exists=True), help="The open dataset the annotations must fit.")
@click.option(
    "--reference-images",
    type=click.Path(exists=True, file_okay=False),
    help="The reference's image folder (for its colours and leakage; default: what its files say).",
)
@click.option("--predictions", type=click.Path(exists=True), help="A model's predictions for the same images.")
@click.option(
    "--by", type=click.Choice(["image", "object"]), default="image", show_default=True, help="Rank and keep by."
)
@click.option("--weights", help="Group weights, e.g. geometry=2,reference=0.5 (groups: geometry, consistency, "
              "reference, quality, agreement).")  # fmt: skip
@click.option("--to", "to_format", type=click.Choice(list(FORMATS)), help="Also write the curated set as this format.")
@click.option("--no-report", is_flag=True, help="Skip the HTML report.")
@opt.source_format
@opt.images_dir
@opt.overwrite
def curate(source, out, top, min_score, reference, predictions, by, weights, to_format, no_report, **options):
    """Score every image of SOURCE (with per-object detail), keep the best, and show why.

    Signals: geometry (self-intersections, slivers, specks, spikes...), consistency (duplicates, class conflicts,
    unknown classes, shapes unlike their class), fit to --reference, image quality (blank, no-data, blur, exposure,
    duplicates, leakage) and agreement (an appearance model trained out-of-fold on SOURCE itself, several annotators,
    --predictions). OUT gets dataset/ (the curated Dataset), scores.csv, objects.csv and report.html.

    \b
    Example:
      seg curate mine/coco.json --top 50 -o curated/
      seg curate mine/coco.json --reference open/coco.json --predictions preds.json --min-score 0.8 \\
        --to masks -o curated/
    """
    from seg.curate.curate import curate as run
    from seg.curate.curate import write_curation
    from seg.formats import read
    from seg.outputs import check_writable

    if (top is None) == (min_score is None):
        raise click.UsageError("give exactly one of --top and --min-score")
    overwrite, images = options["overwrite"], options["images"]
    check_writable(out, overwrite)
    dataset = read(source, options["from_format"], images=images, progress=opt.progress_bar("reading"))
    result = run(
        dataset,
        top=top,
        min_score=min_score,
        reference=None if reference is None else read(reference, images=options["reference_images"]),
        predictions=None if predictions is None else read(predictions, images=images),
        by=by,
        weights=weights,
        progress=opt.progress_bar("scoring", "image"),
    )
    written = write_curation(
        result,
        dataset,
        out,
        to=to_format,
        overwrite=overwrite,
        report=not no_report,
        source_name=source,
        progress=opt.progress_bar("report", "image"),
    )
    click.echo(json.dumps(written, indent=2, default=str))
