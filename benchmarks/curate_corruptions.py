"""Inputs of the curation benchmark: clean aerial tiles with their objects, annotator-style corruptions, predictions.

The clean set is rendered with the embedded sample's own machinery (``seg.sample.scene``, ``render``, ``clip``) on
larger areas: several neighbourhoods, each from its own seed and place in Senegal (the street grid falls differently
on the tiles), each with its own exposure, every tile turned by one of the 8 rotations/flips of the square. The
sample's modules have no parameters for the area's size and place, so :func:`_area` patches their module constants
while a scene is laid out. Objects are the true pieces of every tile (tile pixels, integer vertices, courtyard
buildings with their hole), annotated as a careful human would: every vertex off the tile border moved by up to
``jitter`` pixels (1 by default), kept only where the outline stays valid.

Corruptions (one kind per corrupted image, recorded in ``corruptions.json``):

* ``shifted``: one building (>= 80 px, 8 px clear of the border) moved by 3-8 px in a random direction;
* ``dropped``: 1-3 objects of >= 40 px left out;
* ``wrong_class``: one object of >= 40 px given the other class (building <-> road);
* ``scribble``: an object added where nothing is: a brush stroke (mask only) or a blob outline;
* ``self_intersecting``: two vertices of a building outline swapped so that it crosses itself (mask re-rasterized
  from the crossed outline, as a polygon reader would);
* ``half_done``: every object whose box centre lies in one half of the image (left, right, top or bottom) left out,
  where that drops 30-70% of the image's objects.

Predictions simulate a decent model run on the images: the true objects (before annotation jitter and corruption),
5% missed, each outline's vertices moved by up to 2 px, scores uniform in 0.6-0.95, and a false positive (a blob of
radius 4-15 px, score 0.3-0.55) on about one image in five.
"""

from __future__ import annotations

import contextlib
import json
import math
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from unittest import mock

import numpy as np
import numpy.typing as npt

SIZE = 256
CATEGORIES = ("building", "road")
KINDS = ("shifted", "dropped", "wrong_class", "scribble", "self_intersecting", "half_done")
#: Places the neighbourhoods are laid out at (lon, lat): Dakar, Thies, Saint-Louis, Touba, Kaolack, Ziguinchor.
PLACES = ((-17.45, 14.69), (-16.93, 14.79), (-16.49, 16.03), (-15.88, 14.85), (-16.07, 14.15), (-16.27, 12.58))

Rings = tuple[tuple[int, ...], ...]


@dataclass(frozen=True)
class Obj:
    """One object of one image: outline rings in pixels (outer first, holes after), or a ready mask (``rle``)."""

    category: str
    rings: Rings | None
    rle: str | None = None
    score: float = float("nan")


@dataclass
class Generated:
    """One generated image: its id, the true objects, the annotated ones and the predicted ones."""

    image_id: str
    truth: list[Obj]
    annotated: list[Obj] = field(default_factory=list)
    predicted: list[Obj] = field(default_factory=list)


# -- clean tiles -----------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _area(grid: int, lon: float, lat: float) -> Iterator[None]:
    """Lay scenes out on ``grid`` x ``grid`` tiles around (lon, lat) (the sample's constants, patched meanwhile)."""
    import seg.sample.scene as scene_module

    with mock.patch.multiple(scene_module, GRID=grid, LON=lon, LAT=lat):
        yield


def _dihedral(k: int, pixels: npt.NDArray[np.uint8], rings: list[Rings]) -> tuple[npt.NDArray[np.uint8], list[Rings]]:
    """Turn a square tile and its rings by transform ``k`` (bit 4: transpose, bit 1: flip x, bit 2: flip y).

    Ring vertices are pixel corners, so ``x -> SIZE - x`` mirrors a rasterized polygon exactly.
    """
    if k & 4:
        pixels = pixels.swapaxes(0, 1)
    if k & 1:
        pixels = pixels[:, ::-1]
    if k & 2:
        pixels = pixels[::-1]

    def point(x: int, y: int) -> tuple[int, int]:
        if k & 4:
            x, y = y, x
        return (SIZE - x if k & 1 else x), (SIZE - y if k & 2 else y)

    turned = [
        tuple(tuple(v for i in range(0, len(ring), 2) for v in point(ring[i], ring[i + 1])) for ring in obj_rings)
        for obj_rings in rings
    ]
    return np.ascontiguousarray(pixels), turned


