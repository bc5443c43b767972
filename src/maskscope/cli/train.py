"""``maskscope train``: train a real-time masking model (Dabkowski & Gal 2017) for a classifier.

Runs data-parallel unchanged under ``torchrun --nproc-per-node N $(which maskscope) train ...``.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
from pathlib import Path

from ..errors import ConfigError, OutputError
from .common import add_model_options, load_model, out_path, positive_int, seed_number


def add_parser(subparsers, name: str) -> None:
    p = subparsers.add_parser(name, help="train a real-time masking model for a classifier")
    p.add_argument("--data", action="append", required=True, metavar="DIR",
                   help="folder of training images (annotations.json labels are used when present; "
                        "otherwise the classifier's top-1), or the ImageFolder layout of full ImageNet "
                        "(DIR/<wnid>/*.JPEG: the class from the subfolder name). Repeat for several folders")
    p.add_argument("--val", action="append", default=None, metavar="DIR",
                   help="folder of validation images with annotations.json labels and boxes (repeatable)")
    add_model_options(p)
    p.add_argument("--out", type=out_path, required=True,
                   help="checkpoint file to write (resumable; usable with --masker)")
    p.add_argument("--epochs", type=positive_int, default=10)
    p.add_argument("--batch-size", type=positive_int, default=32, help="global batch (over all processes)")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=seed_number, default=0)
    p.add_argument("--encoder", default="auto", choices=["auto", "efficientnet", "model", "small"],
                   help="the features the masker reads: the embedded EfficientNet's, the classifier's "
                        "own (model: its CNN stages or transformer blocks, found or named by "
                        "--encoder-layers), or a small encoder trained from scratch; auto picks the first "
                        "that applies")
    p.add_argument("--encoder-layers", type=_layer_names, default=None, metavar="A,B,C",
                   help="the classifier's layers the masker reads, shallow first, comma-separated "
                        "(e.g. layer1,layer2,layer3,layer4): for a model whose stages are not found")
    p.add_argument("--resume", nargs="?", const=True, default=None, metavar="CKPT",
                   help="continue from CKPT (default: the --out file)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing --out checkpoint (without it, an existing one needs --resume)")
    p.add_argument("--no-augment", action="store_true", help="no random crops / flips")
    p.add_argument("--colour-jitter", type=float, default=0.0, metavar="F",
                   help="with augmentation: brightness, contrast and saturation scaled by 1 ± F (e.g. 0.1)")
    p.add_argument("--selector", default="auto",
                   choices=["auto", "learned", "classifier-init", "classifier-tied"],
                   help="class selector of the feature filter: auto ties it to the classifier's last "
                        "linear layer when that layer reads the encoder's deepest map, else learned")
    p.add_argument("--schedule", default="constant", choices=["constant", "cosine"],
                   help="learning-rate schedule over all epochs")
    p.add_argument("--warmup-steps", type=int, default=0, help="linear warm-up steps (cosine schedule)")
    p.add_argument("--cache-features", action="store_true",
                   help="compute the frozen encoder's features once per image (needs --no-augment)")
    p.add_argument("--checkpoint-every", type=positive_int, default=100, help="steps between checkpoints")
    p.add_argument("--val-every", type=positive_int, default=100, help="steps between validations")
    p.add_argument("--time-limit", type=float, default=None, metavar="SECONDS",
                   help="stop (validate, save) after this much training; --resume continues later")
    p.add_argument("--max-steps", type=positive_int, default=None,
                   help="stop after this many steps in total (simulates an interrupted run)")
    p.add_argument("--amp", action="store_true", help="bfloat16 autocast (GPU)")
    p.add_argument("--threads", type=positive_int, default=None, help="torch CPU threads")
    p.add_argument("--quiet", action="store_true",
                   help="no progress bar (with it: steps, time left, one line per epoch)")
    p.set_defaults(run=run)


def _layer_names(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",")]
    if not all(names):
        raise argparse.ArgumentTypeError(f"layer names separated by commas, got {text!r}")
    return names


def run(args: argparse.Namespace) -> int:
    import torch

    from ..methods.realtime.train import check_out

    if args.threads:
        torch.set_num_threads(args.threads)
    if not (math.isfinite(args.lr) and args.lr > 0):
        raise ConfigError(f"learning rate must be positive, got {args.lr}")
    if args.cache_features and not args.no_augment:
        raise ConfigError("--cache-features needs --no-augment (augmented images change every step)")
    resume = None
    if args.resume is not None:
        resume = args.out if args.resume is True else args.resume
    with contextlib.ExitStack() as held:
        if int(os.environ.get("RANK", "0")) == 0:  # one lock per --out file, for the whole run
            held.enter_context(_locked_out(Path(args.out)))
            check_out(Path(args.out), resume, args.overwrite)  # before any data or model is loaded
        return _train(args, resume)


def _locked_out(out: Path):
    """``storage.file_lock`` on ``out``: a second train into the same file stops at once."""
    from ..storage import file_lock

    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot write to {out.parent}: {exc.strerror or exc}") from None
    return file_lock(out)


def _train(args: argparse.Namespace, resume) -> int:
    from ..distributed import init_distributed, process_group
    from ..methods.realtime.data import read_folder, read_training_data
    from ..methods.realtime.train import TrainConfig, train_masker

    if args.time_limit is not None and not (math.isfinite(args.time_limit) and args.time_limit > 0):
        raise ConfigError(f"--time-limit must be a positive number of seconds, got {args.time_limit}")
    if not (0 <= args.colour_jitter < 1):
        raise ConfigError(f"--colour-jitter must be in [0, 1), got {args.colour_jitter}")
    blackbox = load_model(args)
    samples = [s for folder in args.data for s in read_training_data(folder, blackbox)]
    val = [s for folder in args.val for s in read_folder(folder)] if args.val else None
    config = TrainConfig(
        epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed, encoder=args.encoder,
        encoder_layers=args.encoder_layers,
        augment=not args.no_augment, cache_features=args.cache_features, amp=args.amp,
        selector=args.selector, colour_jitter=args.colour_jitter, schedule=args.schedule,
        warmup_steps=max(0, args.warmup_steps),
        checkpoint_every=args.checkpoint_every, val_every=args.val_every, max_steps=args.max_steps,
        time_limit_s=args.time_limit,
        device=args.device,
    )
    ddp, _ = init_distributed(args.device)
    with process_group(ddp):  # under torchrun: leave the group together, never at interpreter exit
        summary = train_masker(blackbox, samples, args.out, config, val, resume, progress=not args.quiet,
                               overwrite=args.overwrite)
    if int(os.environ.get("RANK", "0")) == 0:
        last = summary["last"] or {}
        shown = {k: v for k, v in last.items() if k.startswith("val_") or k in ("step", "loss")}
        saved = _saved_step(Path(args.out))
        if saved == summary["steps"]:
            print(f"saved {args.out} after {summary['steps']} steps {shown}")
        else:  # --max-steps stops like an interruption: only the checkpoints taken so far are on disk
            held = "no checkpoint yet" if saved is None else f"the checkpoint of step {saved}"
            print(f"stopped after {summary['steps']} steps; {args.out} holds {held} "
                  f"(--checkpoint-every {args.checkpoint_every}) {shown}")
    return 0


def _saved_step(out: Path) -> int | None:
    """The step of the checkpoint at ``out``, None without one."""
    from ..errors import CheckpointError
    from ..methods.realtime.checkpoint import read_checkpoint

    try:
        step = read_checkpoint(out).get("step")
    except CheckpointError:
        return None
    return step if isinstance(step, int) else None
