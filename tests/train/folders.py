"""Small generated mask folders in the layout ``seg convert --to masks --split`` writes, for the training tests.

Each image is a textured background with rectangles and discs whose colour tells their class, so a tiny model can
learn the task in a few epochs; the masks hold the class indices (0 = background).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import numpy.typing as npt
from PIL import Image

#: Mean colour of each class (background first) in the generated RGB images.
COLOURS = np.array([[90, 110, 80], [200, 60, 50], [60, 80, 210], [220, 200, 60]], dtype=np.float64)


def scene(
    rng: np.random.Generator, size: tuple[int, int], classes: int
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8]]:
    """One (H, W, 3) uint8 image and its (H, W) class-index mask, with 1-4 shapes of classes 1..classes-1."""
    height, width = size
    label = np.zeros((height, width), np.uint8)
    yy, xx = np.mgrid[0:height, 0:width]
    for _ in range(int(rng.integers(1, 5))):
        cls = int(rng.integers(1, classes))
        cy, cx = rng.integers(0, height), rng.integers(0, width)
        r = int(rng.integers(max(3, min(size) // 10), max(4, min(size) // 4)))
        if rng.random() < 0.5:
            inside = (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
        else:
            inside = (abs(yy - cy) <= r) & (abs(xx - cx) <= int(r * rng.uniform(0.5, 1.5)))
        label[inside] = cls
    noise = rng.normal(0, 12, (height, width, 3))
    image = np.clip(COLOURS[label] + noise, 0, 255).astype(np.uint8)
    return image, label


def write_mask_folder(
    root: Path,
    *,
    train: int = 8,
    test: int = 4,
    size: tuple[int, int] = (64, 64),
    classes: int = 3,
    seed: int = 0,
    geotiff_bands: int | None = None,
    binary_255: bool = False,
) -> Path:
    """Write ``root/{train,test}/{images,masks}`` and ``root/classes.json``; returns ``root``.

    ``geotiff_bands`` writes the images as uint16 GeoTIFFs with that many bands (the RGB bands scaled by 40, the rest
    noise); ``binary_255`` writes two-class masks as 0/255, the way many tools save them.
    """
    import rasterio
    from rasterio.transform import from_origin

    rng = np.random.default_rng(seed)
    if binary_255:
        classes = 2
    names = ["background", *(f"class{i}" for i in range(1, classes))]
    root.mkdir(parents=True, exist_ok=True)
    (root / "classes.json").write_text(json.dumps({str(i): n for i, n in enumerate(names)}), encoding="utf-8")
    for split, count in (("train", train), ("test", test)):
        (root / split / "images").mkdir(parents=True, exist_ok=True)
        (root / split / "masks").mkdir(parents=True, exist_ok=True)
        for index in range(count):
            image, label = scene(rng, size, classes)
            stem = f"{split}_{index:03d}"
            mask = label * 255 if binary_255 else label
            Image.fromarray(mask.astype(np.uint8), mode="L").save(root / split / "masks" / f"{stem}.png")
            if geotiff_bands is None:
                Image.fromarray(image).save(root / split / "images" / f"{stem}.png")
                continue
            extra = rng.integers(0, 4000, (size[0], size[1], max(0, geotiff_bands - 3)))
            bands = np.concatenate([image.astype(np.uint16) * 40, extra.astype(np.uint16)], axis=-1)
            bands = bands[..., :geotiff_bands]
            profile = {
                "driver": "GTiff",
                "height": size[0],
                "width": size[1],
                "count": geotiff_bands,
                "dtype": "uint16",
                "crs": "EPSG:3857",
                "transform": from_origin(-1_900_000, 1_600_000, 0.6, 0.6),
            }
            with rasterio.open(root / split / "images" / f"{stem}.tif", "w", **profile) as out:
                out.write(np.moveaxis(bands, -1, 0))
    return root


def write_encoded_folder(root: Path, count: int = 4) -> Path:
    """``root/train`` with masks of random blobs (classes 0/1) and images whose three bands are the mask times 250:
    after any augmentation, an image pixel tells which label it must have."""
    rng = np.random.default_rng(0)
    for kind in ("images", "masks"):
        (root / "train" / kind).mkdir(parents=True)
    yy, xx = np.mgrid[0:48, 0:64]
    for index in range(count):
        mask = np.zeros((48, 64), np.uint8)
        for _ in range(3):
            cy, cx, r = rng.integers(0, 48), rng.integers(0, 64), rng.integers(4, 12)
            mask[(yy - cy) ** 2 + (xx - 2 * cx // 3) ** 2 < r * r] = 1
        mask[:6, :20] = 1  # an asymmetric corner: flips and rotations show
        Image.fromarray(mask).save(root / "train" / "masks" / f"{index}.png")
        Image.fromarray(np.repeat(mask[..., None] * 250, 3, axis=2)).save(root / "train" / "images" / f"{index}.png")
    return root