def rendered_tiles(distinct: int, variants: int, seed: int) -> Iterator[tuple[npt.NDArray[np.uint8], list[Obj]]]:
    """``distinct`` rendered tiles, each given ``variants`` times turned differently (1: one random turn).

    Yields:
        (pixels (256, 256, 3) uint8, true objects) for ``distinct * variants`` images.
    """
    from seg.sample.clip import tile_pieces
    from seg.sample.render import cut_tiles, render_mosaic
    from seg.sample.scene import build_scene, pixel_rings

    rng = np.random.default_rng(seed)
    grid = max(2, min(8, math.ceil(math.sqrt(distinct))))
    made, scene_seed = 0, seed * 1000
    while made < distinct:
        scene_seed += 1
        lon, lat = PLACES[scene_seed % len(PLACES)]
        lon += float(rng.uniform(-0.02, 0.02))
        lat += float(rng.uniform(-0.02, 0.02))
        try:
            with _area(grid, lon, lat):
                scene = build_scene(scene_seed)
        except RuntimeError:  # no block of this layout can hold the sample's courtyard building
            continue
        mosaic = render_mosaic(scene, scene_seed).astype(np.float32)
        gain = rng.uniform(0.85, 1.1) * rng.uniform(0.96, 1.04, 3)
        mosaic = np.clip(mosaic * gain.astype(np.float32), 0, 255).astype(np.uint8)
        rings_px = [pixel_rings(fp, scene) for fp in scene.footprints]
        tiles = cut_tiles(mosaic, grid)
        for index in rng.permutation(grid * grid):
            if made == distinct:
                break
            pieces = tile_pieces(scene, int(index) % grid, int(index) // grid, rings_px)
            categories = [p.footprint.category for p in pieces]
            turns = [int(rng.integers(8))] if variants == 1 else range(variants)
            for k in turns:
                turned, rings = _dihedral(k, tiles[index], [p.rings for p in pieces])
                yield turned, [Obj(c, r) for c, r in zip(categories, rings, strict=True)]
            made += 1


# -- masks and outlines ----------------------------------------------------------------------------------------------


def obj_rle(obj: Obj) -> str:
    """The object's compressed COCO RLE on the 256 x 256 tile."""
    from seg.dataset.polygons import polygons_to_rle
    from seg.sample.clip import rings_rle

    if obj.rle is not None:
        return obj.rle
    if len(obj.rings) == 1:
        return polygons_to_rle([list(obj.rings[0])], SIZE, SIZE)
    return rings_rle(obj.rings, SIZE)


def _valid(rings: Rings) -> bool:
    from shapely.geometry import Polygon

    outer = rings[0]
    points = list(zip(outer[0::2], outer[1::2], strict=True))
    return len(set(points)) >= 3 and Polygon(points).is_valid


def _box(obj: Obj) -> tuple[int, int, int, int]:
    xs, ys = obj.rings[0][0::2], obj.rings[0][1::2]
    return min(xs), min(ys), max(xs), max(ys)


def _area_px(obj: Obj) -> int:
    from seg.dataset import rle as coco_rle

    return coco_rle.area(obj_rle(obj), SIZE, SIZE)


def jittered(obj: Obj, rng: np.random.Generator, pixels: int, keep_border: bool = True) -> Obj:
    """The object with every vertex moved by up to ``pixels`` (border vertices only along the border).

    The original is returned when the moved outline would cross itself, or for objects with holes.
    """
    if pixels <= 0 or obj.rings is None or len(obj.rings) != 1:
        return obj
    ring = np.asarray(obj.rings[0], np.int64)
    moved = ring + rng.integers(-pixels, pixels + 1, ring.shape)
    if keep_border:
        on_border = (ring == 0) | (ring == SIZE)
        moved[on_border] = ring[on_border]
    moved = np.clip(moved, 0, SIZE)
    rings = (tuple(int(v) for v in moved),)
    return replace(obj, rings=rings) if _valid(rings) else obj


# -- corruptions -----------------------------------------------------------------------------------------------------


def _polygons(objects: list[Obj]) -> list[int]:
    return [i for i, o in enumerate(objects) if o.rings is not None and len(o.rings) == 1]


def _shift_candidates(objects: list[Obj]) -> list[int]:
    margin = 8
    out = []
    for i in _polygons(objects):
        x0, y0, x1, y1 = _box(objects[i])
        inside = x0 >= margin and y0 >= margin and x1 <= SIZE - margin and y1 <= SIZE - margin
        if objects[i].category == "building" and inside and _area_px(objects[i]) >= 80:
            out.append(i)
    return out


def _sized(objects: list[Obj], minimum: int = 40) -> list[int]:
    return [i for i, o in enumerate(objects) if _area_px(o) >= minimum]


def _half(objects: list[Obj], rng: np.random.Generator) -> tuple[str, list[int]] | None:
    centres = []
    for o in objects:
        ring = o.rings[0] if o.rings is not None else None
        if ring is None:
            return None
        xs, ys = ring[0::2], ring[1::2]
        centres.append(((min(xs) + max(xs)) / 2, (min(ys) + max(ys)) / 2))
    sides = {
        "left": [i for i, (x, _) in enumerate(centres) if x < SIZE / 2],
        "right": [i for i, (x, _) in enumerate(centres) if x >= SIZE / 2],
        "top": [i for i, (_, y) in enumerate(centres) if y < SIZE / 2],
        "bottom": [i for i, (_, y) in enumerate(centres) if y >= SIZE / 2],
    }
    names = [str(s) for s in rng.permutation(list(sides))]
    for name in names:
        if 0.3 <= len(sides[name]) / len(objects) <= 0.7:
            return name, sides[name]
    return None


def _crossing_swap(ring: tuple[int, ...], rng: np.random.Generator) -> tuple[int, ...] | None:
    """The ring with two vertices swapped so that it crosses itself, or None when no swap does."""
    n = len(ring) // 2
    pairs = [(i, j) for i in range(n) for j in range(i + 1, n)]
    for p in rng.permutation(len(pairs)):
        i, j = pairs[int(p)]
        points = [ring[2 * k : 2 * k + 2] for k in range(n)]
        points[i], points[j] = points[j], points[i]
        swapped = tuple(v for point in points for v in point)
        if not _valid((swapped,)) and len(set(points)) >= 3:
            return swapped
    return None


def _scribble(rng: np.random.Generator) -> Obj:
    """A brush stroke (mask only) or a blob outline, somewhere on the tile."""
    from PIL import Image as PILImage
    from PIL import ImageDraw

    from seg.dataset import rle as coco_rle

    category = str(rng.choice(CATEGORIES, p=[0.7, 0.3]))
    x, y = rng.uniform(20, SIZE - 20, 2)
    if rng.random() < 0.5:
        points = [(float(x), float(y))]
        angle = rng.uniform(0, 2 * math.pi)
        for _ in range(int(rng.integers(3, 7))):
            angle += rng.uniform(-1.2, 1.2)
            step = rng.uniform(8, 25)
            x, y = np.clip(x + step * math.cos(angle), 0, SIZE - 1), np.clip(y + step * math.sin(angle), 0, SIZE - 1)
            points.append((float(x), float(y)))
        canvas = PILImage.new("L", (SIZE, SIZE), 0)
        ImageDraw.Draw(canvas).line(points, fill=1, width=int(rng.integers(3, 8)), joint="curve")
        return Obj(category, None, coco_rle.encode(np.asarray(canvas, np.uint8)))
    return Obj(category, (_blob(rng, float(x), float(y), rng.uniform(6, 18)),))


def _blob(rng: np.random.Generator, x: float, y: float, radius: float) -> tuple[int, ...]:
    n = int(rng.integers(10, 17))
    angles = np.sort(rng.uniform(0, 2 * math.pi, n))
    radii = radius * rng.uniform(0.6, 1.2, n)
    xs = np.clip(np.round(x + radii * np.cos(angles)), 0, SIZE).astype(int)
    ys = np.clip(np.round(y + radii * np.sin(angles)), 0, SIZE).astype(int)
    return tuple(int(v) for pair in zip(xs, ys, strict=True) for v in pair)


def can_corrupt(kind: str, objects: list[Obj]) -> bool:
    """Whether ``kind`` applies to an image with these (clean) objects."""
    if kind == "shifted":
        return bool(_shift_candidates(objects))
    if kind == "dropped":
        return len(objects) >= 2 and bool(_sized(objects))
    if kind == "wrong_class":
        return bool(_sized(objects))
    if kind == "scribble":
        return True
    if kind == "self_intersecting":
        return any(
            objects[i].category == "building" and len(objects[i].rings[0]) >= 8 and _area_px(objects[i]) >= 40
            for i in _polygons(objects)
        )
    if kind == "half_done":
        return len(objects) >= 4 and _half(objects, np.random.default_rng(0)) is not None
    raise ValueError(f"unknown corruption {kind!r}")


def corrupt(kind: str, objects: list[Obj], rng: np.random.Generator) -> tuple[list[Obj], dict]:
    """Apply one corruption; returns the new objects and what was done (object positions refer to ``objects``)."""
    out = list(objects)
    if kind == "shifted":
        i = int(rng.choice(_shift_candidates(objects)))
        while True:
            angle, length = rng.uniform(0, 2 * math.pi), rng.uniform(3, 8)
            dx, dy = round(length * math.cos(angle)), round(length * math.sin(angle))
            if 3 <= math.hypot(dx, dy) <= 8.5:
                break
        ring = objects[i].rings[0]
        out[i] = replace(objects[i], rings=(tuple(v + (dx if k % 2 == 0 else dy) for k, v in enumerate(ring)),))
        return out, {"objects": [i], "shift": [dx, dy]}
    if kind == "dropped":
        sized = _sized(objects)
        count = int(min(rng.integers(1, 4), len(sized), len(objects) - 1))
        gone = sorted(int(i) for i in rng.choice(sized, count, replace=False))
        return [o for k, o in enumerate(objects) if k not in gone], {"objects": gone}
    if kind == "wrong_class":
        i = int(rng.choice(_sized(objects)))
        other = next(c for c in CATEGORIES if c != objects[i].category)
        out[i] = replace(objects[i], category=other)
        return out, {"objects": [i], "annotated_category": other}
    if kind == "scribble":
        out.append(_scribble(rng))
        return out, {"objects": [len(objects)]}
    if kind == "self_intersecting":
        candidates = [
            i
            for i in _polygons(objects)
            if objects[i].category == "building" and len(objects[i].rings[0]) >= 8 and _area_px(objects[i]) >= 40
        ]
        for i in rng.permutation(candidates):
            swapped = _crossing_swap(objects[int(i)].rings[0], rng)
            if swapped is not None:
                out[int(i)] = replace(objects[int(i)], rings=(swapped,))
                return out, {"objects": [int(i)]}
        raise ValueError("no outline can be made to cross itself")
    if kind == "half_done":
        side, gone = _half(objects, rng)
        return [o for k, o in enumerate(objects) if k not in set(gone)], {"objects": gone, "side": side}
    raise ValueError(f"unknown corruption {kind!r}")


def choose_corruptions(images: list[Generated], fraction: float, rng: np.random.Generator) -> dict[int, str]:
    """``{image position: kind}``: ``fraction`` of the images, the kinds as even as eligibility allows."""
    total = round(fraction * len(images))
    wanted = {kind: total // len(KINDS) + (k < total % len(KINDS)) for k, kind in enumerate(KINDS)}
    pool = [int(i) for i in rng.permutation(len(images))]
    chosen: dict[int, str] = {}
    for kind in KINDS:
        for i in pool:
            if wanted[kind] == 0:
                break
            if i not in chosen and can_corrupt(kind, images[i].annotated):
                chosen[i] = kind
                wanted[kind] -= 1
    return dict(sorted(chosen.items()))


# -- predictions -----------------------------------------------------------------------------------------------------


def predicted(truth: list[Obj], rng: np.random.Generator, jitter: int = 2, miss: float = 0.05) -> list[Obj]:
    """A decent model's output for one image: ``miss`` of the objects missed, vertices moved by up to ``jitter``."""
    out = []
    for obj in truth:
        if rng.random() < miss:
            continue
        rings = tuple(
            tuple(int(v) for v in np.clip(np.asarray(r) + rng.integers(-jitter, jitter + 1, len(r)), 0, SIZE))
            for r in obj.rings
        )
        rle = obj_rle(Obj(obj.category, rings))
        out.append(Obj(obj.category, None, rle, float(rng.uniform(0.6, 0.95))))
    if rng.random() < 0.2:
        x, y = rng.uniform(10, SIZE - 10, 2)
        blob = _blob(rng, float(x), float(y), rng.uniform(4, 15))
        category = str(rng.choice(CATEGORIES))
        out.append(Obj(category, None, obj_rle(Obj(category, (blob,))), float(rng.uniform(0.3, 0.55))))
    return out


# -- writing ---------------------------------------------------------------------------------------------------------


def _records(images: list[Generated], which: str) -> tuple[list[dict], list[dict]]:
    image_rows, object_rows = [], []
    for image in images:
        file_name = f"{image.image_id}.jpg"
        image_rows.append({"image_id": image.image_id, "file_name": file_name, "width": SIZE, "height": SIZE})
        for k, obj in enumerate(getattr(image, which)):
            geometry = json.dumps([list(obj.rings[0])]) if obj.rings is not None and len(obj.rings) == 1 else None
            object_rows.append(
                {
                    "image_id": image.image_id,
                    "file_name": file_name,
                    "width": SIZE,
                    "height": SIZE,
                    "category": obj.category,
                    "rle": obj_rle(obj),
                    "score": obj.score,
                    "source_id": f"{image.image_id}-{k}",
                    "geometry": None if which == "predicted" else geometry,
                }
            )
    return image_rows, object_rows


def generate(
    out: Path,
    count: int,
    *,
    seed: int = 0,
    fraction: float = 0.2,
    jitter: int = 1,
    variants: int = 1,
    objects: int | None = None,
    model_jitter: int = 2,
    model_miss: float = 0.05,
) -> dict:
    """Write a benchmark input folder (reused when complete): images, clean/annotated/predicted Datasets, manifest.

    Layout: ``images/<id>.jpg``, ``clean/``, ``annotations/`` (corrupted), ``predictions/`` (seg Dataset folders whose
    image root is ``images/``), ``corruptions.json`` (``{"images": N, "corrupted": [{image_id, kind, ...}]}``).

    Args:
        out: the folder.
        count: number of images.
        seed: seed of everything.
        fraction: share of the images corrupted.
        jitter: clean annotators' vertex noise in pixels.
        variants: turns of each rendered tile (1: every image is its own tile; 8: all rotations and flips).
        objects: thin the true objects at random to this many in all (None keeps all).
        model_jitter, model_miss: the simulated model's vertex noise (pixels) and share of objects missed.
    """
    from PIL import Image as PILImage

    from seg.dataset.core import Category, Dataset
    from seg.dataset.store import save_dataset

    if (out / ".complete").exists():
        return json.loads((out / "corruptions.json").read_text())
    shutil.rmtree(out, ignore_errors=True)
    (out / "images").mkdir(parents=True)
    # one stream per step, so that changing the model's noise leaves the annotations and corruptions as they were
    thin_rng, annotator_rng, model_rng, corrupt_rng = (
        np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(4)
    )
    images: list[Generated] = []
    distinct = math.ceil(count / variants)
    for n, (pixels, truth) in enumerate(rendered_tiles(distinct, variants, seed)):
        if n == count:
            break
        image_id = f"{n:06d}"
        PILImage.fromarray(pixels, "RGB").save(out / "images" / f"{image_id}.jpg", quality=90)
        images.append(Generated(image_id, truth))
    if objects is not None:
        total = sum(len(i.truth) for i in images)
        keep = np.zeros(total, bool)
        keep[thin_rng.choice(total, min(objects, total), replace=False)] = True
        start = 0
        for image in images:
            n = len(image.truth)
            image.truth = [o for o, kept in zip(image.truth, keep[start : start + n], strict=True) if kept]
            start += n
    for image in images:
        image.annotated = [jittered(o, annotator_rng, jitter) for o in image.truth]
        image.predicted = predicted(image.truth, model_rng, model_jitter, model_miss)
    clean = [Generated(i.image_id, i.truth, list(i.annotated)) for i in images]
    chosen = choose_corruptions(images, fraction, corrupt_rng)
    manifest = []
    for i, kind in chosen.items():
        images[i].annotated, detail = corrupt(kind, images[i].annotated, corrupt_rng)
        manifest.append({"image_id": images[i].image_id, "kind": kind, **detail})
    categories = [Category(name, k + 1) for k, name in enumerate(CATEGORIES)]
    for name, source, which in (("clean", clean, "annotated"), ("annotations", images, "annotated")):
        rows = _records(source, which)
        save_dataset(Dataset.from_records(*rows, categories, image_root=out / "images"), out / name)
    rows = _records(images, "predicted")
    save_dataset(Dataset.from_records(*rows, categories, image_root=out / "images"), out / "predictions")
    summary = {
        "images": len(images),
        "objects": sum(len(i.annotated) for i in images),
        "seed": seed,
        "fraction": fraction,
        "jitter": jitter,
        "variants": variants,
        "model_jitter": model_jitter,
        "model_miss": model_miss,
        "corrupted": manifest,
    }
    (out / "corruptions.json").write_text(json.dumps(summary, indent=1))
    (out / ".complete").write_text("")
    return summary
