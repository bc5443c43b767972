"""Objective terms: regularisers on the mask, class-score terms on the black box's output, and
the two games that turn a score into a loss.

All mask terms take the *salient* mask s (B, 1, H, W) and return one value per image (B,), so a
batch is a sum of independent problems: batching never changes any single image's result.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from .errors import ConfigError

if TYPE_CHECKING:
    from .target import ScoreTarget

# Paper weights are per element of the paper's 224×224 image or of its 28×28 mask grid; sums over
# masks of other sizes are rescaled to those references so a weight means the same at any size.
REFERENCE_PIXELS = 224 * 224
REFERENCE_GRID = 28 * 28
SCORES = ("prob", "log-prob", "logit", "log-odds")  # what ``class_score`` can compute
GAMES = ("delete", "preserve")


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


def ranking_template(n: int, areas: torch.Tensor) -> torch.Tensor:
    """r_a per row: (1 − a)·n zeros then a·n ones (rounded), shape (N, n)."""
    ones = torch.round(areas * n).long()
    return (torch.arange(n, device=areas.device).view(1, -1) >= (n - ones).view(-1, 1)).float()


def ranking_penalty(masks: torch.Tensor, template: torch.Tensor) -> torch.Tensor:
    """R_a(m) = mean((sort(m) − r_a)²) per mask (N,): zero exactly for a binary mask of area a
    (extremal perturbations' area constraint)."""
    ordered = masks.flatten(1).sort(dim=1).values
    return (ordered - template).pow(2).mean(1)


def class_score(
    logits: torch.Tensor, targets: torch.Tensor | ScoreTarget, kind: str = "prob"
) -> torch.Tensor:
    """Per-image score of the target classes (B,); targets (B, K) are summed over K (top-k).

    kind: ``prob`` (softmax probability, Fong's default), ``log-prob`` (log of the summed
    probability), ``logit`` (raw summed logit), ``log-odds`` (log p − log(1 − p) of the summed
    probability p: it follows the probability, yet its gradient does not vanish as p nears 1 or 0,
    as those of ``prob`` and ``log-prob`` do). A callable target (``target.ScoreTarget``) is its
    own score of the logits, whatever ``kind``.
    """
    if not isinstance(targets, torch.Tensor):
        return targets(logits)
    if kind == "logit":
        return logits.gather(1, targets).sum(1)
    if kind == "log-odds":
        chosen = torch.zeros_like(logits, dtype=torch.bool).scatter(1, targets, True)
        low = torch.finfo(logits.dtype).min
        return (torch.logsumexp(logits.masked_fill(~chosen, low), dim=1)
                - torch.logsumexp(logits.masked_fill(chosen, low), dim=1))
    probs = logits.softmax(dim=1).gather(1, targets).sum(1)
    if kind == "prob":
        return probs
    if kind == "log-prob":
        return torch.logsumexp(logits.log_softmax(dim=1).gather(1, targets), dim=1)
    raise ConfigError(f"unknown score {kind!r}; choose one of {', '.join(SCORES)}")


def check_game(game: str) -> None:
    if game not in GAMES:
        raise ConfigError(f"unknown game {game!r}; choose delete or preserve")


def keep_mask(salient: torch.Tensor, game: str) -> torch.Tensor:
    """The paper's keep mask m from a salient mask: deletion perturbs what is salient."""
    return 1.0 - salient if game == "delete" else salient


def game_loss(
    scores: torch.Tensor, game: str, reference: torch.Tensor | None, relative: bool = False
) -> torch.Tensor:
    """Deletion minimises the class score. Preservation asks that the kept region alone keep the
    score of the whole image, f_c(Φ(x, m)) ≥ f_c(x) (paper §4.2), so only a shortfall below the
    original score costs (a hinge, relative to it for probabilities): rewarding scores *above* the
    original would let the mask grow to push the probability towards 1 instead of staying small.
    """
    if game == "delete" and not relative:
        return scores
    assert reference is not None, "preservation and relative scores need the whole image's score"
    if game == "delete":
        return scores / reference.clamp_min(1e-6)
    shortfall = torch.relu(reference - scores)
    return shortfall / reference.clamp_min(1e-6) if bool((reference > 0).all()) else shortfall
