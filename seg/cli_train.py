"""``seg train``: train a segmentation model on a mask folder into a run folder, or resume a stopped run."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Mapping

import click

from seg import cli_options as opt
from seg.train.fit import MIXED_PRECISION
from seg.train.models import ARCHITECTURES, ENCODERS

#: seg.train.losses.LOSSES, kept here so that ``seg --help`` imports no Keras (a test checks they agree).
LOSSES = ("ce", "dice", "focal", "ce+dice")


def parse_hw(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[int, int] | None:
    """``WIDTHxHEIGHT`` (as ``--image-size`` elsewhere) to the model's ``(height, width)``, multiples of 32."""
    size = opt.parse_size(ctx, param, value)
    if size is None:
        return None
    if size[0] % 32 or size[1] % 32:
        raise click.BadParameter(f"width and height must be multiples of 32, got {value!r}", ctx=ctx, param=param)
    return size[1], size[0]


def parse_class_weights(ctx: click.Context, param: click.Parameter, value: str | None):
    """``auto``, ``none`` or comma-separated non-negative weights, background first."""
    if value is None:
        return None
    if value.lower() in ("auto", "none"):
        return value.lower()
    try:
        weights = tuple(float(w) for w in value.split(","))
    except ValueError:
        weights = ()
    if not weights or any(not w >= 0 for w in weights):
        raise click.BadParameter(f"expected auto, none or weights like 0.5,1,2, got {value!r}", ctx=ctx, param=param)
    return weights


def _none_word(value: str | None) -> str | None:
    return None if value is None or value.lower() == "none" else value


@click.command("train")
@click.argument("data", type=click.Path(exists=True, file_okay=False), required=False)
@click.option("--model", "architecture", type=click.Choice(ARCHITECTURES), help="Architecture (decoder).")
@click.option(
    "--encoder",
    type=click.Choice([*ENCODERS, "none"]),
    help="Pretrained backbone, or none for the architecture's own encoder (default: the architecture's usual one).",
)
@click.option(
    "--encoder-weights",
    metavar="imagenet|none|PATH",
    help="Encoder initialisation: ImageNet (downloaded once; random with a note when offline), random, or a file. "
    "[default: imagenet]",
)
@click.option("--epochs", type=click.IntRange(min=1), help="Epochs in all (with --resume: train up to this many).")
@click.option("--batch-size", type=click.IntRange(min=1), help="Images per step.  [default: 8]")
@click.option(
    "--size", callback=parse_hw, metavar="WxH", help="Model input WIDTHxHEIGHT, multiples of 32 (default: the images')."
)
@click.option("--loss", type=click.Choice(LOSSES), help="Loss.  [default: ce]")
@click.option(
    "--class-weights",
    callback=parse_class_weights,
    metavar="auto|none|W0,W1,...",
    help="Per-class loss weights, background first; auto balances by pixel frequency.  [default: none]",
)
@click.option(
    "--lr", "learning_rate", type=click.FloatRange(min=0, min_open=True), help="Adam's learning rate.  [default: 0.001]"
)
@click.option(
    "--seed", type=int, help="Seeds weights, shuffle, augmentation and the validation hold-out.  [default: 0]"
)
@click.option(
    "--augment/--no-augment", default=None, help="Random flips, rotations, zoom, brightness, contrast.  [default: on]"
)
@click.option(
    "--mixed-precision",
    type=click.Choice(MIXED_PRECISION),
    help="float16 compute: auto uses it when a GPU is visible.  [default: auto]",
)
@click.option(
    "--validation-split",
    type=click.FloatRange(0, 1, max_open=True),
    help="Fraction of the images held out for validation when DATA has no test/ split.  [default: 0]",
)
@click.option("-o", "--out", type=click.Path(file_okay=False), required=True, help="Run folder to write.")
@click.option("--resume", is_flag=True, help="Continue the run in OUT after its last completed epoch.")
@click.option("--overwrite", is_flag=True, help="Replace the files of an earlier run in OUT.")
def train_command(data, out, resume, overwrite, **options):
    """Train a segmentation model on the mask folder DATA (seg convert --to masks) into the run folder OUT.

    OUT gets run.json (the model, classes and normalisation predict and evaluate need), log.csv (one row per epoch),
    and checkpoints/ (every epoch's weights, best.weights.h5, last.keras). A stopped run continues where it was with
    --resume (options default to the run's; those given must match it, but --epochs may grow); with the same seed it
    ends with the same weights as an uninterrupted run (on the CPU).

    \b
    Example:
      seg train masks/ --model unet --encoder vgg16 --epochs 30 --size 256x256 -o runs/unet
      seg train --resume -o runs/unet              # after an interruption
      seg train --resume --epochs 50 -o runs/unet  # train longer
    """
    from seg.train.native_logs import filter_native_logs

    filter_native_logs()
    from seg.train.fit import TrainConfig, summary, train
    from seg.train.run import read_run_info

    given = {name: value for name, value in options.items() if value is not None}
    for name in ("encoder", "encoder_weights"):
        if name in given:
            given[name] = _none_word(given[name])
    if given.get("class_weights") == "none":
        given["class_weights"] = None
    if data is not None:
        given["data"] = data
    if resume:
        if overwrite:
            raise click.UsageError("--resume continues the run in OUT; --overwrite would replace it: give one")
        config = TrainConfig.from_run(read_run_info(out), out, **given)
    else:
        required = (("DATA", "data"), ("--model", "architecture"), ("--epochs", "epochs"))
        missing = [flag for flag, name in required if name not in given]
        if missing:
            raise click.UsageError(f"missing {', '.join(missing)} (needed unless --resume)")
        config = TrainConfig(out=out, **given)

    interactive = sys.stderr.isatty()
    try:
        with contextlib.redirect_stdout(sys.stderr):  # Keras prints its progress to stdout; results go there
            info = train(
                config,
                resume=resume,
                overwrite=overwrite,
                verbose=1 if interactive else 0,
                progress=None if interactive else _epoch_line,
                notes=lambda note: click.echo(f"seg: note: {note}", err=True),
            )
    except KeyboardInterrupt:
        click.echo(f"\nseg: interrupted; continue with: seg train --resume -o {out}", err=True)
        raise SystemExit(130) from None
    click.echo(summary(info, out))


def _epoch_line(epoch: int, epochs: int, logs: Mapping[str, float]) -> None:
    shown = [key for key in logs if key in ("loss", "val_loss") or key.endswith("mean_iou")]
    values = ", ".join(f"{key} {logs[key]:.4f}" for key in shown)
    click.echo(f"seg: epoch {epoch}/{epochs}: {values}", err=True)
