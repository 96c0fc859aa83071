"""Build the embedded sample folder: tiles in a SAS.Planet cache, plain images, three annotation files, truth, README.

Layout of ``<out>``::

    README.txt
    cache/Sample.Satellite/z19/<x>>10>/x<x>/<y>>10>/y<y>.jpg   SAS.Planet native cache (zoom folder = z + 1)
    cache/Sample.Satellite/z19/.../y<y>.tne                    zero-byte marker of a tile known to be missing
    images/18_<x>_<y>.jpg                                      the same tiles (identical bytes), for the annotations
    chips.csv                                                  georeference of every image (EPSG:3857 and degrees)
    footprints.geojson                                         the true footprints (lon/lat), before any error
    annotations/coco.json                                      COCO instances (courtyard building as RLE with its hole)
    annotations/via_project.json                               VIA 2 project (polygons; holes cannot be held)
    annotations/labelstudio.json + labelstudio_config.xml      Label Studio JSON export (polygons in percent)
    annotations/planted_errors.json                            the deliberately poor annotations, by image and id

Every byte is the same on every run: seeded generators, fixed encoder settings, fixed time stamps.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from seg.collector.tiles import Tile, meters_to_lnglat, tile_bounds, tile_lnglat_bounds
from seg.outputs import atomic_dir, check_writable
from seg.sample import annotation_files as ann
from seg.sample.clip import tile_pieces
from seg.sample.planted import annotate
from seg.sample.render import cut_tiles, render_mosaic
from seg.sample.scene import GRID, LAT, LON, Scene, build_scene, pixel_rings
from seg.sample.tiles import native_cache_path, write_missing_marker, write_native_tile

logger = logging.getLogger(__name__)

MAP_NAME = "Sample.Satellite"
JPEG_QUALITY = 90


@dataclass(frozen=True)
class SampleInfo:
    """What :func:`build_sample` wrote and where.

    Attributes:
        root: the sample folder.
        zoom: the tiles' zoom.
        tiles: the tiles present, in image order (north to south, west to east).
        missing_tile: the tile marked missing in the cache (a ``.tne`` file, no image).
        map_dir: the map's folder in the SAS.Planet cache (``root/cache/<map name>``).
        images: the folder of plain images.
        coco, via, labelstudio, label_config, planted_errors, chips, footprints: the files written.
        objects: annotated objects per class (as in the annotation files, errors included).
        planted: the planted-error manifest.
    """

    root: Path
    zoom: int
    tiles: tuple[Tile, ...]
    missing_tile: Tile
    map_dir: Path
    images: Path
    coco: Path
    via: Path
    labelstudio: Path
    label_config: Path
    planted_errors: Path
    chips: Path
    footprints: Path
    objects: dict[str, int]
    planted: tuple[dict, ...]


def _jpeg(pixels) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels, mode="RGB").save(
        buffer, "JPEG", quality=JPEG_QUALITY, subsampling="4:2:0", optimize=False, progressive=False
    )
    return buffer.getvalue()


def _json(path: Path, document: object, indent: int | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=indent, ensure_ascii=False) + "\n", encoding="utf-8")


def _file_name(tile: Tile) -> str:
    return f"{tile.z}_{tile.x}_{tile.y}.jpg"


def _chips_csv(path: Path, tiles: tuple[Tile, ...]) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(
        [
            "image_id",
            "file_name",
            "zoom",
            "tile_x",
            "tile_y",
            "left",
            "bottom",
            "right",
            "top",
            "west",
            "south",
            "east",
            "north",
            "crs",
            "cache_path",
        ]
    )
    for i, tile in enumerate(tiles, start=1):
        cache_path = f"cache/{MAP_NAME}/{native_cache_path(tile)}"
        writer.writerow(
            [
                i,
                _file_name(tile),
                tile.z,
                tile.x,
                tile.y,
                *tile_bounds(tile),
                *tile_lnglat_bounds(tile),
                "EPSG:3857",
                cache_path,
            ]
        )
    path.write_text(buffer.getvalue(), encoding="utf-8")


def _footprints_geojson(scene: Scene) -> dict:
    features = []
    for fp in scene.footprints:
        rings = []
        for k, ring in enumerate(fp.rings):
            points = [[round(v, 8) for v in meters_to_lnglat(*p)] for p in ring]
            twice_area = sum(a[0] * b[1] - b[0] * a[1] for a, b in zip(points, points[1:] + points[:1], strict=True))
            if (twice_area > 0) != (k == 0):  # RFC 7946: exterior counter-clockwise, holes clockwise
                points.reverse()
            rings.append([*points, points[0]])
        features.append(
            {
                "type": "Feature",
                "id": fp.id,
                "properties": {"id": fp.id, "class": fp.category, "shape": fp.shape},
                "geometry": {"type": "Polygon", "coordinates": rings},
            }
        )
    return {"type": "FeatureCollection", "features": features}


README = """seg sample: synthetic aerial tiles of Dakar, Senegal (around lon {lon}, lat {lat}), zoom {zoom}
=====================================================================================

The imagery is rendered by seg (numpy + PIL): it is NOT real imagery. Footprints were laid out in
EPSG:3857 metres and projected onto real XYZ tiles of the area, so every image is a true Web-Mercator tile.

