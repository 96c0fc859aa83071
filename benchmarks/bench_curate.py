"""Curation benchmark: how well ``curate`` ranks corrupted images below clean ones, and how fast it scores.

Quality: a clean aerial dataset rendered with the sample's machinery (``curate_corruptions.py`` says how), a known
share of its images corrupted the way annotators do (one kind per image: shifted mask, dropped objects, wrong class,
scribble, self-intersecting outline, half-done image), then ``curate(annotations, top=<number of clean images>)``
with and without simulated predictions (and, as extra rows, with a clean reference set of other neighbourhoods).
With the corrupted images as the truth and the ranking read worst first:

- AP: the ranking's average precision (mean, over the corrupted images, of the precision at each one's rank);
- P / R at the natural cut: precision and recall of "dropped = corrupted" when the number of clean images is kept
  (equal to each other, since as many images are dropped as are corrupted);
- per kind: the recall of each corruption kind at the cut and its AP against the clean images alone;
- which signals fire (badness >= 0.2, the score's reason threshold) on each kind and on clean images.

Speed: ``curate`` on 10,000 images with 100,000 objects (1,250 rendered tiles in all 8 rotations/flips, objects
thinned at random to 10 per image, 20% corrupted) in a child process under ``/usr/bin/time`` (wall time, peak RSS;
the summed PSS of the process tree sampled every 0.1 s), with and without predictions, and the same at 2,500 images
to show whether memory stays flat. The child also times the shared mask and image passes and each signal module's
function (:data:`STEPS`), reading its RSS after each; "rest" is what remains of ``curate``: scores, reasons, ranks,
selection. ``--cli`` times ``seg curate`` end to end.

Example:
    .venv/bin/python benchmarks/bench_curate.py                          # quality (400 images) and speed (10,000)
    .venv/bin/python benchmarks/bench_curate.py --no-speed               # quality only (~1 min once generated)
    .venv/bin/python benchmarks/bench_curate.py --no-quality --memory ''  # 10,000 images only
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
DATA, OUT = HERE / "data", HERE / "out" / "curate"
#: Badness from which a signal counts as firing (the score's threshold for listing a reason).
FIRES = 0.2
#: The quality runs: name -> (with predictions, with reference).
CONFIGS = {
    "annotations only": (False, False),
    "with predictions": (True, False),
    "with reference": (False, True),
    "predictions + reference": (True, True),
}
TARGETS = {"annotations only": 0.75, "with predictions": 0.9}


# -- metrics ---------------------------------------------------------------------------------------------------------


def average_precision(bad_worst_first: np.ndarray) -> float:
    """Mean of the precision at the rank of each bad item, items ordered worst first (NaN without bad items)."""
    hits = np.flatnonzero(bad_worst_first)
    if len(hits) == 0:
        return math.nan
    return float(np.mean(np.arange(1, len(hits) + 1) / (hits + 1)))


def ranking_metrics(images: pd.DataFrame, kinds: pd.Series) -> dict:
    """AP, precision/recall at the cut, and per-kind figures for one curation's image table.

    Args:
        images: ``curate(...).images`` (``image_id``, ``rank``, ``kept``).
        kinds: corruption kind by image id ("" for clean images), for every image.
    """
    table = images.sort_values("rank", ascending=False)
    kind = kinds.reindex(table["image_id"]).fillna("").to_numpy()
    bad = kind != ""
    dropped = ~table["kept"].to_numpy(bool)
    caught = int((bad & dropped).sum())
    figures = {
        "images": len(table),
        "corrupted": int(bad.sum()),
        "ap": average_precision(bad),
        "precision": caught / max(int(dropped.sum()), 1),
        "recall": caught / max(int(bad.sum()), 1),
        "untouched_clean": int(((table["score"] >= 1 - 1e-9).to_numpy() & ~bad).sum()),
        "untouched_corrupted": int(((table["score"] >= 1 - 1e-9).to_numpy() & bad).sum()),
        "kinds": {},
    }
    for name in sorted(set(kind) - {""}):
        mine = kind == name
        figures["kinds"][name] = {
            "count": int(mine.sum()),
            "recall": float((mine & dropped).sum() / mine.sum()),
            "ap": average_precision(mine[mine | ~bad]),
        }
    return figures


def firing(images: pd.DataFrame, kinds: pd.Series, signals: list[str]) -> pd.DataFrame:
    """Share of the images of each kind (and of the clean ones) where each signal fires."""
    kind = kinds.reindex(images["image_id"]).fillna("").replace("", "(clean)").to_numpy()
    present = [s for s in signals if s in images.columns]
    fires = images[present].fillna(0).ge(FIRES)
    rates = fires.groupby(kind).mean().T
    return rates.loc[rates.max(axis=1) > 0]


# -- the quality run -------------------------------------------------------------------------------------------------


def quality_inputs(args: argparse.Namespace) -> tuple[Path, Path | None]:
    from curate_corruptions import generate

    started = time.perf_counter()
    model = f"m{args.model_jitter}x{args.model_miss:g}"
    folder = DATA / f"curate-quality-{args.images}-s{args.seed}-j{args.jitter}-{model}"
    summary = generate(
        folder,
        args.images,
        seed=args.seed,
        fraction=args.corrupt,
        jitter=args.jitter,
        model_jitter=args.model_jitter,
        model_miss=args.model_miss,
    )
    reference = None
    if args.reference:
        reference = DATA / f"curate-reference-{args.reference}-s{args.seed + 100}-j{args.jitter}"
        generate(reference, args.reference, seed=args.seed + 100, fraction=0.0, jitter=args.jitter)
    print(
        f"quality input: {folder} ({summary['images']} images, {summary['objects']} annotated objects, "
        f"{len(summary['corrupted'])} corrupted; generated or found in {time.perf_counter() - started:.0f} s)"
    )
    return folder, reference


def run_quality(args: argparse.Namespace) -> dict:
    from seg.curate.curate import curate
    from seg.dataset.store import load_dataset

    folder, reference_folder = quality_inputs(args)
    manifest = json.loads((folder / "corruptions.json").read_text())
    annotations = load_dataset(folder / "annotations")
    predictions = load_dataset(folder / "predictions")
    reference = None if reference_folder is None else load_dataset(reference_folder / "clean")
    kinds = pd.Series({c["image_id"]: c["kind"] for c in manifest["corrupted"]}, dtype=str)
    kinds = kinds.reindex(annotations.images["image_id"]).fillna("")
    clean = int((kinds == "").sum())
    OUT.mkdir(parents=True, exist_ok=True)
    results: dict[str, dict] = {}
    for name, (with_predictions, with_reference) in CONFIGS.items():
        if with_reference and reference is None:
            continue
        start = time.perf_counter()
        curation = curate(
            annotations,
            top=clean,
            predictions=predictions if with_predictions else None,
            reference=reference if with_reference else None,
        )
        seconds = time.perf_counter() - start
        images = curation.images.assign(kind=kinds.reindex(curation.images["image_id"]).to_numpy())
        images.sort_values("rank").to_csv(OUT / f"quality-{name.replace(' ', '-').replace('+', 'and')}.csv")
        figures = ranking_metrics(curation.images, kinds)
        figures["seconds"] = seconds
        figures["firing"] = firing(curation.images, kinds, [s.name for s in curation.signals])
        figures["missed"] = images.loc[(images["kind"] != "") & images["kept"]].sort_values("rank")
        figures["false_alarms"] = images.loc[(images["kind"] == "") & ~images["kept"]].sort_values("rank")
        results[name] = figures
    report_quality(results)
    serializable = {
        name: {k: v for k, v in f.items() if k not in ("firing", "missed", "false_alarms")}
        for name, f in results.items()
    }
    (OUT / "quality.json").write_text(json.dumps(serializable, indent=1))
    return results


def report_quality(results: dict[str, dict]) -> None:
    first = next(iter(results.values()))
    print(
        f"\n{first['images']} images, {first['corrupted']} corrupted; "
        f"the cut keeps the {first['images'] - first['corrupted']} best"
    )
    kinds = sorted({k for f in results.values() for k in f["kinds"]})
    counts = " ".join(f"{k}={first['kinds'][k]['count']}" for k in kinds)
    print(f"kinds: {counts}")
    header = f"{'run':<24} {'AP':>5} {'target':>6} {'P@cut':>6} {'R@cut':>6} {'s':>5}"
    print("\n" + header + "".join(f" {k[:11]:>11}" for k in kinds))
    for name, f in results.items():
        target = TARGETS.get(name)
        verdict = "" if target is None else (f"{target:.2f}" + ("" if f["ap"] >= target else "!"))
        row = f"{name:<24} {f['ap']:5.3f} {verdict:>6} {f['precision']:6.3f} {f['recall']:6.3f} {f['seconds']:5.1f}"
        print(row + "".join(f" {f['kinds'][k]['recall']:11.2f}" for k in kinds))
    print("(per-kind columns: recall at the cut; '!' marks a missed target)")
    for name, f in results.items():
        print(
            f"{name}: score 1.0 (no signal at all) on {f['untouched_clean']} clean and "
            f"{f['untouched_corrupted']} corrupted images (ties are ranked by image id)"
        )
    print(
        f"\nper-kind AP (each kind against the clean images alone):\n{'run':<24}"
        + "".join(f" {k[:11]:>11}" for k in kinds)
    )
    for name, f in results.items():
        print(f"{name:<24}" + "".join(f" {f['kinds'][k]['ap']:11.3f}" for k in kinds))
    for name, f in results.items():
        print(f"\n-- {name}: share of images where each signal fires (badness >= {FIRES})")
        with pd.option_context("display.width", 200, "display.max_columns", 20, "display.precision", 2):
            print(f["firing"].to_string(float_format=lambda v: f"{v:.2f}"))
        for label, table in (("corrupted images kept", f["missed"]), ("clean images dropped", f["false_alarms"])):
            print(f"{label} ({len(table)}), best first:")
            for row in table.head(8).itertuples():
                kind = f" [{row.kind}]" if row.kind else ""
                print(f"  {row.image_id}{kind} rank {row.rank} score {row.score:.3f}: {row.reasons or '-'}")


# -- the speed run ---------------------------------------------------------------------------------------------------


def speed_input(images: int, per_image: int, seed: int) -> Path:
    from curate_corruptions import generate

    folder = DATA / f"curate-speed-{images}-o{per_image}-s{seed}"
    started = time.perf_counter()
    summary = generate(folder, images, seed=seed, variants=8, objects=images * per_image)
    print(
        f"speed input: {folder} ({summary['images']} images, {summary['objects']} objects; generated or found in "
        f"{time.perf_counter() - started:.0f} s)"
    )
    return folder


#: What the speed runs time one by one inside ``curate``: label -> (module under ``seg.curate``, function). The shared
#: passes over masks and images come first; a call made inside another timed call counts in both.
STEPS = {
    "shapes": ("shapes", "shape_features"),
    "image stats": ("quality", "image_statistics"),
    "geometry": ("geometry", "geometry_signals"),
    "consistency": ("consistency", "consistency_signals"),
    "quality": ("quality", "quality_signals"),
    "reference": ("reference", "reference_signals"),
    "appearance": ("appearance", "appearance_signals"),
    "agreement": ("agreement", "agreement_signals"),
}


def _rss_mib() -> tuple[float, float]:
    """This process's resident memory now and its peak so far (MiB), from ``/proc/self/status``."""
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) / 1024
    return fields.get("VmRSS", math.nan), fields.get("VmHWM", math.nan)


