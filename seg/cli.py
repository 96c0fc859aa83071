"""The ``seg`` command line: thin commands that parse, make one library call, and report."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import click

from seg import __version__
from seg import cli_options as opt
from seg.cli_annotate import annotate, pull_dataset
from seg.cli_collect import collect
from seg.cli_curate import curate
from seg.cli_evaluate import evaluate
from seg.cli_predict import predict
from seg.cli_train import train_command
from seg.formats import FORMATS

logger = logging.getLogger("seg")


@click.group(cls=opt.SegGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="seg")
@click.option("-v", "--verbose", count=True, help="More messages (-vv for debug).")
@click.option("-q", "--quiet", is_flag=True, help="Only errors.")
def cli(verbose: int, quiet: bool) -> None:
    """seg: image-segmentation datasets from raw pixels to a trained model.

    Convert any annotation format into one table of RLE masks and back out (COCO, VIA, Label Studio, Labelme, Kaggle
    CSV, PNG mask folders, seg's parquet Dataset), keep a Label Studio project in sync (`seg annotate`), cut
    SAS.Planet tile caches into georeferenced chips and search the web for images (`seg collect`), keep the best
    annotations with a report (`seg curate`), train Keras segmentation models on mask folders and predict and
    evaluate with them (`seg train`, `seg predict`, `seg evaluate`), inspect and merge datasets, and run the whole
    flow on an embedded sample with `seg demo`.
    """
    level = logging.ERROR if quiet else (logging.WARNING, logging.INFO, logging.DEBUG)[min(verbose, 2)]
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)


def _read(source: str, from_format: str | None, on_error: str, **options):
    from seg.dataset.problems import Problems
    from seg.formats import read

    problems = Problems(on_error)
    dataset = read(source, from_format, problems=problems, progress=opt.progress_bar("reading"), **options)
    return dataset, problems


def _report_skipped(problems, out: Path) -> None:
    if not problems.skipped:
        return
    from seg.outputs import atomic_file

    report = out / "skipped.json" if out.is_dir() else out.with_name(out.name + ".skipped.json")
    with atomic_file(report, overwrite=True, mode="w") as handle:
        handle.write(problems.to_json())
    click.echo(f"seg: skipped {len(problems.skipped)} bad item(s); see {report}", err=True)


#: convert's options that go to the reader; the others go to the writer.
READ_OPTIONS = ("images", "annotations", "image_size", "class_name", "class_attribute")


@cli.command()
@click.argument("source", type=click.Path(exists=True))
@click.option("-o", "--out", type=click.Path(), required=True, help="Output file or folder.")
@opt.target_format
@opt.source_format
@opt.images_dir
@click.option(
    "--annotations", type=click.Path(exists=True, dir_okay=False), help="Ground-truth COCO for a results file."
)
@opt.image_size
@opt.classes
@opt.rename
@click.option("--segmentation", type=click.Choice(["auto", "polygon", "rle"]), help="COCO output: mask encoding.")
@click.option("--style", type=click.Choice(["auto", "imaterialist", "airbus"]), help="Kaggle output: CSV columns.")
@click.option("--kind", type=click.Choice(["semantic", "instance"]), help="Masks output: class or instance masks.")
@click.option("--split", type=click.FloatRange(0, 1, max_open=True), help="Masks output: test fraction (train/test).")
@click.option("--seed", type=int, help="Masks output: seed of the train/test split.")
@click.option("--copy-images", type=click.Choice(["copy", "link", "none"]), help="Masks output: how images go along.")
@click.option("--workers", type=click.IntRange(1), help="Masks output: processes (default: one per CPU).")
@click.option("--boxes", type=click.Choice(["skip", "paint"]), help="Masks/Kaggle output: box-only objects.")
@click.option("--class-name", help="Kaggle input without ClassId: the class of every object (default 'object').")
@click.option("--class-attribute", help="VIA input: the region attribute holding the class (default: found).")
@opt.on_error
@opt.overwrite
def convert(source, out, to_format, from_format, classes, rename, on_error, overwrite, **options):
    """Convert annotations from any known format to another.

    \b
    Example:
      seg convert instances_val.json --to masks --split 0.2 -o masks/
      seg convert train.csv --images train/ --to coco -o coco.json
    """
    from seg.dataset.categories import keep_categories, rename_categories
    from seg.formats import write
    from seg.outputs import check_writable

    check_writable(out, overwrite)
    read_options = {k: options.pop(k) for k in READ_OPTIONS}
    options["images"] = options.pop("copy_images")
    dataset, problems = _read(source, from_format, on_error, **read_options)
    dataset = rename_categories(dataset, rename)
    if classes:
        dataset = keep_categories(dataset, classes)
    report = write(dataset, out, to_format, overwrite=overwrite, progress=opt.progress_bar("writing", "img"), **options)
    _report_skipped(problems, Path(out))
    click.echo(json.dumps(report, indent=2, default=str))


@cli.command("export-coco")
@click.argument("source", type=click.Path(exists=True), required=False)
@click.option("-o", "--out", type=click.Path(dir_okay=False), required=True, help="COCO JSON to write.")
@click.option("--project", help="A Label Studio project (title or id) as the source, instead of SOURCE.")
@opt.source_format
@opt.images_dir
@opt.image_size
@click.option(
    "--segmentation",
    type=click.Choice(["auto", "polygon", "rle"]),
    default="auto",
    show_default=True,
    help="Polygons where they are exact, RLE elsewhere (auto), or force one.",
)
@opt.on_error
@opt.overwrite
@opt.server_options
def export_coco(
    source, out, project, from_format, images, image_size, segmentation, on_error, overwrite, url, api_key, timeout
):
    """Export any annotation source, or a Label Studio project, to COCO with the Dataset folder beside it.

    Label Studio brush masks keep their holes (written as RLE); every annotator's annotation is kept.

    \b
    Example:
      seg export-coco train.csv --images train/ -o coco.json   # writes coco.json and coco.dataset/
      seg export-coco --project buildings --images tiles/ -o buildings.json
    """
    from seg.dataset.store import save_dataset
    from seg.formats import write
    from seg.outputs import check_writable

    if (source is None) == (project is None):
        raise click.UsageError("give either SOURCE or --project")
    out = Path(out)
    dataset_dir = out.with_suffix(".dataset")
    check_writable(out, overwrite)
    check_writable(dataset_dir, overwrite)
    if project is not None:
        dataset, problems = pull_dataset(project, "annotations", url, api_key, timeout, on_error, images)
    else:
        dataset, problems = _read(source, from_format, on_error, images=images, image_size=image_size)
    report = write(dataset, out, "coco", overwrite=overwrite, segmentation=segmentation)
    save_dataset(dataset, dataset_dir, overwrite=overwrite)
    report["dataset"] = str(dataset_dir)
    _report_skipped(problems, out)
    click.echo(json.dumps(report, indent=2, default=str))


@cli.command()
@click.argument("source", type=click.Path(exists=True))
@opt.source_format
@opt.images_dir
@opt.image_size
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def info(source, from_format, images, image_size, as_json):
    """Summarise a dataset: images, objects per class, coverage, and problems found.

    \b
    Example:
      seg info annotations/instances_val.json
    """
    from seg.dataset.summary import format_summary, summarize

    dataset, _ = _read(source, from_format, "raise", images=images, image_size=image_size)
    summary = summarize(dataset)
    click.echo(json.dumps(summary, indent=2) if as_json else format_summary(summary))


@cli.command()
@click.argument("sources", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("-o", "--out", type=click.Path(), required=True, help="Output file or folder.")
@click.option(
    "--to",
    "to_format",
    type=click.Choice(list(FORMATS)),
    default="parquet",
    show_default=True,
    help="Output format.",
)
@click.option("--name", "names", multiple=True, help="Name of each source in the origin column (default: file stem).")
@opt.rename
@opt.overwrite
def merge(sources, out, to_format, names, rename, overwrite):
    """Merge datasets, reconciling class names and keeping each object's origin.

    \b
    Example:
      seg merge open/coco.json mine/coco.json --rename house=building -o merged/
    """
    from seg.dataset.merge import merge_datasets
    from seg.formats import read, write
    from seg.outputs import check_writable

    if len(sources) < 2:
        raise click.UsageError("merge needs at least two sources")
    if names and len(names) != len(sources):
        raise click.UsageError(f"--name given {len(names)} time(s) for {len(sources)} sources")
    check_writable(out, overwrite)
    names = list(names) or _default_names(sources)
    datasets = [read(source) for source in sources]
    report = write(merge_datasets(datasets, names, rename), out, to_format, overwrite=overwrite)
    click.echo(json.dumps(report, indent=2, default=str))


def _default_names(sources: tuple[str, ...]) -> list[str]:
    names: list[str] = []
    for source in sources:
        path = Path(source)
        base = path.stem if path.is_file() else path.name
        name, n = base, 2
        while name in names:
            name, n = f"{base}{n}", n + 1
        names.append(name)
    return names


@cli.command()
@click.option(
    "-o",
    "--out",
    type=click.Path(file_okay=False),
    default="demo-output",
    show_default=True,
    help="Folder for the sample and every output.",
)
@opt.overwrite
@click.option(
    "--label-studio",
    "use_label_studio",
    is_flag=True,
    envvar="SEG_DEMO_LABEL_STUDIO",
    help="Also push the sample to the Label Studio server of --url/--api-key and pull it back.",
)
@click.option("--no-train", is_flag=True, help="Stop at the masks: skip training, predicting and evaluating.")
@opt.server_options
def demo(out, overwrite, use_label_studio, no_train, url, api_key, timeout):
    """Run the whole flow on the embedded sample and say where everything went: collect, convert, curate, then train
    a small U-Net on the curated masks (two or three minutes on a CPU), predict and evaluate it.

    \b
    Example:
      seg demo -o demo-output --overwrite
    """
    from seg.train.native_logs import filter_native_logs

    filter_native_logs()
    from seg.demo import run_demo

    server = (url, api_key) if use_label_studio or api_key else None
    report = run_demo(
        Path(out), overwrite=overwrite, progress=opt.progress_bar("demo"), label_studio=server, train=not no_train
    )
    click.echo(json.dumps(report, indent=2, default=str))


cli.add_command(annotate)
cli.add_command(collect)
cli.add_command(curate)
cli.add_command(train_command)
cli.add_command(predict)
cli.add_command(evaluate)


def main() -> None:
    cli()
