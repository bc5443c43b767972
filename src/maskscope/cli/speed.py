"""Speed options shared by ``explain`` and ``evaluate``: the optimiser schedule and how the
classifier runs (kept apart from ``common.py``'s model options, which pick *which* classifier)."""

from __future__ import annotations

import argparse

ITERATIVE = ("meaningful", "crisp", "extremal")


def add_speed_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--fixed-schedule", action="store_true",
                   help="run every iteration for every image (default for meaningful and crisp: an image "
                        "stops once its loss has stopped improving; extremal runs the fixed schedule anyway)")
    p.add_argument("--amp", nargs="?", const="bf16", default=None, choices=("bf16", "fp16"),
                   help="run the classifier under autocast (bf16 when given alone; fp16 on GPUs only)")
    p.add_argument("--channels-last", action="store_true", help="run the classifier in channels-last layout")


def speed_model(args: argparse.Namespace, model):
    """The classifier as ``--amp`` / ``--channels-last`` ask (the same object when neither is given)."""
    from ..accelerate import accelerate

    return accelerate(model, args.amp, args.channels_last)


def schedule_options(args: argparse.Namespace, methods: list[str]) -> dict[str, dict]:
    """``{method: {"early_stop": False}}`` with ``--fixed-schedule``, for the methods that stop
    early by default (extremal already runs its whole schedule: its options, and so its evaluate
    cache, stay as they are)."""
    if not args.fixed_schedule:
        return {}
    import inspect

    from ..methods import get_method

    def stops_early(name: str) -> bool:
        return bool(inspect.signature(get_method(name)).parameters["early_stop"].default)

    return {m: {"early_stop": False} for m in methods if m in ITERATIVE and stops_early(m)}