def _timed_steps() -> tuple[dict[str, float], dict[str, tuple[float, float]]]:
    """Wrap every signal module's function: its wall time, and this process's RSS and peak RSS after it."""
    import importlib

    seconds: dict[str, float] = {}
    memory: dict[str, tuple[float, float]] = {}
    for label, (module_name, function) in STEPS.items():
        try:
            module = importlib.import_module(f"seg.curate.{module_name}")
        except ImportError:
            continue
        original = getattr(module, function, None)
        if original is None:
            continue

        def timed(*args, _original=original, _name=label, **kwargs):
            start = time.perf_counter()
            try:
                return _original(*args, **kwargs)
            finally:
                seconds[_name] = seconds.get(_name, 0.0) + time.perf_counter() - start
                memory[_name] = _rss_mib()

        setattr(module, function, timed)
    return seconds, memory


def _cpu_s() -> float:
    import resource

    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _worker(name: str, folder: str, result: str) -> None:
    """Child process: load the Dataset(s), run ``curate``, report the split of the time and the RSS after loading."""
    import resource

    start = time.perf_counter()
    from seg.curate.curate import curate
    from seg.dataset.store import load_dataset

    steps, memory = _timed_steps()
    imported = time.perf_counter()
    annotations = load_dataset(Path(folder) / "annotations")
    predictions = load_dataset(Path(folder) / "predictions") if name == "with predictions" else None
    loaded, cpu = time.perf_counter(), _cpu_s()
    load_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    curation = curate(annotations, top=max(1, len(annotations.images) * 4 // 5), predictions=predictions)
    done = time.perf_counter()
    report = {
        "import_s": imported - start,
        "load_s": loaded - imported,
        "curate_s": done - loaded,
        "curate_cpu_s": _cpu_s() - cpu,
        "steps": steps,
        "step_rss_mib": memory,
        "final_rss_mib": _rss_mib(),
        "load_peak_mib": load_peak,
        "images": len(annotations.images),
        "objects": len(annotations.objects),
        "kept": int(curation.images["kept"].sum()),
    }
    Path(result).write_text(json.dumps(report))


def measure_speed(name: str, folder: Path) -> dict:
    from bench_masks import measure

    OUT.mkdir(parents=True, exist_ok=True)
    result = OUT / "speed-result.json"
    result.unlink(missing_ok=True)
    figures = measure([sys.executable, str(Path(__file__).resolve()), "--worker", name, str(folder), str(result)])
    figures.update(json.loads(result.read_text()))
    return figures


def run_speed(args: argparse.Namespace) -> dict:
    sizes = sorted({args.speed, *(int(s) for s in args.memory.split(",") if s.strip())})
    runs: dict[tuple[int, str], dict] = {}
    for size in sizes:
        folder = speed_input(size, args.per_image, args.seed)
        for name in ("annotations only", "with predictions"):
            tries = [measure_speed(name, folder) for _ in range(args.repeat)]
            runs[(size, name)] = dict(min(tries, key=lambda f: f["wall_s"]), all_wall_s=[f["wall_s"] for f in tries])
    print(
        f"\n{'images':>7} {'objects':>8} {'run':<18} {'wall s':>7} {'curate s':>9} {'load s':>7} {'import s':>9} "
        f"{'RSS@load':>9} {'max RSS':>8} {'tree PSS':>9} {'µs/object':>10}  all runs' wall s"
    )
    for (_, name), f in runs.items():
        print(
            f"{f['images']:>7} {f['objects']:>8} {name:<18} {f['wall_s']:7.1f} {f['curate_s']:9.1f} {f['load_s']:7.1f} "
            f"{f['import_s']:9.1f} {f['load_peak_mib']:9.0f} {f['max_rss_mib']:8.0f} {f['tree_pss_mib']:9.0f} "
            f"{f['curate_s'] / max(f['objects'], 1) * 1e6:10.0f}  {', '.join(f'{w:.1f}' for w in f['all_wall_s'])}"
        )
    print("(MiB; wall = the whole child: interpreter start, imports, loading the Dataset(s) and curate)")
    print("\nwhere curate's time goes (s; cpu = user + sys of the child and its reaped workers):")
    steps = [*STEPS, "rest"]
    print(f"{'images':>7} {'run':<18} {'cpu s':>6}" + "".join(f" {step[:11]:>11}" for step in steps))
    for (size, name), f in runs.items():
        times = dict(f["steps"], rest=f["curate_s"] - sum(f["steps"].values()))
        cells = "".join(f" {times.get(step, math.nan):11.1f}" for step in steps)
        print(f"{size:>7} {name:<18} {f['curate_cpu_s']:6.1f}" + cells)
    print("RSS after each step, now / peak so far (MiB):")
    for (size, name), f in runs.items():
        after = dict(f["step_rss_mib"], rest=f["final_rss_mib"])
        cells = "".join(f" {f'{after[s][0]:.0f}/{after[s][1]:.0f}' if s in after else '-':>11}" for s in steps)
        print(f"{size:>7} {name:<18} {'':>6}" + cells)
    for name in ("annotations only", "with predictions"):
        f = runs[(args.speed, name)]
        verdict = "met" if f["wall_s"] < 120 else "MISSED"
        if f["images"] < 10000:
            verdict = "(not judged: the target is for 10,000 images)"
        print(
            f"{name}: {f['images']} images in {f['wall_s']:.1f} s wall ({f['curate_s']:.1f} s in curate): "
            f"target < 120 s {verdict}"
        )
    serializable = {f"{size} {name}": f for (size, name), f in runs.items()}
    (OUT / "speed.json").write_text(json.dumps(serializable, indent=1))
    return runs


def run_cli(args: argparse.Namespace) -> dict:
    """``seg curate DATASET --top N -o OUT`` on the speed set: reading, scoring, the report and the curated Dataset."""
    from bench_masks import measure

    folder = speed_input(args.speed, args.per_image, args.seed)
    out = OUT / "cli"
    shutil.rmtree(out, ignore_errors=True)
    seg = Path(sys.executable).with_name("seg")
    top = str(max(1, args.speed * 4 // 5))
    command = [str(seg), "curate", str(folder / "annotations"), "--top", top, "-o", str(out), "--overwrite"]
    figures = measure(command)
    report = out / "report.html"
    size = report.stat().st_size / 2**20 if report.exists() else math.nan
    print(
        f"\n`seg curate` ({args.speed} images, annotations only, report included): {figures['wall_s']:.1f} s wall, "
        f"max RSS {figures['max_rss_mib']:.0f} MiB, tree PSS {figures['tree_pss_mib']:.0f} MiB; report {size:.1f} MiB"
    )
    (OUT / "cli.json").write_text(json.dumps(figures, indent=1))
    return figures


# -- the run ---------------------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=400, help="images of the quality set (default 400)")
    parser.add_argument("--corrupt", type=float, default=0.2, help="share of them corrupted (default 0.2)")
    parser.add_argument("--jitter", type=int, default=1, help="clean annotators' vertex noise in pixels (default 1)")
    parser.add_argument("--model-jitter", type=int, default=2, help="simulated model's vertex noise in px (default 2)")
    parser.add_argument("--model-miss", type=float, default=0.05, help="share of objects it misses (default 0.05)")
    parser.add_argument("--reference", type=int, default=200, help="images of the clean reference set (0: none)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--speed", type=int, default=10000, help="images of the speed run (default 10,000)")
    parser.add_argument("--per-image", type=int, default=10, help="objects per image in the speed runs (default 10)")
    parser.add_argument("--memory", default="2500", help="other sizes for the memory check ('' skips it)")
    parser.add_argument("--repeat", type=int, default=1, help="speed runs per size and run; the fastest counts")
    parser.add_argument("--cli", action="store_true", help="also time `seg curate` end to end on the speed set")
    parser.add_argument("--no-quality", action="store_true")
    parser.add_argument("--no-speed", action="store_true")
    parser.add_argument("--clean", action="store_true", help="delete the generated inputs first")
    parser.add_argument("--worker", nargs=3, metavar=("NAME", "DATA", "RESULT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        _worker(*args.worker)
        return
    started = time.perf_counter()
    if args.clean:
        for folder in DATA.glob("curate-*"):
            shutil.rmtree(folder)
    if not args.no_quality:
        run_quality(args)
    if not args.no_speed:
        run_speed(args)
    if args.cli:
        run_cli(args)
    print(f"\ntotal {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
