"""Generate a deterministic, COCO-val2017-sized instances file for the benchmarks.

The file looks like ``instances_val2017.json`` where it matters for conversion speed and memory: 5,000 images (640x480,
one in ten portrait 480x640), about 7.4 objects per image (skewed: many images with a few objects, some crowded ones,
about 1% with none), COCO's 80 categories with their non-contiguous ids, star-shaped polygons of 10-60 vertices whose
sizes follow COCO's small/medium/large mix (about 41% / 34% / 25%), about 5% of objects in two parts, polygons clipped
to the image, and about 1% crowd objects stored as compressed RLE (``iscrowd=1``). Same seed, same bytes.

Example:
    .venv/bin/python benchmarks/make_coco.py --images 5000 -o benchmarks/data/val5k.json
    .venv/bin/python benchmarks/make_coco.py --images 200 -o benchmarks/data/val200.json --with-images
"""

from __future__ import annotations

import argparse
import json
import math
import os
from pathlib import Path

import numpy as np
from pycocotools import mask as cocomask

#: COCO 2017's 80 categories: (id, name, supercategory). The ids skip 12, 26, 29, 30, 45, 66, 68, 69, 71 and 83.
COCO_CATEGORIES = [
    (1, "person", "person"), (2, "bicycle", "vehicle"), (3, "car", "vehicle"), (4, "motorcycle", "vehicle"),
    (5, "airplane", "vehicle"), (6, "bus", "vehicle"), (7, "train", "vehicle"), (8, "truck", "vehicle"),
    (9, "boat", "vehicle"), (10, "traffic light", "outdoor"), (11, "fire hydrant", "outdoor"),
    (13, "stop sign", "outdoor"), (14, "parking meter", "outdoor"), (15, "bench", "outdoor"), (16, "bird", "animal"),
    (17, "cat", "animal"), (18, "dog", "animal"), (19, "horse", "animal"), (20, "sheep", "animal"),
    (21, "cow", "animal"), (22, "elephant", "animal"), (23, "bear", "animal"), (24, "zebra", "animal"),
    (25, "giraffe", "animal"), (27, "backpack", "accessory"), (28, "umbrella", "accessory"),
    (31, "handbag", "accessory"), (32, "tie", "accessory"), (33, "suitcase", "accessory"), (34, "frisbee", "sports"),
    (35, "skis", "sports"), (36, "snowboard", "sports"), (37, "sports ball", "sports"), (38, "kite", "sports"),
    (39, "baseball bat", "sports"), (40, "baseball glove", "sports"), (41, "skateboard", "sports"),
    (42, "surfboard", "sports"), (43, "tennis racket", "sports"), (44, "bottle", "kitchen"),
    (46, "wine glass", "kitchen"), (47, "cup", "kitchen"), (48, "fork", "kitchen"), (49, "knife", "kitchen"),
    (50, "spoon", "kitchen"), (51, "bowl", "kitchen"), (52, "banana", "food"), (53, "apple", "food"),
    (54, "sandwich", "food"), (55, "orange", "food"), (56, "broccoli", "food"), (57, "carrot", "food"),
    (58, "hot dog", "food"), (59, "pizza", "food"), (60, "donut", "food"), (61, "cake", "food"),
    (62, "chair", "furniture"), (63, "couch", "furniture"), (64, "potted plant", "furniture"),
    (65, "bed", "furniture"), (67, "dining table", "furniture"), (70, "toilet", "furniture"),
    (72, "tv", "electronic"), (73, "laptop", "electronic"), (74, "mouse", "electronic"),
    (75, "remote", "electronic"), (76, "keyboard", "electronic"), (77, "cell phone", "electronic"),
    (78, "microwave", "appliance"), (79, "oven", "appliance"), (80, "toaster", "appliance"),
    (81, "sink", "appliance"), (82, "refrigerator", "appliance"), (84, "book", "indoor"), (85, "clock", "indoor"),
    (86, "vase", "indoor"), (87, "scissors", "indoor"), (88, "teddy bear", "indoor"), (89, "hair drier", "indoor"),
    (90, "toothbrush", "indoor"),
]  # fmt: skip

CROWD_RATE = 0.01
TWO_PART_RATE = 0.05
PORTRAIT_RATE = 0.10
EMPTY_IMAGE_RATE = 0.01
MEAN_OBJECTS = 7.4


