"""``seg collect``: images from web image search and URL lists, and georeferenced chips from SAS.Planet tile caches and
stitched exports."""

from __future__ import annotations

import json
import math

import click

from seg import cli_options as opt
from seg.cli_collect_search import bing, google
from seg.cli_collect_urls import urls


def parse_bbox(
    ctx: click.Context, param: click.Parameter, value: str | None
) -> tuple[float, float, float, float] | None:
    """``W,S,E,N`` in degrees -> a tuple; anything else is a usage error."""
    if value is None:
        return None
    parts = [p.strip() for p in value.split(",")]
    try:
        box = tuple(float(p) for p in parts)
    except ValueError:
        box = ()
    if len(box) != 4 or not all(math.isfinite(v) for v in box):
        raise click.BadParameter(f"expected W,S,E,N in degrees like 30.1,59.8,30.6,60.1, got {value!r}", ctx, param)
    west, south, east, north = box
    if not (-180 <= west < east <= 180 and -90 <= south < north <= 90):
        raise click.BadParameter(
            f"expected -180 <= W < E <= 180 and -90 <= S < N <= 90, got {value!r}", ctx=ctx, param=param
        )
    return west, south, east, north


@click.group("collect", cls=opt.SegGroup)
def collect() -> None:
    """Collect imagery: web image search, URL lists, and tile caches cut into georeferenced chips.

    \b
    Example:
      seg collect google "flat roof" "pitched roof" --limit 100 --size large --out roofs/
      seg collect urls urls.txt --out downloads/
      seg collect sasplanet SAS.Planet/cache --map sat --zoom 17 --bbox 30.30,59.93,30.34,59.95 --out chips/
    """


def chip_options(command):
    """--chip, --overlap and --format, shared by the commands that cut chips."""
    for option in reversed(
        [
            click.option(
                "--chip", type=click.IntRange(min=1), default=512, show_default=True, help="Chip side in pixels."
            ),
            click.option(
                "--overlap",
                type=click.IntRange(min=0),
                default=0,
                show_default=True,
                help="Pixels shared by neighbouring chips.",
            ),
            click.option(
                "--format",
                "fmt",
                type=click.Choice(["tif", "png", "jpg"]),
                default="tif",
                show_default=True,
                help="GeoTIFF, or PNG/JPEG with a world file and .prj.",
            ),
        ]
    ):
        command = option(command)
    return command


@collect.command()
@click.argument("cache", type=click.Path(exists=True))
@click.option("--map", "map_name", required=True, help="Map (folder or .mbtiles name) inside the cache.")
@click.option(
    "--zoom",
    type=click.IntRange(0, 30),
    required=True,
    help="Slippy-map zoom, 0-based: SAS.Planet's folder z18 is --zoom 17.",
)
@click.option("--bbox", callback=parse_bbox, help="W,S,E,N in degrees (default: every tile the map has at --zoom).")
@chip_options
@click.option(
    "--min-coverage",
    type=click.FloatRange(0, 1),
    default=0.5,
    show_default=True,
    help="Skip chips with a smaller fraction of pixels from tiles.",
)
@click.option("--out", "-o", type=click.Path(), required=True, help="Output folder (images/ and dataset/).")
@opt.overwrite
@click.option("--layout", help="Cache layout instead of detection (sas, googlemv, sqlite, mbtiles, tms, ...).")
def sasplanet(cache, map_name, zoom, bbox, chip, overlap, fmt, min_coverage, out, overwrite, layout):
    """Cut one map and zoom of a SAS.Planet tile cache (any layout) into georeferenced chips (EPSG:3857).

    \b
    Example:
      seg collect sasplanet SAS.Planet/cache --map sat --zoom 17 --chip 512 --overlap 64 --out chips/
      seg collect sasplanet tiles.mbtiles --map tiles --zoom 15 --format png --out chips/
    """
    from seg.collector.cache import open_cache
    from seg.collector.chips import make_chips

    opened = open_cache(cache, layout=layout)
    report: dict = {}
    make_chips(
        opened,
        map_name,
        zoom,
        out,
        bbox=bbox,
        chip=chip,
        overlap=overlap,
        fmt=fmt,
        min_coverage=min_coverage,
        overwrite=overwrite,
        progress=opt.progress_bar("chipping", "row"),
        report=report,
    )
    click.echo(json.dumps(report))


