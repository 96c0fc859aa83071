"""Synthetic aerial imagery of the sample's scene, rendered with numpy and PIL (no real imagery, no download).

The whole area is rendered as one mosaic so that objects continue across tile borders, then cut into 256 x 256 tiles.
Footprints are rasterized exactly as their annotations are (pycocotools' polygon rasterization), so a roof covers its
mask pixel for pixel before the final light blur. Sandy ground with noise, asphalt and packed-sand roads, roofs in
several colours with shadows, parapets or a shaded pitch, and trees with shadows.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageFilter

from seg.collector.tiles import TILE_SIZE, meters_to_lnglat, meters_to_pixels, pixels_to_meters, resolution
from seg.dataset import rle as coco_rle
from seg.dataset.polygons import polygons_to_rle
from seg.sample.scene import ROOF_COLOURS, SEED, Footprint, Scene, pixel_rings

SAND = np.array([206.0, 184.0, 146.0], np.float32)
DRY_GRASS = np.array([152.0, 150.0, 104.0], np.float32)
STREET = np.array([150.0, 138.0, 120.0], np.float32)
ASPHALT = np.array([66.0, 66.0, 70.0], np.float32)
SHADOW = (3, 2)


def _smooth_noise(rng: np.random.Generator, size: int, cells: int) -> npt.NDArray[np.float32]:
    """Unit-variance-ish noise varying over ``size / cells`` pixels (bicubic upsampling of a coarse grid)."""
    coarse = rng.standard_normal((cells + 1, cells + 1)).astype(np.float32)
    image = Image.fromarray(coarse, mode="F").resize((size, size), Image.Resampling.BICUBIC)
    return np.asarray(image, dtype=np.float32)


def _window_mask(rings: list[list[int]], box: tuple[int, int, int, int]) -> npt.NDArray[np.bool_]:
    """Rasterize rings (outer first, holes after) inside the mosaic window ``box = (x0, y0, x1, y1)``."""
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    mask = np.zeros((h, w), bool)
    for i, ring in enumerate(rings):
        local = [v - (x0 if k % 2 == 0 else y0) for k, v in enumerate(ring)]
        part = coco_rle.decode(polygons_to_rle([local], h, w), h, w).astype(bool)
        mask = mask | part if i == 0 else mask & ~part
    return mask


def _box(rings: list[list[int]], size: int, pad: int) -> tuple[int, int, int, int] | None:
    xs, ys = rings[0][0::2], rings[0][1::2]
    box = (max(min(xs) - pad, 0), max(min(ys) - pad, 0), min(max(xs) + pad + 1, size), min(max(ys) + pad + 1, size))
    return box if box[0] < box[2] and box[1] < box[3] else None


def _shifted(mask: npt.NDArray[np.bool_], dx: int, dy: int) -> npt.NDArray[np.bool_]:
    out = np.zeros_like(mask)
    h, w = mask.shape
    out[max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = mask[
        max(-dy, 0) : h - max(dy, 0), max(-dx, 0) : w - max(dx, 0)
    ]
    return out


def _ground(rng: np.random.Generator, size: int) -> npt.NDArray[np.float32]:
    """Sand with relief and patches of dry grass, computed at a quarter of the size and upsampled."""
    small = size // 4
    relief = 14 * _smooth_noise(rng, small, 6) + 8 * _smooth_noise(rng, small, 24) + 5 * _smooth_noise(rng, small, 96)
    grass = np.clip(_smooth_noise(rng, small, 18) - 0.9, 0, 1)[..., None] * 0.6
    image = SAND + relief[..., None] * np.array([1.0, 0.95, 0.85], np.float32)
    image = image * (1 - grass) + DRY_GRASS * grass
    coarse = Image.fromarray(np.clip(image, 0, 255).astype(np.uint8), mode="RGB")
    return np.asarray(coarse.resize((size, size), Image.Resampling.BICUBIC), dtype=np.float32)


def _draw_road(image: npt.NDArray[np.float32], fp: Footprint, scene: Scene, texture: npt.NDArray[np.float32]) -> None:
    rings = pixel_rings(fp, scene)
    box = _box(rings, scene.size, 0)
    if box is None:
        return
    x0, y0, x1, y1 = box
    mask = _window_mask(rings, box)
    colour = ASPHALT if fp.shape == "avenue" else STREET
    patch = image[y0:y1, x0:x1]
    road = colour + texture[y0:y1, x0:x1, None] * (4.0 if fp.shape == "avenue" else 9.0)
    patch[mask] = road[mask]
    if fp.shape == "avenue":
        _centre_dashes(patch, mask, rings[0], (x0, y0))


def _centre_dashes(
    patch: npt.NDArray[np.float32], mask: npt.NDArray[np.bool_], ring: list[int], origin: tuple[int, int]
) -> None:
    """White dashes along the middle of a road rectangle (corners 0-1 and 3-2 are its long sides)."""
    (ax, ay), (bx, by) = (
        ((ring[0] + ring[6]) / 2, (ring[1] + ring[7]) / 2),
        ((ring[2] + ring[4]) / 2, (ring[3] + ring[5]) / 2),
    )
    length = math.hypot(bx - ax, by - ay)
    ys, xs = np.nonzero(mask)
    px, py = xs + origin[0] + 0.5, ys + origin[1] + 0.5
    along = ((px - ax) * (bx - ax) + (py - ay) * (by - ay)) / length
    across = ((px - ax) * (by - ay) - (py - ay) * (bx - ax)) / length
    dash = (np.abs(across) < 0.9) & ((along % 24) < 12)
    patch[ys[dash], xs[dash]] = (222.0, 222.0, 214.0)


def _draw_building(image: npt.NDArray[np.float32], fp: Footprint, scene: Scene, rng: np.random.Generator) -> None:
    rings = pixel_rings(fp, scene)
    box = _box(rings, scene.size, max(SHADOW) + 1)
    if box is None or fp.roof is None:
        return
    x0, y0, x1, y1 = box
    roof = _window_mask(rings, box)
    patch = image[y0:y1, x0:x1]
    shadow = _shifted(roof, *SHADOW) & ~roof
    patch[shadow] *= 0.58
    colour = np.array(ROOF_COLOURS[fp.roof.colour], dtype=np.float32) * float(rng.uniform(0.92, 1.06))
    h, w = roof.shape
    shade = np.ones((h, w), np.float32)
    if fp.roof.pitched:
        ox, oy = meters_to_pixels(*_centroid(fp), scene.zoom)
        cx, cy = ox - scene.origin[0] - x0, oy - scene.origin[1] - y0
        yy, xx = np.mgrid[0:h, 0:w] + 0.5
        side = (xx - cx) * -math.sin(fp.roof.angle) + (yy - cy) * math.cos(fp.roof.angle)
        shade[side > 0] = 0.8
    else:
        inner = roof & _shifted(roof, 1, 0) & _shifted(roof, -1, 0) & _shifted(roof, 0, 1) & _shifted(roof, 0, -1)
        shade[roof & ~inner] = 0.78
        if fp.shape in ("rectangle", "l_shape", "courtyard") and inner.sum() > 200:
            ys, xs = np.nonzero(inner)
            for k in rng.integers(0, len(ys), 2):
                shade[ys[k] : ys[k] + 3, xs[k] : xs[k] + 3] *= 0.7
    shade *= 1 + 0.03 * rng.standard_normal((h, w)).astype(np.float32)
    painted = colour[None, None, :] * shade[..., None]
    patch[roof] = painted[roof]


def _centroid(fp: Footprint) -> tuple[float, float]:
    ring = fp.rings[0]
    return sum(p[0] for p in ring) / len(ring), sum(p[1] for p in ring) / len(ring)


def _draw_trees(image: npt.NDArray[np.float32], scene: Scene, rng: np.random.Generator) -> None:
    ground_res = _ground_resolution(scene)
    for tree in scene.trees:
        gx, gy = meters_to_pixels(tree.x, tree.y, scene.zoom)
        cx, cy = gx - scene.origin[0], gy - scene.origin[1]
        r = tree.radius / ground_res
        x0, y0 = max(int(cx - r) - 4, 0), max(int(cy - r) - 4, 0)
        x1, y1 = min(int(cx + r) + 6, scene.size), min(int(cy + r) + 6, scene.size)
        if x0 >= x1 or y0 >= y1:
            continue
        yy, xx = np.mgrid[y0:y1, x0:x1] + 0.5
        patch = image[y0:y1, x0:x1]
        shadow = np.hypot(xx - cx - SHADOW[0] * 1.5, yy - cy - SHADOW[1] * 1.5) < r
        patch[shadow] *= 0.6
        d = np.hypot(xx - cx, yy - cy)
        crown = d < r
        light = 1 + 0.35 * (1 - d / r) - 0.25 * ((xx - cx) + (yy - cy)) / (2 * r)
        leaves = 1 + 0.12 * rng.standard_normal(d.shape)
        green = np.array([54.0, 94.0, 50.0]) * float(rng.uniform(0.85, 1.15))
        patch[crown] = (green[None, None, :] * (light * leaves)[..., None])[crown]


def _ground_resolution(scene: Scene) -> float:
    """Ground metres per pixel at the scene's north edge."""
    lat = meters_to_lnglat(*pixels_to_meters(*scene.origin, scene.zoom))[1]
    return resolution(scene.zoom) * math.cos(math.radians(lat))


