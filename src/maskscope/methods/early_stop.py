"""Per-image early stopping for the optimisation loop: the rule and its test."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import torch

from ..errors import ConfigError


@dataclass(frozen=True)
class EarlyStop:
    """When an image leaves the batch: once its best loss has improved by less than ``tolerance``
    (relative) over the last ``window`` iterations, after at least ``min_iterations``. For a loss
    whose weights change over the run (``keep="last"``: extremal's growing penalty) losses from
    different iterations do not compare, so there the test is on the mask parameters instead: their
    mean absolute change over the window is below ``tolerance``.

    The iterations after that point barely move the result (the best loss is reported anyway), so
    stopping there keeps quality and saves passes; ``benchmarks/studies/early_stop.py`` measures both.
    """

    window: int = 30
    tolerance: float = 2e-3
    min_iterations: int = 60

    def __post_init__(self) -> None:
        if self.window < 1 or self.min_iterations < 0 or not self.tolerance >= 0:
            raise ConfigError("early stopping needs window ≥ 1, min_iterations ≥ 0 and tolerance ≥ 0")


def early_stop_rule(early_stop: bool | dict | EarlyStop | None) -> EarlyStop | None:
    """``True`` → the default rule, ``False``/``None`` → the fixed schedule, a rule → itself, a dict
    → a rule with those fields changed (how ``--option meaningful.early_stop={"window": 50}`` reads)."""
    if isinstance(early_stop, EarlyStop):
        return early_stop
    if isinstance(early_stop, dict):
        unknown = set(early_stop) - {"window", "tolerance", "min_iterations"}
        if unknown:
            raise ConfigError(f"early_stop takes window, tolerance and min_iterations, not {sorted(unknown)}")
        return replace(EarlyStop(), **early_stop)
    return EarlyStop() if early_stop else None


def early_stop_params(rule: EarlyStop | None) -> dict[str, Any]:
    """The rule as the scalar entries of an ``Explanation``'s parameters (and its JSON)."""
    if rule is None:
        return {"early_stop": False}
    return {"early_stop": True, "early_stop_window": rule.window, "early_stop_tolerance": rule.tolerance,
            "early_stop_min_iterations": rule.min_iterations}


def converged(rule: EarlyStop, trace: list[torch.Tensor], t: int, watched: torch.Tensor,
              rows: torch.Tensor) -> torch.Tensor:
    """Which of the active ``rows`` meet ``rule`` after iteration t; ``watched`` is the best loss
    per image (B,) or the kept parameters (B, …), of which ``trace`` keeps the last window."""
    trace.append(watched.detach().clone())
    if len(trace) > rule.window + 1:
        trace.pop(0)
    if t + 1 < max(rule.min_iterations, rule.window + 1):
        return torch.zeros(len(rows), dtype=torch.bool, device=rows.device)
    now, then = trace[-1][rows], trace[0][rows]
    if watched.dim() == 1:  # best loss: relative improvement over the window
        return (then - now) <= rule.tolerance * then.abs()
    return (now - then).abs().flatten(1).mean(1) <= rule.tolerance
