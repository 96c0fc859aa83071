"""Kaggle ``EncodedPixels``: seg.dataset.kaggle_rle against the code in the popular Kaggle kernels.

Two realistic mask sets, generated with a fixed seed:
    ships   768x768 Airbus Ship Detection masks, one ship per row (a rotated rectangle, 8-250 px long): few short runs.
    blobs   1024x1024 masks of overlapping blobs with holes (an XOR of random ellipses): thousands of runs each.

Decode contenders: the kernels' ``rle_decode`` (a Python loop over runs, float64 output, as written there) and seg's
``decode``. Encode contenders: ``np.copyto`` of the mask into a ready buffer (memory bandwidth: the "memory speed"
reference: an encoder must at least read the mask once), the
kernels' ``rle_encode`` (numpy, then ``' '.join(str(x) ...)``), the pure-Python per-pixel loop found in many
notebooks (timed on a few masks only, it is slow), and seg's ``encode``. Every decode is checked against the mask and
every encoding against the kernel's string in the same run. Times are the best of ``--repeat`` passes over the set.

Example:
    .venv/bin/python benchmarks/bench_kaggle_rle.py
    .venv/bin/python benchmarks/bench_kaggle_rle.py --codec benchmarks/out/kaggle_rle_proposed.py  # try a rewrite
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import math
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import numpy as np

DECODE_TARGET = 20.0  # seg decode must be this many times faster than the kernels' per-run loop

# -- the code users run today (verbatim in spirit from the Airbus / Severstal / SIIM kernels) -----------------------


def kernel_rle_decode(mask_rle: str, shape: tuple[int, int]) -> np.ndarray:
    """The kernels' decoder: a Python loop over the runs."""
    s = mask_rle.split()
    starts, lengths = [np.asarray(x, dtype=int) for x in (s[0:][::2], s[1:][::2])]
    starts -= 1
    ends = starts + lengths
    img = np.zeros(shape[0] * shape[1])
    for lo, hi in zip(starts, ends, strict=False):
        img[lo:hi] = 1
    return img.reshape(shape, order="F")


def kernel_rle_encode(img: np.ndarray) -> str:
    """The kernels' encoder: numpy to find the runs, then one ``str`` per number."""
    pixels = img.T.flatten()
    pixels = np.concatenate([[0], pixels, [0]])
    runs = np.where(pixels[1:] != pixels[:-1])[0] + 1
    runs[1::2] -= runs[::2]
    return " ".join(str(x) for x in runs)


def pixel_loop_encode(img: np.ndarray) -> str:
    """The pure-Python encoder of many notebooks: one loop step per pixel."""
    pixels = img.T.flatten()
    runs: list[int] = []
    previous = 0
    for position, pixel in enumerate(pixels, start=1):
        if pixel and not previous:
            runs.extend((position, 0))
        if pixel:
            runs[-1] += 1
        previous = pixel
    return " ".join(map(str, runs))


# -- realistic masks ------------------------------------------------------------------------------------------------


def ship_masks(count: int, rng: np.random.Generator, size: int = 768) -> list[np.ndarray]:
    """Airbus-like rows: one rotated rectangle per mask, length log-uniform in 8-250 px, width 15-35% of it."""
    masks = []
    for _ in range(count):
        length = math.exp(rng.uniform(math.log(8), math.log(250)))
        width = length * rng.uniform(0.15, 0.35)
        angle = rng.uniform(0, math.pi)
        cx, cy = rng.uniform(0, size), rng.uniform(0, size)
        reach = int(length / 2 + width / 2) + 2
        y0, y1 = max(int(cy) - reach, 0), min(int(cy) + reach + 1, size)
        x0, x1 = max(int(cx) - reach, 0), min(int(cx) + reach + 1, size)
        yy, xx = np.mgrid[y0:y1, x0:x1] + 0.5
        along = (xx - cx) * math.cos(angle) + (yy - cy) * math.sin(angle)
        across = -(xx - cx) * math.sin(angle) + (yy - cy) * math.cos(angle)
        mask = np.zeros((size, size), np.uint8)
        mask[y0:y1, x0:x1] = (np.abs(along) <= length / 2) & (np.abs(across) <= width / 2)
        if not mask.any():
            mask[int(cy), int(cx)] = 1
        masks.append(mask)
    return masks


def blob_masks(count: int, rng: np.random.Generator, size: int = 1024) -> list[np.ndarray]:
    """Masks with thousands of runs: the XOR of 30-60 random ellipses (overlaps become holes)."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    masks = []
    for _ in range(count):
        mask = np.zeros((size, size), bool)
        for _ in range(int(rng.integers(30, 61))):
            cx, cy = rng.uniform(0, size, 2)
            ax, ay = rng.uniform(15, 180, 2)
            mask ^= ((xx - cx) / ax) ** 2 + ((yy - cy) / ay) ** 2 < 1
        masks.append(mask.astype(np.uint8))
    return masks


# -- timing ---------------------------------------------------------------------------------------------------------


def best_of(function: Callable[[], object], repeat: int) -> float:
    """Best wall time of ``repeat`` calls (garbage collection off, as timeit does)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        times = []
        for _ in range(repeat):
            start = time.perf_counter()
            function()
            times.append(time.perf_counter() - start)
        return min(times)
    finally:
        if enabled:
            gc.enable()