cache/{map_name}/       SAS.Planet native tile cache: z{{zoom+1}}/{{x>>10}}/x{{x}}/{{y>>10}}/y{{y}}.jpg
                                 ({n} tiles, a {grid}x{grid} block), plus a zero-byte y{missing_y}.tne marker:
                                 tile x{missing_x} y{missing_y} is known to be missing (no image).
images/                          the same tiles as plain files named <zoom>_<x>_<y>.jpg (identical bytes).
chips.csv                        georeference of every image: tile, bounds in EPSG:3857 and in degrees.
footprints.geojson               the true footprints in lon/lat (before any annotation error).
annotations/coco.json            COCO instances; image file names relative to images/; georeference in extra keys
                                 (zoom, tile_x, tile_y, crs, bounds). The courtyard building is an RLE mask with
                                 its hole; every other object is a polygon.
annotations/via_project.json     VIA 2 project of the same objects (region attributes: class, id).
annotations/labelstudio.json     Label Studio JSON export of the same objects (polygon points in percent);
                                 labelstudio_config.xml is the labeling config. Images are referenced as local
                                 files with this folder as the document root.
                                 VIA and Label Studio polygons cannot hold a hole: they carry the courtyard
                                 building's outer ring only.
annotations/planted_errors.json  annotations that are wrong on purpose, for curation to find:
{errors}
Objects annotated: {objects}.
Object ids are shared: COCO annotation id = VIA region attribute "id" = Label Studio result id.
"""


def build_sample(out: str | os.PathLike[str], *, overwrite: bool = False) -> SampleInfo:
    """Write the embedded sample to ``out`` (same bytes on every run, no download).

    Args:
        out: the folder to create.
        overwrite: replace ``out`` if it exists.

    Raises:
        OutputExistsError: ``out`` exists and ``overwrite`` is false.

    Example:
        >>> info = build_sample(tmp_path / "sample")  # doctest: +SKIP
        >>> seg.read(info.coco, "coco")  # doctest: +SKIP
    """
    out = check_writable(out, overwrite)
    scene = build_scene()
    mosaic = render_mosaic(scene)
    chips = cut_tiles(mosaic, GRID)
    rings_px = [pixel_rings(fp, scene) for fp in scene.footprints]
    pieces = [tile_pieces(scene, i % GRID, i // GRID, rings_px) for i in range(len(scene.tiles))]
    names = [_file_name(t) for t in scene.tiles]
    regions, manifest = annotate(pieces, names)
    last = scene.tiles[GRID - 1]
    missing = Tile(last.x + 1, last.y, last.z)

    with atomic_dir(out, overwrite) as tmp:
        map_dir = tmp / "cache" / MAP_NAME
        records = []
        for i, (tile, pixels, name) in enumerate(zip(scene.tiles, chips, names, strict=True), start=1):
            data = _jpeg(pixels)
            write_native_tile(map_dir, tile, data)
            (tmp / "images").mkdir(exist_ok=True)
            (tmp / "images" / name).write_bytes(data)
            records.append(ann.ImageRecord(i, name, tile, len(data)))
        write_missing_marker(map_dir, missing)
        _chips_csv(tmp / "chips.csv", scene.tiles)
        _json(tmp / "footprints.geojson", _footprints_geojson(scene))
        _json(tmp / "annotations" / "coco.json", ann.coco_document(records, regions))
        _json(tmp / "annotations" / "via_project.json", ann.via_project(records, regions, "seg_sample_dakar"))
        _json(tmp / "annotations" / "labelstudio.json", ann.labelstudio_export(records, regions))
        (tmp / "annotations" / "labelstudio_config.xml").write_text(ann.LABEL_CONFIG, encoding="utf-8")
        _json(tmp / "annotations" / "planted_errors.json", {"errors": manifest}, indent=2)
        objects = dict(sorted(Counter(r.category for rs in regions for r in rs).items()))
        errors = "\n".join(
            f"                                   - {e['kind']}: image {e['file_name']} (id {e['image_id']}), object "
            f"{e['object_id']}"
            for e in manifest
        )
        readme = README.format(
            lon=LON,
            lat=LAT,
            zoom=scene.zoom,
            map_name=MAP_NAME,
            n=len(scene.tiles),
            grid=GRID,
            missing_x=missing.x,
            missing_y=missing.y,
            errors=errors,
            objects=", ".join(f"{n} {c}" for c, n in objects.items()),
        )
        (tmp / "README.txt").write_text(readme, encoding="utf-8")
    logger.info("sample written to %s: %d images, %s", out, len(records), objects)
    return SampleInfo(
        root=out,
        zoom=scene.zoom,
        tiles=scene.tiles,
        missing_tile=missing,
        map_dir=out / "cache" / MAP_NAME,
        images=out / "images",
        coco=out / "annotations" / "coco.json",
        via=out / "annotations" / "via_project.json",
        labelstudio=out / "annotations" / "labelstudio.json",
        label_config=out / "annotations" / "labelstudio_config.xml",
        planted_errors=out / "annotations" / "planted_errors.json",
        chips=out / "chips.csv",
        footprints=out / "footprints.geojson",
        objects=objects,
        planted=tuple(manifest),
    )
