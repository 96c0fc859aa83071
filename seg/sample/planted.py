"""Annotations of the sample, with a handful of realistically poor ones planted for curation to find.

The true pieces of every tile become annotated regions with ids counted across the whole sample. Then, in chosen
tiles, one building each is annotated badly: shifted off its roof, left out, drawn as a self-intersecting
("bow-tie") polygon, given the wrong class, or annotated twice. The same regions go into every annotation file, so the
errors are the same in COCO, VIA and Label Studio; :func:`annotate` also returns the manifest that names them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from seg.sample.clip import Piece

#: (kind, tile index in the grid's row-major order): where each error is planted.
PLANTED: tuple[tuple[str, int], ...] = (
    ("shifted", 8),
    ("missing", 15),
    ("self_intersecting", 20),
    ("wrong_class", 27),
    ("duplicate", 33),
)
SHIFT = (7, 5)
WRONG_CLASS = "road"
MARGIN = 12
MIN_AREA = 150


@dataclass(frozen=True)
class Region:
    """One annotated object, as written to every annotation file (tile pixels, outer ring first, holes after)."""

    id: int
    category: str
    rings: tuple[tuple[int, ...], ...]
    footprint_id: int


def _eligible(piece: Piece, kind: str) -> bool:
    if piece.footprint.category != "building" or piece.cut or piece.area < MIN_AREA:
        return False
    shapes = ("rectangle",) if kind == "self_intersecting" else ("rectangle", "l_shape", "rotated")
    if piece.footprint.shape not in shapes:
        return False
    xs, ys = piece.rings[0][0::2], piece.rings[0][1::2]
    size = 256
    return min(xs) >= MARGIN and min(ys) >= MARGIN and max(xs) <= size - MARGIN and max(ys) <= size - MARGIN


def _choose(tiles: Sequence[Sequence[Piece]]) -> dict[tuple[int, int], str]:
    """``{(tile index, piece index): kind}`` for every planted error."""
    chosen: dict[tuple[int, int], str] = {}
    used: set[int] = set()
    for kind, start in PLANTED:
        for t in [*range(start, len(tiles)), *range(start)]:
            if t in used:
                continue
            found = next((i for i, piece in enumerate(tiles[t]) if _eligible(piece, kind)), None)
            if found is not None:
                chosen[(t, found)] = kind
                used.add(t)
                break
        else:
            raise RuntimeError(f"no building fit to plant a {kind!r} error")
    return chosen


def _bbox(rings: tuple[tuple[int, ...], ...]) -> list[int]:
    xs, ys = rings[0][0::2], rings[0][1::2]
    return [min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)]


def annotate(tiles: Sequence[Sequence[Piece]], file_names: Sequence[str]) -> tuple[list[list[Region]], list[dict]]:
    """Turn true pieces into annotated regions with the planted errors.

    Args:
        tiles: the pieces of every tile, in image order.
        file_names: the image file name of every tile.

    Returns:
        The regions of every tile, and the planted-error manifest (one dict per error: ``kind``, ``image_id`` (the
        COCO image id), ``file_name``, ``object_id`` (the region id; for a missing object the id it would have had,
        which no file uses), ``footprint_id``, ``category`` (the true class), ``bbox`` (true ``[x, y, w, h]``)
        and kind-specific details).
    """
    chosen = _choose(tiles)
    regions: list[list[Region]] = []
    manifest: list[dict] = []
    next_id = 1
    for t, pieces in enumerate(tiles):
        out: list[Region] = []
        for i, piece in enumerate(pieces):
            region = Region(next_id, piece.footprint.category, piece.rings, piece.footprint.id)
            next_id += 1
            kind = chosen.get((t, i))
            if kind is None:
                out.append(region)
                continue
            entry = {
                "kind": kind,
                "image_id": t + 1,
                "file_name": file_names[t],
                "object_id": region.id,
                "footprint_id": region.footprint_id,
                "category": region.category,
                "bbox": _bbox(piece.rings),
            }
            if kind == "shifted":
                dx, dy = SHIFT
                moved = tuple(tuple(v + (dx if k % 2 == 0 else dy) for k, v in enumerate(r)) for r in region.rings)
                out.append(Region(region.id, region.category, moved, region.footprint_id))
                entry["shift"] = [dx, dy]
            elif kind == "self_intersecting":
                ring = region.rings[0]
                bowtie = ring[0:2] + ring[4:6] + ring[2:4] + ring[6:]
                out.append(Region(region.id, region.category, (bowtie, *region.rings[1:]), region.footprint_id))
            elif kind == "wrong_class":
                out.append(Region(region.id, WRONG_CLASS, region.rings, region.footprint_id))
                entry["annotated_category"] = WRONG_CLASS
            elif kind == "duplicate":
                out.append(region)
                out.append(Region(next_id, region.category, region.rings, region.footprint_id))
                entry["object_id"] = next_id
                entry["duplicate_of"] = region.id
                next_id += 1
            # "missing": the region goes into no file.
            manifest.append(entry)
        regions.append(out)
    manifest.sort(key=lambda e: e["object_id"])
    return regions, manifest
