"""Learning check: ``seg train`` on a generated dataset where shape, not colour, tells the classes apart, then
``seg evaluate`` on its held-out test split.

Generated data (seeded), under ``benchmarks/data/learning-<seed>-<train>-<test>-<size>/`` in the layout
``seg convert --to masks --split`` writes. Each image has a background of random colour with a gradient and texture,
and 1-4 objects of three classes: discs (class ``disc``), rectangles at any angle (``box``), both filled with the SAME
random colour in an image, and thin straight bands (``road``) of another colour. A per-pixel classifier cannot tell
discs from boxes: the model has to use shape.

The model is ``unet_small`` (about 180k weights, random initialisation) trained with the CLI's defaults (Adam 1e-3,
cross-entropy, augmentation on) on random crops; the score is ``seg evaluate``'s mean IoU over the test images at full
size (sliding window), compared with ``--target``.

Example:
    .venv/bin/python benchmarks/bench_learning.py                  # 320 train / 40 test images of 64 px, 60 epochs
    .venv/bin/python benchmarks/bench_learning.py --epochs 100 --architecture unet --size 128 --crop 96
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

CLASSES = ["background", "disc", "box", "road"]


def scene(rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
    """One (size, size, 3) uint8 image and its class-index mask."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    label = np.zeros((size, size), np.uint8)
    for _ in range(int(rng.integers(0, 2))):  # a road: a band around a random line
        angle, offset = rng.uniform(0, np.pi), rng.uniform(0.2, 0.8) * size
        distance = np.abs((xx - size / 2) * np.sin(angle) - (yy - size / 2) * np.cos(angle) - (offset - size / 2))
        label[distance < rng.uniform(0.03, 0.05) * size] = 3
    for _ in range(int(rng.integers(1, 5))):
        cy, cx = rng.uniform(0, size, 2)
        r = rng.uniform(0.10, 0.20) * size
        if rng.random() < 0.5:
            label[(yy - cy) ** 2 + (xx - cx) ** 2 <= r * r] = 1
        else:
            angle = rng.uniform(0, np.pi)
            u = (xx - cx) * np.cos(angle) + (yy - cy) * np.sin(angle)
            v = -(xx - cx) * np.sin(angle) + (yy - cy) * np.cos(angle)
            label[(np.abs(u) <= r) & (np.abs(v) <= r * rng.uniform(0.5, 1.0))] = 2
    ground = rng.uniform(60, 200, 3)
    gradient = rng.normal(0, 25, 3)[None, None, :] * (xx / size)[..., None]
    image = ground + gradient + rng.normal(0, 10, (size, size, 3))
    objects, road = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    image[(label == 1) | (label == 2)] = objects + rng.normal(0, 10, (int(((label == 1) | (label == 2)).sum()), 3))
    image[label == 3] = road + rng.normal(0, 10, (int((label == 3).sum()), 3))
    return np.clip(image, 0, 255).astype(np.uint8), label


def make_data(root: Path, train: int, test: int, size: int, seed: int) -> Path:
    from PIL import Image

    if (root / "classes.json").is_file():
        return root
    rng = np.random.default_rng(seed)
    for split, count in (("train", train), ("test", test)):
        (root / split / "images").mkdir(parents=True, exist_ok=True)
        (root / split / "masks").mkdir(parents=True, exist_ok=True)
        for index in range(count):
            image, label = scene(rng, size)
            Image.fromarray(image).save(root / split / "images" / f"{index:04d}.png")
            Image.fromarray(label, "L").save(root / split / "masks" / f"{index:04d}.png")
    (root / "classes.json").write_text(json.dumps(dict(enumerate(CLASSES))), encoding="utf-8")
    return root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=320, help="training images")
    parser.add_argument("--test", type=int, default=40, help="test images")
    parser.add_argument("--size", type=int, default=64, help="image size (square)")
    parser.add_argument("--crop", type=int, default=64, help="training crop size (multiple of 32)")
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--architecture", default="unet_small")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--target", type=float, default=0.8, help="mean IoU the test split must reach")
    args = parser.parse_args()

    from seg.train.evaluate import evaluate_run
    from seg.train.fit import TrainConfig, train

    data = make_data(
        HERE / "data" / f"learning-{args.seed}-{args.train}-{args.test}-{args.size}",
        args.train,
        args.test,
        args.size,
        args.seed,
    )
    run = HERE / "out" / f"learning-{args.architecture}-{args.epochs}"
    config = TrainConfig(
        data=data,
        out=run,
        architecture=args.architecture,
        encoder=None,
        encoder_weights=None,
        size=(args.crop, args.crop),
        epochs=args.epochs,
        batch_size=args.batch,
        seed=args.seed,
    )
    started = time.perf_counter()
    info = train(config, overwrite=True, verbose=2)
    trained = time.perf_counter() - started
    metrics = evaluate_run(run, data, run / "evaluation", overwrite=True)
    print(f"data: {data} ({args.train} train / {args.test} test images of {args.size} px, classes {CLASSES})")
    print(f"model: {args.architecture}, {args.epochs} epochs on {args.crop} px crops, batch {args.batch}")
    print(f"training: {trained:.0f} s; best epoch {info.best}")
    per_class = ", ".join(f"{k} {v:.3f}" for k, v in metrics["per_class_iou"].items() if v is not None)
    print(f"test mean IoU {metrics['mean_iou']:.3f} (target {args.target}); per class: {per_class}")
    fw_iou = metrics["frequency_weighted_iou"]
    print(f"pixel accuracy {metrics['pixel_accuracy']:.3f}; frequency-weighted IoU {fw_iou:.3f}")
    print("PASS" if metrics["mean_iou"] >= args.target else "MISS")


if __name__ == "__main__":
    main()
