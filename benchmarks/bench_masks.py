"""COCO instances -> PNG class-index masks: seg against the notebook loop users run today.

Every contender runs in its own child process on the same file; the parent measures its wall time (interpreter start
and imports included, the same for all), the peak RSS of its largest process (``/usr/bin/time``'s ``%M``: the child
or the largest worker it reaped) and the peak memory of its whole process tree (the sum of ``Pss`` over the child and
its workers, sampled every 0.1 s, so a pool of workers is not under-counted). The child also reports its own peak RSS
once the annotations are loaded (``RSS@load``), which separates loading from writing.

Contenders:
    baseline   ``COCO(path)``; per image ``mask = np.maximum(mask, coco.annToMask(ann) * cat_index)``; ``Image.save``.
    seg        ``seg.formats.write(seg.formats.read(path, "coco"), out, "masks", images="none")`` (default workers).
    seg-1cpu   the same with ``workers=1`` (one core, like the baseline).
    seg-cli    ``seg convert path --to masks -o out --copy-images none`` (when the CLI offers that option).

Then a memory-flatness run (seg and the baseline on 1,000 / 2,500 / 5,000 generated images) and a correctness check
on a sample of images: pixels covered by at most one object must be identical in seg, the baseline and the truth
(``annToMask``); pixels covered by two or more must hold one of the covering objects' classes, and seg's must be
exactly the "largest painted first, small objects on top" result.

Example:
    .venv/bin/python benchmarks/make_coco.py --images 5000 -o benchmarks/data/val5k.json
    .venv/bin/python benchmarks/bench_masks.py benchmarks/data/val5k.json
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent

# -- the contenders, run in a child process by `bench_masks.py --worker NAME IN OUT RESULT` --------------------------


def baseline(path: Path, out: Path) -> dict:
    """The loop from the notebooks: pycocotools, one np.maximum per annotation, PIL to save."""
    from PIL import Image
    from pycocotools.coco import COCO

    start = time.perf_counter()
    coco = COCO(str(path))
    loaded, load_peak = time.perf_counter(), _peak_mib()
    cat_index = {cat_id: i + 1 for i, cat_id in enumerate(coco.getCatIds())}
    out.mkdir(parents=True)
    for image_id in coco.getImgIds():
        info = coco.loadImgs(image_id)[0]
        mask = np.zeros((info["height"], info["width"]), np.uint8)
        for ann in coco.loadAnns(coco.getAnnIds(imgIds=image_id, iscrowd=None)):
            mask = np.maximum(mask, coco.annToMask(ann) * cat_index[ann["category_id"]])
        Image.fromarray(mask).save(out / f"{Path(info['file_name']).stem}.png")
    return {"load_s": loaded - start, "write_s": time.perf_counter() - loaded, "load_peak_mib": load_peak}


def _peak_mib() -> float:
    """Peak RSS of this process so far."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def seg_library(path: Path, out: Path, workers: int | None = None) -> dict:
    """seg's library calls: read the COCO file, write the mask folder without images."""
    import inspect

    import seg.formats

    start = time.perf_counter()
    dataset = seg.formats.read(path, "coco")
    loaded, load_peak = time.perf_counter(), _peak_mib()
    options = {}
    accepted = inspect.signature(seg.formats.format_module("masks").save).parameters
    if "images" in accepted:
        options["images"] = "none"
    if workers is not None and "workers" in accepted:
        options["workers"] = workers
    seg.formats.write(dataset, out, "masks", **options)
    return {
        "load_s": loaded - start,
        "write_s": time.perf_counter() - loaded,
        "load_peak_mib": load_peak,
        "options": options,
    }


WORKERS = {
    "baseline": baseline,
    "seg": seg_library,
    "seg-1cpu": lambda path, out: seg_library(path, out, workers=1),
}


def _worker(name: str, path: str, out: str, result: str) -> None:
    report = WORKERS[name](Path(path), Path(out))
    Path(result).write_text(json.dumps(report))


# -- measuring a child process ---------------------------------------------------------------------------------------