def _object_counts(rng: np.random.Generator, n_images: int) -> np.ndarray:
    """Objects per image: a negative binomial (skewed like COCO's), a few empty images, capped at 60."""
    # Negative binomial with mean m and shape r: p = r / (r + m). Shape 1.5 gives COCO's long tail.
    shape = 1.5
    mean = (MEAN_OBJECTS / (1 - EMPTY_IMAGE_RATE)) - 1
    counts = 1 + rng.negative_binomial(shape, shape / (shape + mean), size=n_images)
    counts[rng.random(n_images) < EMPTY_IMAGE_RATE] = 0
    return np.minimum(counts, 60)


def _object_radius(rng: np.random.Generator, width: int, height: int) -> float:
    """A mean radius giving COCO's size mix: small < 32^2 px, medium < 96^2 px, large above."""
    kind = rng.random()
    if kind < 0.41:
        area = math.exp(rng.uniform(math.log(40), math.log(32**2)))
    elif kind < 0.75:
        area = math.exp(rng.uniform(math.log(32**2), math.log(96**2)))
    else:
        area = math.exp(rng.uniform(math.log(96**2), math.log(0.6 * width * height)))
    # A star with radii r * U(0.6, 1.0) covers about pi * r^2 * E[U^2] = 0.65 * pi * r^2.
    return math.sqrt(area / (0.65 * math.pi))


def _star(rng: np.random.Generator, cx: float, cy: float, radius: float, width: int, height: int) -> list[float]:
    """A star-shaped ring around (cx, cy), clipped to the image, as a flat COCO ring rounded to 2 decimals."""
    n = int(np.clip(10 + radius / 4 + rng.integers(0, 8), 10, 60))
    angles = np.sort(rng.uniform(0, 2 * math.pi, n))
    radii = radius * rng.uniform(0.6, 1.0, n)
    xs = np.clip(cx + radii * np.cos(angles), 0, width)
    ys = np.clip(cy + radii * np.sin(angles), 0, height)
    return np.round(np.stack([xs, ys], axis=1).ravel(), 2).tolist()


def _ring_area(ring: list[float]) -> float:
    """Shoelace area of a flat ring (COCO's ``area`` for polygons is the polygon's, not the mask's)."""
    xs, ys = np.asarray(ring[0::2]), np.asarray(ring[1::2])
    return float(abs(xs @ ys[np.r_[1 : xs.size, 0]] - ys @ xs[np.r_[1 : xs.size, 0]]) / 2)


def _bbox(rings: list[list[float]]) -> list[float]:
    xs = np.concatenate([np.asarray(r[0::2]) for r in rings])
    ys = np.concatenate([np.asarray(r[1::2]) for r in rings])
    x0, y0 = float(xs.min()), float(ys.min())
    return [round(x0, 2), round(y0, 2), round(float(xs.max()) - x0, 2), round(float(ys.max()) - y0, 2)]


def _polygon_object(rng: np.random.Generator, width: int, height: int) -> dict:
    radius = _object_radius(rng, width, height)
    parts = 2 if rng.random() < TWO_PART_RATE else 1
    rings = []
    for _ in range(parts):
        cx, cy = rng.uniform(0, width), rng.uniform(0, height)
        rings.append(_star(rng, cx, cy, radius / math.sqrt(parts), width, height))
    area = sum(_ring_area(r) for r in rings)
    if area < 1.0:  # clipped to a sliver on the border: move it inside
        rings = [_star(rng, width / 2, height / 2, max(radius, 4.0), width, height)]
        area = _ring_area(rings[0])
    return {"segmentation": rings, "area": round(area, 2), "bbox": _bbox(rings), "iscrowd": 0}


def _crowd_object(rng: np.random.Generator, width: int, height: int) -> dict:
    """A crowd region: several overlapping stars (a large blob), stored as compressed RLE like COCO's."""
    radius = math.sqrt(rng.uniform(0.02, 0.15) * width * height / math.pi)
    cx, cy = rng.uniform(radius / 2, width - radius / 2), rng.uniform(radius / 2, height - radius / 2)
    rings = [
        _star(rng, cx + rng.normal(0, radius / 2), cy + rng.normal(0, radius / 2), radius / 2, width, height)
        for _ in range(int(rng.integers(3, 7)))
    ]
    rle = cocomask.merge(cocomask.frPyObjects(rings, height, width))
    x, y, w, h = cocomask.toBbox(rle).tolist()
    return {
        "segmentation": {"size": [height, width], "counts": rle["counts"].decode("ascii")},
        "area": int(cocomask.area(rle)),
        "bbox": [float(x), float(y), float(w), float(h)],
        "iscrowd": 1,
    }


