"""% drop (Godi et al. 2019, Table 2): perturb (blur) the image with the mask and report the drop of
the class probability, in % of the original probability by default."""

from __future__ import annotations

from typing import Protocol

import torch

from ..blackbox import BlackBox, TargetSpec
from ..perturb import Perturbation, get_perturbation
from .base import Accumulator, check_masks, class_probs, setup_batch


class StoredScores(Protocol):
    """What the drop reads from an ``Explanation`` (the metrics sit below it and do not import it)."""

    @property
    def method(self) -> str: ...

    @property
    def p_original(self) -> torch.Tensor | None: ...

    @property
    def p_deleted(self) -> torch.Tensor | None: ...


def probability_drop(
    blackbox: BlackBox | torch.nn.Module,
    images: torch.Tensor,
    masks: torch.Tensor,
    target: TargetSpec | torch.Tensor = None,
    perturbation: str | Perturbation = "blur",
    relative: bool = True,
) -> torch.Tensor:
    """Drop of the class probability (B,) when the salient region (mask = 1) is perturbed.

    ``relative``: 100·(p0 − p)/p0, % of the original probability (saturates at 100, as Godi's
    Table 2 does); otherwise 100·(p0 − p), in probability points.
    """
    bb, x, targets = setup_batch(blackbox, images, target)
    if masks.shape[0] != x.shape[0] or masks.shape[-2:] != x.shape[-2:]:
        raise ValueError(f"masks {tuple(masks.shape)} do not match images {tuple(x.shape)}")
    check_masks(masks)
    keep = 1.0 - masks.detach().to(x).clamp(0, 1)
    perturbed = get_perturbation(perturbation).prepare(x)(keep)
    p0 = class_probs(bb, x, targets, x.shape[0])
    p = class_probs(bb, perturbed, targets, x.shape[0])
    return drop_from_probabilities(p0, p, relative).cpu()


def drop_from_probabilities(
    p_original: torch.Tensor, p_deleted: torch.Tensor, relative: bool = True
) -> torch.Tensor:
    diff = p_original - p_deleted
    return 100.0 * (diff / p_original.clamp(min=1e-12) if relative else diff)


def drop_from_explanation(explanation: StoredScores, relative: bool = True) -> torch.Tensor:
    """The % drop from the probabilities a method already stored (its own perturbation)."""
    if explanation.p_original is None or explanation.p_deleted is None:
        raise ValueError(f"the {explanation.method!r} explanation has no p_original / p_deleted")
    return drop_from_probabilities(explanation.p_original, explanation.p_deleted, relative)


class ProbabilityDrop(Accumulator):
    """Accumulates the mean % drop over a dataset (``update`` with masks, or ``update_explanation``)."""

    def __init__(
        self,
        blackbox: BlackBox | torch.nn.Module | None = None,
        perturbation: str = "blur",
        relative: bool = True,
    ) -> None:
        self.blackbox = blackbox
        self.perturbation = perturbation
        self.relative = relative
        super().__init__()

    def update(
        self, images: torch.Tensor, masks: torch.Tensor, target: TargetSpec | torch.Tensor = None
    ) -> torch.Tensor:
        if self.blackbox is None:
            raise ValueError("ProbabilityDrop.update needs a black box; use update_explanation otherwise")
        drops = probability_drop(self.blackbox, images, masks, target, self.perturbation, self.relative)
        self.add(drops)
        return drops

    def update_explanation(self, explanation: StoredScores) -> torch.Tensor:
        drops = drop_from_explanation(explanation, self.relative)
        self.add(drops)
        return drops
