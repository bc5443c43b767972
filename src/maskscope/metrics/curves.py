"""Deletion and insertion curves (Petsiuk et al. 2018, RISE): remove (insert) pixels in decreasing
order of saliency and integrate the class probability over the removed (inserted) fraction."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..blackbox import BlackBox, TargetSpec
from ..perturb import fill_perturbation, pixel_scale
from .base import Accumulator, check_masks, class_probs, setup_batch


@dataclass
class CurveResult:
    """Class probability after removing (deletion) or inserting the top fraction of pixels."""

    fractions: torch.Tensor  # (S + 1,) from 0 to 1
    deletion_curve: torch.Tensor  # (B, S + 1)
    insertion_curve: torch.Tensor  # (B, S + 1)

    @property
    def deletion(self) -> torch.Tensor:
        """Area under the deletion curve (B,): lower is better."""
        return torch.trapezoid(self.deletion_curve, self.fractions, dim=1)

    @property
    def insertion(self) -> torch.Tensor:
        """Area under the insertion curve (B,): higher is better."""
        return torch.trapezoid(self.insertion_curve, self.fractions, dim=1)


def _fill(x: torch.Tensor, kind: str, sigma: float) -> torch.Tensor:
    """RISE's substrate: σ is in the image's own pixels here (not scaled from 224 like ``FixedBlur``)."""
    return fill_perturbation(kind, sigma / pixel_scale(x.shape), "substrate").reference(x)


def deletion_insertion_auc(
    blackbox: BlackBox | torch.nn.Module,
    images: torch.Tensor,
    saliency: torch.Tensor,
    target: TargetSpec | torch.Tensor = None,
    steps: int = 32,
    deletion_substrate: str = "zero",
    insertion_substrate: str = "blur",
    blur_sigma: float = 5.0,
    batch_size: int = 32,
) -> CurveResult:
    """RISE deletion and insertion curves with ``steps`` equal pixel increments.

    Deletion replaces the most salient pixels first by ``deletion_substrate`` (RISE: zeros);
    insertion starts from ``insertion_substrate`` (RISE: a blurred copy, σ = 5) and restores the most
    salient pixels first. Ties in saliency keep raster order (stable sort), so a flat map removes
    pixels row by row.
    """
    if steps < 1:
        raise ValueError("steps must be at least 1")
    check_masks(saliency)
    bb, x, targets = setup_batch(blackbox, images, target)
    if saliency.shape[0] != x.shape[0] or saliency.shape[-2:] != x.shape[-2:]:
        raise ValueError(f"saliency {tuple(saliency.shape)} does not match images {tuple(x.shape)}")
    b, _, h, w = x.shape
    n = h * w
    order = saliency.detach().to(x).reshape(b, -1, n)[:, 0].argsort(dim=1, descending=True, stable=True)
    rank = torch.empty_like(order).scatter_(1, order, torch.arange(n, device=x.device).expand(b, -1))
    counts = [round(k * n / steps) for k in range(steps + 1)]
    gone = _fill(x, deletion_substrate, blur_sigma)
    empty = _fill(x, insertion_substrate, blur_sigma)

    def curve(start: torch.Tensor, end: torch.Tensor) -> torch.Tensor:
        values = []
        for count in counts:  # one batch of B images per step, B·(steps + 1) forwards in all
            changed = (rank < count).view(b, 1, h, w)
            values.append(class_probs(bb, torch.where(changed, end, start), targets, batch_size))
        return torch.stack(values, dim=1).cpu()

    fractions = torch.tensor([c / n for c in counts], dtype=torch.float32)
    return CurveResult(fractions, curve(x, gone), curve(empty, x))


class DeletionInsertion(Accumulator):
    """Accumulates mean deletion and insertion AUCs over a dataset."""

    def __init__(self, blackbox: BlackBox | torch.nn.Module, **options) -> None:
        self.blackbox = blackbox
        self.options = options
        super().__init__()
        self.deletion: list[float] = []
        self.insertion: list[float] = []

    def update(
        self, images: torch.Tensor, saliency: torch.Tensor, target: TargetSpec | torch.Tensor = None
    ) -> CurveResult:
        result = deletion_insertion_auc(self.blackbox, images, saliency, target, **self.options)
        self.deletion.extend(float(v) for v in result.deletion)
        self.insertion.extend(float(v) for v in result.insertion)
        self.add(result.deletion)
        return result

    def compute(self) -> dict[str, float]:
        return {"deletion_auc": self.mean(self.deletion), "insertion_auc": self.mean(self.insertion)}
