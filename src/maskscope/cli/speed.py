"""Speed options shared by ``explain`` and ``evaluate``: the optimiser schedule and how the
classifier runs (kept apart from ``common.py``'s model options, which pick *which* classifier)."""

from __future__ import annotations

import argparse


def add_speed_options(p: argparse.ArgumentParser) -> None:
    schedule = p.add_mutually_exclusive_group()
    schedule.add_argument("--early-stop", action="store_true",
                          help="crisp too: an image stops once its loss has stopped improving (meaningful "
                               "does by default: about half the passes at the same quality on ImageNet)")
    schedule.add_argument("--fixed-schedule", action="store_true",
                          help="every image runs the papers' whole schedule (meaningful's default before "
                               "early stopping; crisp and extremal run it unless --early-stop)")
    p.add_argument("--amp", nargs="?", const="bf16", default=None, choices=("bf16", "fp16"),
                   help="run the classifier under autocast (bf16 when given alone; fp16 on GPUs only)")
    p.add_argument("--channels-last", action="store_true", help="run the classifier in channels-last layout")


def speed_model(args: argparse.Namespace, model):
    """The classifier as ``--amp`` / ``--channels-last`` ask (the same object when neither is given)."""
    from ..accelerate import accelerate

    return accelerate(model, args.amp, args.channels_last)


def schedule_options(args: argparse.Namespace, methods: list[str]) -> dict[str, dict]:
    """The ``early_stop`` option per method: ``--fixed-schedule`` turns it off where it is on by
    default (meaningful), ``--early-stop`` on where it is off (crisp); a method whose spec leaves
    early stopping alone (extremal: its penalty grows to the last iteration) keeps its whole
    schedule either way, so its options, and its evaluate cache, stay as they are."""
    from ..methods import METHODS

    defaults = {m: METHODS[m].early_stop for m in methods if m in METHODS}
    if args.fixed_schedule:
        return {m: {"early_stop": False} for m, default in defaults.items() if default is True}
    if args.early_stop:
        return {m: {"early_stop": True} for m, default in defaults.items() if default is False}
    return {}
