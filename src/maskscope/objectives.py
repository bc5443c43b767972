"""Objective terms: regularisers on the mask and class-score terms on the black box's output.

All mask terms take the *salient* mask s (B, 1, H, W) and return one value per image (B,), so a
batch is a sum of independent problems: batching never changes any single image's result.
"""

from __future__ import annotations

import torch

from .errors import ConfigError

# Paper weights are per element of the paper's 224×224 image or of its 28×28 mask grid; sums over
# masks of other sizes are rescaled to those references so a weight means the same at any size.
REFERENCE_PIXELS = 224 * 224
REFERENCE_GRID = 28 * 28
SCORES = ("prob", "log-prob", "logit")  # what ``class_score`` can compute


def area(s: torch.Tensor, reference: int = REFERENCE_PIXELS) -> torch.Tensor:
    """L1 norm of the salient mask, Σ s (= ‖1 − m‖₁ for deletion, ‖m‖₁ for preservation),
    rescaled to a mask of ``reference`` elements."""
    return s.flatten(1).sum(1) * (reference / s[0, 0].numel())


def total_variation(
    s: torch.Tensor, beta: float = 3.0, reference: int | None = REFERENCE_PIXELS
) -> torch.Tensor:
    """Σ_u |∂x s|^β + |∂y s|^β over the mask (anisotropic TV with exponent β), rescaled likewise;
    ``reference=None`` gives the plain sum."""
    dx = (s[..., :, 1:] - s[..., :, :-1]).abs().pow(beta)
    dy = (s[..., 1:, :] - s[..., :-1, :]).abs().pow(beta)
    scale = 1.0 if reference is None else reference / s[0, 0].numel()
    return (dx.flatten(1).sum(1) + dy.flatten(1).sum(1)) * scale


def crispness(s: torch.Tensor) -> torch.Tensor:
    """Σ |1 − s|·s: zero only for a binary mask (Godi et al. 2019)."""
    return ((1 - s).abs() * s).flatten(1).sum(1) * (REFERENCE_PIXELS / s[0, 0].numel())


def class_score(logits: torch.Tensor, targets: torch.Tensor, kind: str = "prob") -> torch.Tensor:
    """Per-image score of the target classes (B,); targets (B, K) are summed over K (top-k).

    kind: ``prob`` (softmax probability, Fong's default), ``log-prob`` (log of the summed
    probability), ``logit`` (raw summed logit).
    """
    if kind == "logit":
        return logits.gather(1, targets).sum(1)
    probs = logits.softmax(dim=1).gather(1, targets).sum(1)
    if kind == "prob":
        return probs
    if kind == "log-prob":
        return torch.logsumexp(logits.log_softmax(dim=1).gather(1, targets), dim=1)
    raise ConfigError(f"unknown score {kind!r}; choose one of {', '.join(SCORES)}")
