"""The sample's annotation files: COCO instances, a VIA 2 project and a Label Studio JSON export of the same regions.

All three describe the same objects with the same vertices (integer tile pixels) and the same ids (COCO annotation
``id`` = VIA region attribute ``id`` = Label Studio result ``id``). One thing differs, as it does in users' data: a
building with a courtyard is an RLE mask with a real hole in COCO, while VIA and Label Studio polygons cannot hold a
hole and carry its outer ring only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from seg.collector.tiles import TILE_SIZE, Tile, tile_bounds
from seg.dataset import rle as coco_rle
from seg.formats.via_write import project_settings
from seg.sample.clip import rings_rle
from seg.sample.planted import Region

#: Class names with their COCO ids, in class-index order.
CATEGORIES = (("building", 1), ("road", 2))
#: A fixed time stamp, so the files are the same on every run.
STAMP = "2024-05-01T10:00:00.000000Z"
#: Label Studio's URL of a file served from local storage whose document root is the sample folder.
LS_IMAGE_PREFIX = "/data/local-files/?d=images/"

LABEL_CONFIG = """<View>
  <Image name="image" value="$image" zoom="true"/>
  <PolygonLabels name="label" toName="image" strokeWidth="2" pointSize="small" opacity="0.6">
    <Label value="building" background="#d62728"/>
    <Label value="road" background="#1f77b4"/>
  </PolygonLabels>
</View>
"""


@dataclass(frozen=True)
class ImageRecord:
    """One sample image: its COCO id, file name (relative to ``images/``), tile and file size in bytes."""

    id: int
    file_name: str
    tile: Tile
    file_size: int


def coco_document(images: Sequence[ImageRecord], regions: Sequence[Sequence[Region]]) -> dict:
    """A COCO instances document; regions with holes become uncompressed RLE, the others polygons.

    Images carry their georeference as extra keys (``zoom``, ``tile_x``, ``tile_y``, ``crs``, ``bounds`` =
    ``[left, bottom, right, top]`` in EPSG:3857); annotations carry the true ``footprint_id``.
    """
    ids = dict(CATEGORIES)
    coco_images, annotations = [], []
    for image, image_regions in zip(images, regions, strict=True):
        coco_images.append(
            {
                "id": image.id,
                "file_name": image.file_name,
                "width": TILE_SIZE,
                "height": TILE_SIZE,
                "license": 1,
                "zoom": image.tile.z,
                "tile_x": image.tile.x,
                "tile_y": image.tile.y,
                "crs": "EPSG:3857",
                "bounds": list(tile_bounds(image.tile)),
            }
        )
        for region in image_regions:
            counts = rings_rle(region.rings)
            if len(region.rings) > 1:
                segmentation: dict | list = {
                    "size": [TILE_SIZE, TILE_SIZE],
                    "counts": coco_rle.to_uncompressed(counts, TILE_SIZE, TILE_SIZE),
                }
                bbox = list(coco_rle.bbox(counts, TILE_SIZE, TILE_SIZE))
            else:
                segmentation = [list(region.rings[0])]
                xs, ys = region.rings[0][0::2], region.rings[0][1::2]
                bbox = [float(min(xs)), float(min(ys)), float(max(xs) - min(xs)), float(max(ys) - min(ys))]
            annotations.append(
                {
                    "id": region.id,
                    "image_id": image.id,
                    "category_id": ids[region.category],
                    "segmentation": segmentation,
                    "area": float(coco_rle.area(counts, TILE_SIZE, TILE_SIZE)),
                    "bbox": bbox,
                    "iscrowd": 0,
                    "footprint_id": region.footprint_id,
                }
            )
    return {
        "info": {
            "description": "seg sample: synthetic aerial tiles of Dakar with building and road footprints",
            "version": "1.0",
            "year": 2024,
            "contributor": "seg (rendered, not real imagery)",
            "date_created": STAMP[:10],
        },
        "licenses": [{"id": 1, "name": "CC0-1.0 (synthetic imagery rendered by seg)", "url": ""}],
        "images": coco_images,
        "annotations": annotations,
        "categories": [{"id": cid, "name": name, "supercategory": "structure"} for name, cid in CATEGORIES],
    }


def via_project(images: Sequence[ImageRecord], regions: Sequence[Sequence[Region]], name: str) -> dict:
    """A VIA 2 project (what VIA 2's "Save project" writes): polygon regions with ``class`` and ``id`` attributes."""
    metadata = {}
    for image, image_regions in zip(images, regions, strict=True):
        key = f"{image.file_name}{image.file_size}"
        metadata[key] = {
            "filename": image.file_name,
            "size": image.file_size,
            "regions": [
                {
                    "shape_attributes": {
                        "name": "polygon",
                        "all_points_x": list(region.rings[0][0::2]),
                        "all_points_y": list(region.rings[0][1::2]),
                    },
                    "region_attributes": {"class": region.category, "id": str(region.id)},
                }
                for region in image_regions
            ],
            "file_attributes": {},
        }
    settings = project_settings("class", name)

    attributes = {
        "region": {
            "class": {
                "type": "dropdown",
                "description": "object class",
                "options": {name: name for name, _ in CATEGORIES},
                "default_options": {},
            },
            "id": {
                "type": "text",
                "description": "object id, shared with the COCO and Label Studio files",
                "default_value": "",
            },
        },
        "file": {},
    }
    return {
        "_via_settings": settings,
        "_via_img_metadata": metadata,
        "_via_attributes": attributes,
        "_via_data_format_version": "2.0.10",
        "_via_image_id_list": list(metadata),
    }


def _percent(value: int, size: int) -> float:
    return value * 100 / size


def labelstudio_export(images: Sequence[ImageRecord], regions: Sequence[Sequence[Region]]) -> list[dict]:
    """A Label Studio JSON export: one task per image, one annotation per task, polygons in percent of the image."""
    tasks = []
    for image, image_regions in zip(images, regions, strict=True):
        result = [
            {
                "id": str(region.id),
                "type": "polygonlabels",
                "value": {
                    "points": [
                        [_percent(x, TILE_SIZE), _percent(y, TILE_SIZE)]
                        for x, y in zip(region.rings[0][0::2], region.rings[0][1::2], strict=True)
                    ],
                    "closed": True,
                    "polygonlabels": [region.category],
                },
                "origin": "manual",
                "to_name": "image",
                "from_name": "label",
                "image_rotation": 0,
                "original_width": TILE_SIZE,
                "original_height": TILE_SIZE,
            }
            for region in image_regions
        ]
        tasks.append(
            {
                "id": image.id,
                "annotations": [
                    {
                        "id": image.id,
                        "completed_by": 1,
                        "result": result,
                        "was_cancelled": False,
                        "ground_truth": False,
                        "created_at": STAMP,
                        "updated_at": STAMP,
                        "lead_time": 60.0,
                        "prediction": {},
                        "result_count": len(result),
                        "task": image.id,
                        "project": 1,
                        "parent_prediction": None,
                        "parent_annotation": None,
                    }
                ],
                "file_upload": image.file_name,
                "drafts": [],
                "predictions": [],
                "data": {"image": f"{LS_IMAGE_PREFIX}{image.file_name}"},
                "meta": {},
                "created_at": STAMP,
                "updated_at": STAMP,
                "inner_id": image.id,
                "total_annotations": 1,
                "cancelled_annotations": 0,
                "total_predictions": 0,
                "project": 1,
                "updated_by": 1,
            }
        )
    return tasks