@collect.command()
@click.argument("image", type=click.Path(exists=True, dir_okay=False))
@chip_options
@click.option(
    "--min-coverage",
    type=click.FloatRange(0, 1),
    default=0.5,
    show_default=True,
    help="Skip chips with a smaller fraction of valid pixels (inside the image, not transparent or nodata).",
)
@click.option("--out", "-o", type=click.Path(), required=True, help="Output folder (images/ and dataset/).")
@opt.overwrite
def stitched(image, chip, overlap, fmt, min_coverage, out, overwrite):
    """Cut one georeferenced image (GeoTIFF, or an image with a world file, .aux.xml, .map or .kml) into chips.

    Chips keep the source CRS and the exact transform of their window.

    \b
    Example:
      seg collect stitched combined.jpg --chip 512 --overlap 64 --format png -o chips/
    """
    from seg.collector.stitched import make_stitched_chips

    report: dict = {}
    make_stitched_chips(
        image,
        out,
        chip=chip,
        overlap=overlap,
        fmt=fmt,
        min_coverage=min_coverage,
        overwrite=overwrite,
        progress=opt.progress_bar("chipping", "row"),
        report=report,
    )
    click.echo(json.dumps(report))


@collect.command()
@click.argument("vectors", type=click.Path(exists=True, dir_okay=False))
@click.argument("chips", type=click.Path(exists=True, file_okay=False))
@click.option("-o", "--out", type=click.Path(file_okay=False), required=True, help="Dataset folder to write.")
@click.option("--class-property", help="Feature property holding the class (default: every feature is --class).")
@click.option("--class", "default_class", default="building", show_default=True, help="Class of unlabelled features.")
@opt.overwrite
def footprints(vectors, chips, out, class_property, default_class, overwrite):
    """Rasterize footprints (GeoJSON or a polygon shapefile) onto chips made by `seg collect`: a Dataset of chips.

    VECTORS is a GeoJSON file or a .shp (with its .dbf, and its .prj when projected). CHIPS is the folder
    `seg collect sasplanet` wrote (or its dataset/ folder). Footprints keep their holes and are
    clipped at chip borders; chips without footprints stay as negatives.

    \b
    Example:
      seg collect footprints buildings.geojson chips/ -o labelled/
      seg collect footprints buildings_utm.shp chips/ --class-property type -o labelled/
      seg convert labelled/ --to masks --split 0.2 -o masks/
    """
    from pathlib import Path

    from seg.collector.vectors import footprints_to_dataset
    from seg.dataset.store import is_dataset_dir, load_dataset, save_dataset
    from seg.outputs import check_writable

    check_writable(out, overwrite)
    folder = Path(chips) / "dataset" if is_dataset_dir(Path(chips) / "dataset") else Path(chips)
    labelled = footprints_to_dataset(
        Path(vectors), load_dataset(folder), class_property=class_property, default_class=default_class
    )
    save_dataset(labelled, out, overwrite=overwrite)
    click.echo(json.dumps({"out": str(out), "chips": len(labelled.images), "objects": len(labelled.objects)}))


@collect.command()
@click.argument("source", type=click.Path(exists=True))
@click.option("-o", "--out", type=click.Path(dir_okay=False), required=True, help="GeoJSON file to write.")
@opt.overwrite
def geojson(source, out, overwrite):
    """Write the objects of georeferenced chips (annotations or predictions) as GeoJSON in longitude/latitude.

    \b
    Example:
      seg collect geojson predictions/ -o buildings.geojson
    """
    from pathlib import Path

    from seg.collector.vectors import dataset_to_geojson
    from seg.formats import read

    collection = dataset_to_geojson(read(source), Path(out), overwrite=overwrite)
    click.echo(json.dumps({"out": str(out), "features": len(collection["features"])}))


for _command in (google, bing, urls):
    collect.add_command(_command)