def make_coco(n_images: int = 5000, seed: int = 0) -> dict:
    """Build the instances dict (images, annotations, categories) for ``n_images`` images."""
    rng = np.random.default_rng(seed)
    image_ids = np.sort(rng.choice(600_000, size=n_images, replace=False) + 1)
    counts = _object_counts(rng, n_images)
    cat_ids = [c[0] for c in COCO_CATEGORIES]
    # COCO's class frequencies are skewed (person is ~25% of objects): draw categories from a Zipf-like law.
    weights = 1 / np.arange(1, len(cat_ids) + 1) ** 0.9
    weights /= weights.sum()
    categories = iter(np.asarray(cat_ids)[rng.choice(len(cat_ids), size=int(counts.sum()), p=weights)].tolist())
    images, annotations = [], []
    for image_id, count in zip(image_ids.tolist(), counts.tolist(), strict=True):
        width, height = (480, 640) if rng.random() < PORTRAIT_RATE else (640, 480)
        images.append(
            {
                "license": int(rng.integers(1, 9)),
                "file_name": f"{image_id:012d}.jpg",
                "coco_url": f"http://images.cocodataset.org/val2017/{image_id:012d}.jpg",
                "height": height,
                "width": width,
                "date_captured": "2013-11-14 17:02:52",
                "id": image_id,
            }
        )
        for _ in range(count):
            crowd = rng.random() < CROWD_RATE
            obj = _crowd_object(rng, width, height) if crowd else _polygon_object(rng, width, height)
            annotations.append(
                {**obj, "image_id": image_id, "category_id": next(categories), "id": len(annotations) + 1}
            )
    return {
        "info": {
            "description": "seg benchmark: synthetic COCO-val2017-sized instances",
            "version": "1.0",
            "year": 2017,
            "contributor": "seg benchmarks/make_coco.py",
            "date_created": "2017/09/01",
        },
        "licenses": [{"url": f"http://example.org/license/{i}", "id": i, "name": f"License {i}"} for i in range(1, 9)],
        "images": images,
        "annotations": annotations,
        "categories": [{"supercategory": s, "id": i, "name": n} for i, n, s in COCO_CATEGORIES],
    }


def write_images(coco: dict, folder: Path, seed: int = 0) -> None:
    """Write one small (low-quality, smooth) JPEG per image at its declared size into ``folder``."""
    from PIL import Image

    rng = np.random.default_rng(seed + 1)
    folder.mkdir(parents=True, exist_ok=True)
    for image in coco["images"]:
        # An 8x6 random colour grid scaled up: realistic size on disk (~10 KB), cheap to make.
        small = rng.integers(0, 256, size=(6, 8, 3), dtype=np.uint8)
        picture = Image.fromarray(small).resize((image["width"], image["height"]), Image.Resampling.BILINEAR)
        picture.save(folder / image["file_name"], quality=60)


def write_json(coco: dict, path: Path) -> None:
    """Write ``coco`` compactly (like the real file), through a temporary name then a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(temporary, "w", encoding="utf-8") as f:
        f.write(json.dumps(coco, separators=(",", ":")))  # dumps uses the C encoder, dump does not
    os.replace(temporary, path)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=5000, help="number of images (default 5000, COCO val2017)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("-o", "--output", type=Path, default=Path("benchmarks/data/val5k.json"))
    parser.add_argument(
        "--with-images",
        nargs="?",
        const="",
        default=None,
        metavar="DIR",
        help="also write JPEGs (default folder: <output stem>_images beside the JSON)",
    )
    args = parser.parse_args(argv)
    coco = make_coco(args.images, args.seed)
    write_json(coco, args.output)
    n_objects = len(coco["annotations"])
    crowd = sum(a["iscrowd"] for a in coco["annotations"])
    print(
        f"{args.output}: {len(coco['images'])} images, {n_objects} objects "
        f"({n_objects / max(len(coco['images']), 1):.2f} per image, {crowd} crowd), "
        f"{args.output.stat().st_size / 1e6:.1f} MB"
    )
    if args.with_images is not None:
        folder = Path(args.with_images) if args.with_images else args.output.with_name(f"{args.output.stem}_images")
        write_images(coco, folder, args.seed)
        print(f"{folder}: {len(coco['images'])} JPEGs")


if __name__ == "__main__":
    main()