def load_codec(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("candidate_kaggle_rle", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_set(name: str, masks: list[np.ndarray], codecs: dict[str, ModuleType], repeat: int, loop_masks: int) -> dict:
    height, width = masks[0].shape
    texts = [kernel_rle_encode(m) for m in masks]
    runs = [len(t.split()) // 2 for t in texts]
    mask_mb = sum(m.nbytes for m in masks) / 1e6
    print(
        f"\n{name}: {len(masks)} masks {height}x{width}, runs per mask: median {int(np.median(runs))}, "
        f"min {min(runs)}, max {max(runs)}; {mask_mb:.1f} MB of uint8 masks"
    )

    # Correctness first, in the same run.
    for label, codec in codecs.items():
        for mask, text in zip(masks, texts, strict=True):
            if codec.encode(mask) != text:
                raise SystemExit(f"{label}.encode differs from the kernel's rle_encode on {name}")
            if not np.array_equal(codec.decode(text, height, width), mask):
                raise SystemExit(f"{label}.decode does not give the mask back on {name}")
    for mask, text in zip(masks[:loop_masks], texts[:loop_masks], strict=True):
        if pixel_loop_encode(mask) != text or not np.array_equal(kernel_rle_decode(text, (height, width)), mask):
            raise SystemExit(f"baseline codecs disagree on {name}")

    def each(function: Callable, items: list) -> Callable[[], None]:
        def run() -> None:
            for item in items:  # results are dropped at once, as in a loop over a CSV
                function(item)

        return run

    shape = (height, width)
    buffer = np.empty_like(masks[0])
    seconds: dict[str, float] = {}
    seconds["decode kernel loop"] = best_of(each(lambda t: kernel_rle_decode(t, shape), texts), repeat)
    for label, codec in codecs.items():
        seconds[f"decode {label}"] = best_of(each(lambda t, c=codec: c.decode(t, height, width), texts), repeat)
    seconds["memory speed (np.copyto)"] = best_of(each(lambda m: np.copyto(buffer, m), masks), repeat)
    seconds["encode kernel"] = best_of(each(kernel_rle_encode, masks), repeat)
    loop = best_of(each(pixel_loop_encode, masks[:loop_masks]), 1)
    seconds["encode pixel loop"] = loop * len(masks) / loop_masks  # extrapolated from loop_masks masks
    for label, codec in codecs.items():
        seconds[f"encode {label}"] = best_of(each(codec.encode, masks), repeat)

    print(f"{'contender':<28} {'us/mask':>10} {'MB/s':>10}")
    for label, total in seconds.items():
        note = f"  (from {loop_masks} masks)" if label == "encode pixel loop" else ""
        print(f"{label:<28} {total / len(masks) * 1e6:10.1f} {mask_mb / total:10.0f}{note}")
    return seconds


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ships", type=int, default=300, help="ship masks (768x768)")
    parser.add_argument("--blobs", type=int, default=20, help="many-run masks (1024x1024)")
    parser.add_argument("--repeat", type=int, default=7, help="passes over each set; the best counts")
    parser.add_argument("--loop-masks", type=int, default=3, help="masks timed with the per-pixel Python loop")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--codec",
        type=Path,
        action="append",
        default=[],
        help="also time another encode/decode module (a .py file), e.g. a proposed rewrite",
    )
    args = parser.parse_args(argv)

    from seg.dataset import kaggle_rle

    codecs: dict[str, ModuleType] = {"seg": kaggle_rle}
    for path in args.codec:
        codecs[path.stem] = load_codec(path)
    rng = np.random.default_rng(args.seed)
    sets = {"ships": ship_masks(args.ships, rng), "blobs": blob_masks(args.blobs, rng)}
    results = {name: run_set(name, masks, codecs, args.repeat, args.loop_masks) for name, masks in sets.items()}

    print("\nratios (speed-up = kernel time / contender time; > 1 means the contender is faster):")
    for name, seconds in results.items():
        for label in codecs:
            decode = seconds["decode kernel loop"] / seconds[f"decode {label}"]
            verdict = "met" if decode >= DECODE_TARGET else "MISSED"
            encode = seconds[f"encode {label}"]
            versus_kernel, versus_loop = seconds["encode kernel"] / encode, seconds["encode pixel loop"] / encode
            print(
                f"  {name:<6} {label:<20} decode speed-up vs kernel loop {decode:6.2f}x "
                f"(target {DECODE_TARGET:.0f}x: {verdict}); encode speed-up vs kernel {versus_kernel:5.2f}x, "
                f"vs pixel loop {versus_loop:4.0f}x; encode takes {encode / seconds['memory speed (np.copyto)']:5.1f}x "
                "a mask copy"
            )


if __name__ == "__main__":
    main()
