"""Speed options shared by ``explain`` and ``evaluate``: the optimiser schedule and how the
classifier runs (kept apart from ``common.py``'s model options, which pick *which* classifier)."""

from __future__ import annotations

import argparse

ITERATIVE = ("meaningful", "crisp", "extremal")


def add_speed_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--early-stop", action="store_true",
                   help="meaningful and crisp: an image stops once its loss has stopped improving (about "
                        "0.45x the passes; off by default: it cost saliency-metric quality on ImageNet)")
    p.add_argument("--amp", nargs="?", const="bf16", default=None, choices=("bf16", "fp16"),
                   help="run the classifier under autocast (bf16 when given alone; fp16 on GPUs only)")
    p.add_argument("--channels-last", action="store_true", help="run the classifier in channels-last layout")


def speed_model(args: argparse.Namespace, model):
    """The classifier as ``--amp`` / ``--channels-last`` ask (the same object when neither is given)."""
    from ..accelerate import accelerate

    return accelerate(model, args.amp, args.channels_last)


def schedule_options(args: argparse.Namespace, methods: list[str]) -> dict[str, dict]:
    """``{method: {"early_stop": True}}`` with ``--early-stop``, for meaningful and crisp (extremal's
    penalty grows to its last iteration, so it keeps its whole schedule: its options, and so its
    evaluate cache, stay as they are)."""
    if not args.early_stop:
        return {}
    return {m: {"early_stop": True} for m in methods if m in ("meaningful", "crisp")}