def render_mosaic(scene: Scene, seed: int = SEED) -> npt.NDArray[np.uint8]:
    """Render the whole scene as one ``(size, size, 3)`` uint8 RGB image."""
    rng = np.random.default_rng(seed + 1)
    image = _ground(rng, scene.size)
    texture = _smooth_noise(rng, scene.size, 48)
    for fp in scene.footprints:
        if fp.category == "road":
            _draw_road(image, fp, scene, texture)
    for fp in scene.footprints:
        if fp.category == "building":
            _draw_building(image, fp, scene, rng)
    _draw_trees(image, scene, rng)
    soften = ImageFilter.Kernel((3, 3), [1, 2, 1, 2, 12, 2, 1, 2, 1])
    rgb = Image.fromarray(np.clip(image, 0, 255).astype(np.uint8), mode="RGB").filter(soften)
    noise = rng.standard_normal((scene.size, scene.size, 1), dtype=np.float32) * 3.0
    return np.clip(np.asarray(rgb, dtype=np.float32) + noise, 0, 255).astype(np.uint8)


def cut_tiles(mosaic: npt.NDArray[np.uint8], grid: int) -> list[npt.NDArray[np.uint8]]:
    """The mosaic's tiles in row-major order (north to south, west to east), matching ``Scene.tiles``."""
    return [
        mosaic[j * TILE_SIZE : (j + 1) * TILE_SIZE, i * TILE_SIZE : (i + 1) * TILE_SIZE]
        for j in range(grid)
        for i in range(grid)
    ]