def _tree(pid: int) -> list[int]:
    pids, stack = [], [pid]
    while stack:
        current = stack.pop()
        pids.append(current)
        try:
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children") as f:
                    stack.extend(int(c) for c in f.read().split())
        except OSError:
            continue
    return pids


def _pss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def measure(command: list[str]) -> dict:
    """Run ``command``; return wall seconds, peak RSS of its largest process and peak PSS of its process tree (MiB).

    The command runs under ``/usr/bin/time``: a child started straight from this (larger) process by vfork inherits
    this process's RSS high-water mark in ``ru_maxrss``; one forked from the small ``time`` process does not.
    """
    peak_tree = 0
    done = threading.Event()
    with tempfile.NamedTemporaryFile("r", suffix=".maxrss") as maxrss:
        start = time.perf_counter()
        child = subprocess.Popen(
            ["/usr/bin/time", "-f", "%M", "-o", maxrss.name, *command],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

        def sample() -> None:
            nonlocal peak_tree
            while not done.wait(0.1):
                peak_tree = max(peak_tree, sum(_pss_kib(p) for p in _tree(child.pid)))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        errors = child.communicate()[1].decode(errors="replace")
        wall = time.perf_counter() - start
        done.set()
        sampler.join()
        if child.returncode != 0:
            raise SystemExit(f"{' '.join(command)} failed ({child.returncode}):\n{errors[-3000:]}")
        max_rss_kib = int(maxrss.read().split()[-1])
    return {"wall_s": wall, "max_rss_mib": max_rss_kib / 1024, "tree_pss_mib": peak_tree / 1024}


def run_contender(name: str, path: Path, out: Path) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    result = out.with_name(out.name + ".result.json")
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", name, str(path), str(out), str(result)]
    figures = measure(command)
    figures.update(json.loads(result.read_text()))
    result.unlink()
    return figures


def cli_option() -> str | None:
    """The ``seg convert`` option that leaves images out of a mask folder, if the CLI has one."""
    exe = Path(sys.executable).with_name("seg")
    if not exe.exists():
        return None
    text = subprocess.run([str(exe), "convert", "--help"], capture_output=True, text=True).stdout
    for option in ("--copy-images", "--images-mode", "--image-mode"):
        if option in text:
            return option
    return None


def run_cli(option: str, path: Path, out: Path) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    exe = Path(sys.executable).with_name("seg")
    return measure([str(exe), "convert", str(path), "--to", "masks", "-o", str(out), option, "none"])


# -- correctness ----------------------------------------------------------------------------------------------------


def _png(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as image:
        return np.asarray(image)


def check(path: Path, baseline_out: Path, seg_out: Path, sample: int) -> dict:
    """Compare seg's and the baseline's masks with the truth on ``sample`` images spread over the file."""
    from pycocotools.coco import COCO

    with contextlib.redirect_stdout(io.StringIO()):  # COCO() prints its progress
        coco = COCO(str(path))
    cat_ids = coco.getCatIds()
    classes = json.loads((seg_out / "classes.json").read_text())
    seg_to_cat = np.zeros(len(classes), np.int64)  # seg's class value -> COCO category id (0 background)
    by_name = {c["name"]: c["id"] for c in coco.loadCats(cat_ids)}
    for value, name in classes.items():
        seg_to_cat[int(value)] = by_name.get(name, 0)
    base_to_cat = np.array([0, *cat_ids])
    image_ids = coco.getImgIds()
    picks = [image_ids[i] for i in np.linspace(0, len(image_ids) - 1, min(sample, len(image_ids))).astype(int)]
    totals = dict.fromkeys(
        [
            "images",
            "single_px",
            "seg_single_bad",
            "base_single_bad",
            "overlap_px",
            "seg_overlap_not_covering",
            "seg_order_bad",
            "seg_vs_base_overlap_differ",
            "missing",
        ],
        0,
    )
    for image_id in picks:
        info = coco.loadImgs(image_id)[0]
        stem = Path(info["file_name"]).stem
        seg_png, base_png = seg_out / "masks" / f"{stem}.png", baseline_out / f"{stem}.png"
        if not (seg_png.exists() and base_png.exists()):
            totals["missing"] += 1
            continue
        seg_cat, base_cat = seg_to_cat[_png(seg_png)], base_to_cat[_png(base_png)]
        anns = coco.loadAnns(coco.getAnnIds(imgIds=image_id, iscrowd=None))
        masks = [coco.annToMask(a).astype(bool) for a in anns]
        cover = np.zeros(seg_cat.shape, np.int64)
        truth = np.zeros(seg_cat.shape, np.int64)  # the category where exactly one object covers a pixel
        covering_ok = np.zeros(seg_cat.shape, bool)
        for ann, mask in zip(anns, masks, strict=True):
            cover += mask
            truth[mask] = ann["category_id"]
            covering_ok |= mask & (seg_cat == ann["category_id"])
        # seg's documented rule: paint largest mask area first (ties in file order), later objects on top.
        order = np.argsort(-np.array([m.sum() for m in masks], dtype=np.int64), kind="stable")
        expected = np.zeros(seg_cat.shape, np.int64)
        for k in order:
            expected[masks[k]] = anns[k]["category_id"]
        single, overlap = cover <= 1, cover >= 2
        totals["images"] += 1
        totals["single_px"] += int(single.sum())
        totals["seg_single_bad"] += int((seg_cat[single] != truth[single]).sum())
        totals["base_single_bad"] += int((base_cat[single] != truth[single]).sum())
        totals["overlap_px"] += int(overlap.sum())
        totals["seg_overlap_not_covering"] += int((overlap & ~covering_ok).sum())
        totals["seg_order_bad"] += int((seg_cat != expected).sum())
        totals["seg_vs_base_overlap_differ"] += int((seg_cat[overlap] != base_cat[overlap]).sum())
    return totals


# -- the run --------------------------------------------------------------------------------------------------------


def _count_images(path: Path) -> int:
    with open(path, encoding="utf-8") as f:
        return len(json.load(f)["images"])


def flatness_input(n: int) -> Path:
    """benchmarks/data/val<n>.json, generated (seed 0) unless it is already there."""
    path = HERE / "data" / f"val{n}.json"
    if not path.exists():
        sys.path.insert(0, str(HERE))
        from make_coco import make_coco, write_json

        write_json(make_coco(n, seed=0), path)
    return path


HEADER = (
    f"{'':<13} {'wall s':>8} {'load s':>8} {'write s':>8} {'RSS@load MiB':>14} {'max RSS MiB':>12} {'tree PSS MiB':>13}"
)


def _row(name: str, figures: dict) -> str:
    if "load_s" in figures:
        phases = f"{figures['load_s']:8.1f} {figures['write_s']:8.1f} {figures['load_peak_mib']:14.0f}"
    else:
        phases = f"{'':>8} {'':>8} {'':>14}"
    return (
        f"{name:<13} {figures['wall_s']:8.1f} {phases} {figures['max_rss_mib']:12.0f} {figures['tree_pss_mib']:13.0f}"
    )


def time_contenders(path: Path, out: Path, cli: bool, repeat: int) -> dict[str, dict]:
    """Run every contender ``repeat`` times, round robin (so that a busy spell hurts all alike); keep the fastest."""
    option = cli_option() if cli else None
    if cli and option is None:
        print("seg-cli skipped: `seg convert --help` shows no option to leave images out")
    runs: dict[str, list[dict]] = {}
    for _ in range(repeat):
        for name in ("baseline", "seg", "seg-1cpu"):
            runs.setdefault(name, []).append(run_contender(name, path, out / f"masks-{name}"))
        if option:
            runs.setdefault("seg-cli", []).append(run_cli(option, path, out / "masks-seg-cli"))
    print(HEADER.replace(" " * 13, f"{'contender':<13}", 1) + f"   (best of {repeat})")
    results = {name: min(figures, key=lambda f: f["wall_s"]) for name, figures in runs.items()}
    for name, figures in results.items():
        print(_row(name, figures) + (f"   ({option} none)" if name == "seg-cli" else ""))
    return results


def report_check(totals: dict) -> int:
    """Print the correctness figures; return the number of mismatches (0 when seg is right)."""
    print(f"\ncorrectness on {totals['images']} images ({totals['missing']} missing masks):")
    print(
        f"  pixels covered by <= 1 object: {totals['single_px']}; differing from the truth: "
        f"seg {totals['seg_single_bad']}, baseline {totals['base_single_bad']}"
    )
    print(
        f"  pixels covered by >= 2 objects: {totals['overlap_px']}; seg not one of the covering classes at "
        f"{totals['seg_overlap_not_covering']}; seg differs from 'largest first, small on top' at "
        f"{totals['seg_order_bad']}; seg differs from the baseline's np.maximum at "
        f"{totals['seg_vs_base_overlap_differ']} (expected: different paint order)"
    )
    return totals["seg_single_bad"] + totals["seg_overlap_not_covering"] + totals["seg_order_bad"] + totals["missing"]


def flatness(sizes: list[int], path: Path, results: dict[str, dict], out: Path) -> dict[str, dict[int, dict]]:
    """Run seg and the baseline on generated files of each size (the main run stands for its own size)."""
    n_images = _count_images(path)
    flat: dict[str, dict[int, dict]] = {"seg": {}, "baseline": {}}
    print("\nmemory flatness:")
    print(HEADER.replace(" " * 13, f"{'images':<13}", 1))
    for name in flat:
        for n in sizes:
            if n == n_images:
                flat[name][n] = results[name]
            else:
                flat[name][n] = run_contender(name, flatness_input(n), out / f"masks-flat-{name}")
            print(_row(f"{name} {n}", flat[name][n]), flush=True)
    return flat


def report_ratios(results: dict[str, dict], flat: dict[str, dict[int, dict]], mismatches: int) -> None:
    base = results["baseline"]
    print("\nratios (baseline / seg; > 1 means seg is faster or smaller):")
    for label, key in (("wall time", "wall_s"), ("max RSS", "max_rss_mib"), ("tree PSS", "tree_pss_mib")):
        cells = [f"{name} {base[key] / figures[key]:5.2f}x" for name, figures in results.items() if name != "baseline"]
        print(f"  {label:<10} " + "   ".join(cells))
    if flat and len(flat["seg"]) >= 2:
        small, large = min(flat["seg"]), max(flat["seg"])
        for name, runs in flat.items():
            growth = runs[large]["max_rss_mib"] / runs[small]["max_rss_mib"]
            slope = (runs[large]["max_rss_mib"] - runs[small]["max_rss_mib"]) / (large - small) * 1000
            print(f"  {name} max RSS at {large} images / at {small}: {growth:.2f}x ({slope:+.0f} MiB per 1000 images)")
    print(f"  correctness mismatches: {mismatches}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("coco", type=Path, nargs="?", help="COCO instances JSON (make it with make_coco.py)")
    parser.add_argument("--out", type=Path, default=HERE / "out", help="scratch folder for the mask folders")
    parser.add_argument("--sample", type=int, default=50, help="images compared pixel by pixel (default 50)")
    parser.add_argument("--flatness", default="1000,2500,5000", help="image counts of the memory run ('' to skip)")
    parser.add_argument("--no-cli", action="store_true", help="do not time the seg CLI")
    parser.add_argument("--repeat", type=int, default=2, help="runs per contender, the fastest counts (default 2)")
    parser.add_argument("--keep", action="store_true", help="keep the mask folders written under --out")
    parser.add_argument("--worker", nargs=4, metavar=("NAME", "IN", "OUT", "RESULT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        _worker(*args.worker)
        return
    if args.coco is None:
        parser.error("the COCO file is required")
    path = args.coco.resolve()
    n_images = _count_images(path)
    print(f"input: {path} ({n_images} images, {path.stat().st_size / 1e6:.1f} MB); {os.cpu_count()} CPUs\n")
    results = time_contenders(path, args.out, cli=not args.no_cli, repeat=args.repeat)
    mismatches = report_check(check(path, args.out / "masks-baseline", args.out / "masks-seg", args.sample))
    sizes = [int(s) for s in args.flatness.split(",") if s.strip()]
    flat = flatness(sizes, path, results, args.out) if sizes else {}
    report_ratios(results, flat, mismatches)
    if not args.keep:
        for folder in args.out.glob("masks-*"):
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
