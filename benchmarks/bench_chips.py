"""Tile cache -> chips: ``make_chips`` against the physical floor, decoding the same tiles with PIL, in the same run.

A seeded synthetic SAS.Planet native cache of aerial-like 256 x 256 JPEG tiles (smooth colour fields, noise, roofs
and roads, quality 85) is generated under ``benchmarks/data/`` (reused when already there). Every contender runs in
its own child process under ``/usr/bin/time`` (wall time with interpreter start and imports, the same for all; peak
RSS from ``%M``); the child also reports the time of its work alone (after ``open_cache``).

Contenders:
    decode     the floor: for every tile, ``Cache.read`` then ``Image.open(...).convert("RGB")`` + ``load()``.
    chips-tif  ``make_chips(cache, map, 17, out, chip=512, fmt="tif")`` (deflate GeoTIFF through rasterio).
    chips-png  the same with ``fmt="png"`` (PNG + world file + .prj).
    chips-jpg  the same with ``fmt="jpg"`` (JPEG quality 95 + world file + .prj).

Then memory at 20x20, 40x40 and 60x60 tiles for ``fmt="tif"``; ``--profile FMT`` prints a cProfile of one
``make_chips`` run instead.

Example:
    .venv/bin/python benchmarks/bench_chips.py                     # 40x40 tiles, all contenders, memory check
    .venv/bin/python benchmarks/bench_chips.py --profile tif
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ZOOM = 17
MAP = "sat"
#: Around Toulouse; any place will do.
CENTER = (1.444, 43.604)
FORMATS = ("tif", "png", "jpg")


# -- the synthetic cache ---------------------------------------------------------------------------------------------


def _tile_image(rng: np.random.Generator) -> bytes:
    """One aerial-like 256 x 256 JPEG: a smooth colour field, pixel noise, a few roofs and a road."""
    from PIL import Image, ImageDraw

    coarse = rng.uniform(40, 170, (5, 5, 3)).astype(np.float32)
    field = np.asarray(Image.fromarray(coarse.astype(np.uint8), "RGB").resize((256, 256), Image.BICUBIC), np.float32)
    field += rng.normal(0, 14, (256, 256, 3)).astype(np.float32)
    image = Image.fromarray(np.clip(field, 0, 255).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(image)
    if rng.random() < 0.6:
        y = int(rng.integers(0, 256))
        draw.line([(0, y), (255, int(rng.integers(0, 256)))], fill=(105, 105, 100), width=int(rng.integers(6, 16)))
    for _ in range(int(rng.integers(0, 12))):
        x, y = (int(v) for v in rng.integers(0, 240, 2))
        w, h = (int(v) for v in rng.integers(8, 40, 2))
        shade = tuple(int(v) for v in rng.integers(90, 230, 3))
        if rng.random() < 0.8:
            draw.rectangle([x, y, x + w, y + h], fill=shade, outline=(40, 40, 40))
        else:
            draw.ellipse([x, y, x + w, y + h], fill=(40, 90 + int(rng.integers(0, 60)), 40))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=85)
    return buffer.getvalue()


def make_cache(side: int, seed: int = 0) -> Path:
    """``benchmarks/data/chips-cache-<side>/`` (a native cache, map ``sat``, side x side tiles at zoom 17)."""
    from seg.collector.tiles import tile_at
    from seg.sample.tiles import write_native_tile

    root = HERE / "data" / f"chips-cache-{side}-s{seed}"
    done = root / ".complete"
    if done.exists():
        return root
    shutil.rmtree(root, ignore_errors=True)
    rng = np.random.default_rng(seed)
    center = tile_at(*CENTER, ZOOM)
    x0, y0 = center.x - side // 2, center.y - side // 2
    from seg.collector.tiles import Tile

    for y in range(y0, y0 + side):
        for x in range(x0, x0 + side):
            write_native_tile(root / MAP, Tile(x, y, ZOOM), _tile_image(rng))
    done.write_text("")
    return root


# -- the contenders, run in a child process by `bench_chips.py --worker NAME CACHE OUT RESULT` -----------------------


def decode_only(cache_root: Path, out: Path) -> dict:
    """The floor: read every tile through the cache and decode it to RGB with PIL."""
    from PIL import Image

    from seg.collector.cache import open_cache

    cache = open_cache(cache_root)
    start = time.perf_counter()
    count = 0
    for tile in cache.tiles(MAP, ZOOM):
        with Image.open(io.BytesIO(cache.read(MAP, tile))) as image:
            image.convert("RGB").load()
        count += 1
    return {"work_s": time.perf_counter() - start, "tiles": count}


def chips(cache_root: Path, out: Path, fmt: str) -> dict:
    from seg.collector.cache import open_cache
    from seg.collector.chips import make_chips

    cache = open_cache(cache_root)
    start = time.perf_counter()
    report: dict = {}
    make_chips(cache, MAP, ZOOM, out, chip=512, fmt=fmt, overwrite=True, report=report)
    return {"work_s": time.perf_counter() - start, "tiles": sum(1 for _ in cache.tiles(MAP, ZOOM)), **report}


def _chips_worker(fmt: str):
    return lambda cache_root, out: chips(cache_root, out, fmt)


WORKERS = {"decode": decode_only, **{f"chips-{fmt}": _chips_worker(fmt) for fmt in FORMATS}}


def _worker(name: str, cache_root: str, out: str, result: str) -> None:
    Path(result).write_text(json.dumps(WORKERS[name](Path(cache_root), Path(out))))


def measure(name: str, cache_root: Path, out: Path) -> dict:
    """Run one contender in a child under ``/usr/bin/time``: wall seconds, peak RSS (MiB) and the child's report."""
    shutil.rmtree(out, ignore_errors=True)
    with tempfile.TemporaryDirectory() as tmp:
        maxrss, result = Path(tmp, "maxrss"), Path(tmp, "result.json")
        command = [sys.executable, str(Path(__file__).resolve()), "--worker", name, str(cache_root), str(out)]
        start = time.perf_counter()
        child = subprocess.run(
            ["/usr/bin/time", "-f", "%M", "-o", str(maxrss), *command, str(result)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        wall = time.perf_counter() - start
        if child.returncode != 0:
            raise SystemExit(f"{name} failed ({child.returncode}):\n{child.stderr.decode(errors='replace')[-3000:]}")
        figures = {"wall_s": wall, "max_rss_mib": int(maxrss.read_text().split()[-1]) / 1024}
        figures.update(json.loads(result.read_text()))
    shutil.rmtree(out, ignore_errors=True)
    return figures


def profile(fmt: str, cache_root: Path, out: Path, top: int = 25) -> None:
    import cProfile
    import pstats

    from seg.collector.cache import open_cache
    from seg.collector.chips import make_chips

    cache = open_cache(cache_root)
    profiler = cProfile.Profile()
    profiler.enable()
    make_chips(cache, MAP, ZOOM, out, chip=512, fmt=fmt, overwrite=True)
    profiler.disable()
    shutil.rmtree(out, ignore_errors=True)
    pstats.Stats(profiler).sort_stats("tottime").print_stats(top)


# -- the run ---------------------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiles", type=int, default=40, help="side of the square block of tiles (default 40)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=2, help="runs per contender, round robin; the fastest counts")
    parser.add_argument("--memory", default="20,40,60", help="block sides for the tif memory check ('' skips it)")
    parser.add_argument("--profile", choices=FORMATS, help="profile one make_chips run in this process instead")
    parser.add_argument("--worker", nargs=4, metavar=("NAME", "CACHE", "OUT", "RESULT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        _worker(*args.worker)
        return
    started = time.perf_counter()
    cache_root = make_cache(args.tiles, args.seed)
    out = HERE / "out" / "chips"
    ready = time.perf_counter() - started
    print(f"cache: {cache_root} ({args.tiles}x{args.tiles} tiles, generated or found in {ready:.1f} s)")
    if args.profile:
        profile(args.profile, cache_root, out)
        return
    names = ["decode", *(f"chips-{f}" for f in FORMATS)]
    runs: dict[str, list[dict]] = {}
    for _ in range(args.repeat):
        for name in names:
            runs.setdefault(name, []).append(measure(name, cache_root, out))
    results = {name: min(r, key=lambda f: f["wall_s"]) for name, r in runs.items()}
    megabytes = results["decode"]["tiles"] * 256 * 256 * 3 / 1e6
    print(f"\n{args.tiles}x{args.tiles} = {results['decode']['tiles']} tiles, {megabytes:.0f} MB of decoded pixels")
    print(f"{'contender':<10} {'wall s':>7} {'work s':>7} {'MB/s':>7} {'max RSS MiB':>12} {'chips':>6}")
    for name, f in results.items():
        chips_written = f.get("written", "")
        print(
            f"{name:<10} {f['wall_s']:7.2f} {f['work_s']:7.2f} {megabytes / f['work_s']:7.0f} "
            f"{f['max_rss_mib']:12.0f} {chips_written!s:>6}"
        )
    floor = results["decode"]
    print("\nratios chips / decode-only (target <= 1.5x):")
    for fmt in FORMATS:
        f = results[f"chips-{fmt}"]
        ratio = f["work_s"] / floor["work_s"]
        print(
            f"  {fmt}: work {ratio:.2f}x, wall {f['wall_s'] / floor['wall_s']:.2f}x "
            f"-> {'met' if ratio <= 1.5 else 'MISSED'}"
        )
    sides = [int(s) for s in args.memory.split(",") if s.strip()]
    if sides:
        print("\nmemory, fmt tif:")
        print(f"{'tiles':>8} {'decode MiB':>11} {'tif MiB':>8} {'tif work s':>11}")
        for side in sides:
            root = make_cache(side, args.seed)
            if side == args.tiles:
                d, t = results["decode"], results["chips-tif"]
            else:
                d, t = measure("decode", root, out), measure("chips-tif", root, out)
            print(f"{side * side:>8} {d['max_rss_mib']:11.0f} {t['max_rss_mib']:8.0f} {t['work_s']:11.2f}")
    print(f"\ntotal {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
