"""Training input pipeline: ``seg.train.data.make_dataset`` (tf.data) against a keras-segmentation style generator.

Generated data (seeded): N 512 x 512 JPEG images (quality 90: a bicubic colour field, pixel noise and 2-7 rectangles
and ellipses) with their PNG class-index masks (4 classes, the shapes' classes), in the layout ``seg convert --to masks
--split`` writes (``train/images``, ``train/masks``, ``classes.json``), under ``benchmarks/data/pipeline-N/`` (made
once, reused).

Each contender delivers ``--epochs`` epochs (default 3) of full batches at ``--size`` (default 256); its time runs from
building its pipeline (for seg: ``make_dataset``, which includes decoding every image and mask into memory when the
cache is on) to its last batch, and its rate is the images delivered over that whole time:
    baseline        keras_segmentation's ``image_segmentation_generator`` as written: per image ``cv2.imread`` and
                    ``cv2.resize`` of the image (bilinear) and the mask (nearest), one-hot labels built class by class
                    with numpy; per batch ``np.array`` and float32 normalisation ``(x / 255 - mean) / std``. One Python
                    thread, no augmentation (its default); every image decoded every epoch.
    seg             ``make_dataset(scan.train, training=True, augment=Augment(), epochs=E)``, default ``cache="auto"``
                    (the 300 decoded pairs, 300 MiB, fit: decoded once into memory): random scale-crop (0.75-1.25)
                    resized to size, flips, 90 degree turns, brightness and contrast, normalisation, int32 labels;
                    tf.data's parallel map (AUTOTUNE) and prefetch. More work per image than the baseline.
    seg-nocache     the same with ``cache=False``: every image and mask decoded (graph JPEG/PNG decoding) each time.
    seg-eval        ``make_dataset(training=False, eval_mode="resize", cache=False)`` iterated E times: decoding,
                    resizing and normalisation only, like the baseline.

TensorFlow is imported and its runtime started (a tiny dataset and a few ops) before any timing: that start-up is the
process's, not a pipeline's. The scan (``scan_folder``: headers, JPEG endings, every mask decoded and checked) is timed
once and printed apart. Contenders run round robin ``--repeat`` times; the best run of each counts. The load average
is printed before and after: other processes on the machine slow every contender.

Example:
    .venv/bin/python benchmarks/bench_pipeline.py                          # 300 images, 256 px, batch 8, 3 epochs
    .venv/bin/python benchmarks/bench_pipeline.py --images 500 --size 384 --batch 16 --repeat 3 --epochs 5
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

CLASSES = 4
COLOURS = np.array([[0, 0, 0], [220, 60, 50], [60, 90, 220], [230, 210, 60]], np.uint8)


def make_folder(root: Path, count: int, seed: int) -> Path:
    """``root/train/{images,masks}`` with ``count`` 512 x 512 JPEG/PNG pairs and ``root/classes.json``."""
    from PIL import Image, ImageDraw

    done = root / "done.json"
    if done.is_file() and json.loads(done.read_text()) == {"images": count, "seed": seed}:
        return root
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal((512, 512, 3), dtype=np.float32) * 8
    for kind in ("images", "masks"):
        (root / "train" / kind).mkdir(parents=True, exist_ok=True)
    for index in range(count):
        coarse = rng.uniform(0, 255, (6, 6, 3)).astype(np.uint8)
        field = np.asarray(Image.fromarray(coarse, "RGB").resize((512, 512), Image.Resampling.BICUBIC), np.float32)
        field += np.roll(noise, tuple(int(v) for v in rng.integers(0, 512, 2)), axis=(0, 1))
        image = Image.fromarray(np.clip(field, 0, 255).astype(np.uint8), "RGB")
        mask = Image.new("L", (512, 512), 0)
        draw, paint = ImageDraw.Draw(image), ImageDraw.Draw(mask)
        for _ in range(int(rng.integers(2, 8))):
            x0, y0 = (int(v) for v in rng.integers(0, 432, 2))
            box = [x0, y0, x0 + int(rng.integers(20, 200)), y0 + int(rng.integers(20, 200))]
            cls = int(rng.integers(1, CLASSES))
            shape = "rectangle" if rng.random() < 0.5 else "ellipse"
            getattr(draw, shape)(box, fill=tuple(int(c) for c in COLOURS[cls]))
            getattr(paint, shape)(box, fill=cls)
        image.save(root / "train" / "images" / f"{index:05d}.jpg", quality=90)
        mask.save(root / "train" / "masks" / f"{index:05d}.png")
    names = ["background", *(f"class{i}" for i in range(1, CLASSES))]
    (root / "classes.json").write_text(json.dumps({str(i): n for i, n in enumerate(names)}))
    done.write_text(json.dumps({"images": count, "seed": seed}))
    return root


def keras_segmentation_generator(
    pairs: list[tuple[str, str]], batch: int, size: int, classes: int
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """keras_segmentation.data_utils.data_loader.image_segmentation_generator, without its endless cycle."""
    import cv2

    mean = np.array([0.485, 0.456, 0.406], np.float32)
    std = np.array([0.229, 0.224, 0.225], np.float32)
    for start in range(0, len(pairs) - batch + 1, batch):
        images, labels = [], []
        for image_path, mask_path in pairs[start : start + batch]:
            image = cv2.imread(image_path, 1)
            image = cv2.resize(image, (size, size))[:, :, ::-1]  # BGR -> RGB, as get_image_array does
            mask = cv2.imread(mask_path, 1)
            mask = cv2.resize(mask, (size, size), interpolation=cv2.INTER_NEAREST)[:, :, 0]
            one_hot = np.zeros((size, size, classes))
            for c in range(classes):
                one_hot[:, :, c] = (mask == c).astype(int)
            images.append(image)
            labels.append(np.reshape(one_hot, (size * size, classes)))
        x = np.array(images).astype(np.float32)
        yield (x / 255.0 - mean) / std, np.array(labels)


def run_baseline(scan, args) -> int:
    pairs = [(str(s.image), str(s.mask)) for s in scan.train]
    seen = 0
    for _ in range(args.epochs):
        for x, y in keras_segmentation_generator(pairs, args.batch, args.size, CLASSES):
            assert x.shape == (args.batch, args.size, args.size, 3) and y.shape[-1] == CLASSES
            seen += len(x)
    return seen


def run_seg(scan, args, *, training: bool, cache: bool | str) -> tuple[int, float]:
    """Images delivered, and the seconds ``make_dataset`` took (decoding into memory included)."""
    from seg.train.data import Augment, make_dataset, normalization_for

    began = time.perf_counter()
    dataset = make_dataset(
        scan.train,
        size=(args.size, args.size),
        normalization=normalization_for(scan),
        batch_size=args.batch,
        training=training,
        seed=args.seed,
        augment=Augment() if training else None,
        epochs=args.epochs if training else 1,
        eval_mode="resize",
        classes=CLASSES,
        cache=cache,
    )
    made = time.perf_counter() - began
    seen = 0
    for _ in range(1 if training else args.epochs):
        for x, y in dataset:
            assert tuple(x.shape[1:]) == (args.size, args.size, 3) and y.dtype.name == "int32"
            seen += int(x.shape[0])
    return seen, made


def warm_up(tf) -> None:
    """Start TensorFlow's runtime (thread pools, kernels, tf.data) outside the timings."""
    dataset = tf.data.Dataset.range(8).map(
        lambda i: tf.image.resize(tf.zeros([8, 8, 3]) + tf.cast(i, tf.float32), (4, 4))
    )
    for _ in dataset.batch(4).prefetch(1):
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=300, help="generated 512 x 512 images (default 300)")
    parser.add_argument("--size", type=int, default=256, help="training size in pixels (default 256)")
    parser.add_argument("--batch", type=int, default=8, help="batch size (default 8)")
    parser.add_argument("--epochs", type=int, default=3, help="epochs each contender delivers (default 3)")
    parser.add_argument("--repeat", type=int, default=2, help="runs per contender, round robin; the fastest counts")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    start = time.perf_counter()
    root = make_folder(HERE / "data" / f"pipeline-{args.images}", args.images, args.seed)
    print(f"{args.images} JPEGs of 512x512 with PNG masks in {root} ({time.perf_counter() - start:.1f} s)")

    import tensorflow as tf  # imported and started before timing: the TensorFlow start-up is not the pipeline's

    from seg.train.data import scan_folder

    warm_up(tf)
    began = time.perf_counter()
    scan = scan_folder(root)
    scanned = time.perf_counter() - began
    readers = sorted({(s.image_reader, s.mask_reader) for s in scan.train})
    print(f"scan_folder: {scanned:.2f} s ({len(scan.train) / scanned:.0f} pairs/s); image, mask readers {readers}")

    contenders: dict[str, Callable[[], tuple[int, float]]] = {
        "baseline": lambda: (run_baseline(scan, args), 0.0),
        "seg": lambda: run_seg(scan, args, training=True, cache="auto"),
        "seg-nocache": lambda: run_seg(scan, args, training=True, cache=False),
        "seg-eval": lambda: run_seg(scan, args, training=False, cache=False),
    }
    expected = len(scan.train) // args.batch * args.batch * args.epochs
    best: dict[str, float] = {}
    counts: dict[str, int] = {}
    load_before = os.getloadavg()
    for run in range(args.repeat):
        for name, contender in contenders.items():
            began = time.perf_counter()
            seen, made = contender()
            elapsed = time.perf_counter() - began
            if seen < expected:
                raise SystemExit(f"{name} produced {seen} images, expected {expected}")
            best[name], counts[name] = min(best.get(name, elapsed), elapsed), seen
            print(
                f"run {run + 1} {name:<12} {elapsed:7.2f} s  {seen / elapsed:7.1f} images/s"
                + (f"  (make_dataset {made:.2f} s)" if made else ""),
                flush=True,
            )
    load_after = os.getloadavg()

    print(
        f"\n{args.images} images 512x512 -> {args.size}x{args.size}, batch {args.batch}, {args.epochs} epochs, "
        f"{os.cpu_count()} CPUs, TensorFlow {tf.__version__}; load average (1 min) {load_before[0]:.2f} before, "
        f"{load_after[0]:.2f} after; best of {args.repeat}:"
    )
    rate = {name: counts[name] / elapsed for name, elapsed in best.items()}
    for name, elapsed in best.items():
        ratio = rate[name] / rate["baseline"]
        print(f"  {name:<12} {elapsed:7.2f} s  {rate[name]:7.1f} images/s  {ratio:5.2f}x baseline")


if __name__ == "__main__":
    main()
