"""Weakly supervised localisation error (the ImageNet protocol of Fong & Vedaldi and Dabkowski & Gal).

A mask is turned into one box (tightest box around the thresholded mask, see ``boxes.threshold_mask``);
the image counts as localised when that box has IoU > 0.5 with *any* ground-truth box of the class.
Dabkowski thresholds the mask at 0.5 (``mode="fixed"``); Fong tunes α of value / energy / mean
thresholding on a held-out split (``tune_threshold``) and reports the error on the rest.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..boxes import THRESHOLD_MODES, Box, center_box, iou, mask_to_box, validate_box
from .base import BoxAccumulator, check_masks

IOU_THRESHOLD = 0.5

# Fong & Vedaldi §5.6: value and energy α ∈ [0 : 0.05 : 0.95], mean α ∈ [0 : 0.5 : 10]
DEFAULT_ALPHAS: dict[str, tuple[float, ...]] = {
    "value": tuple(round(0.05 * i, 2) for i in range(20)),
    "energy": tuple(round(0.05 * i, 2) for i in range(20)),
    "mean": tuple(0.5 * i for i in range(21)),
    "fixed": (0.5,),
}


def _check_mode(mode: str) -> None:
    if mode not in THRESHOLD_MODES:
        raise ValueError(f"unknown threshold mode {mode!r}; choose one of {', '.join(THRESHOLD_MODES)}")


def _mask_size(mask: torch.Tensor) -> tuple[int, int]:
    return int(mask.shape[-2]), int(mask.shape[-1])


def localisation_correct(
    mask: torch.Tensor,
    gt_boxes: Sequence[Sequence[float]],
    mode: str = "fixed",
    alpha: float = 0.5,
) -> bool:
    """True when the box of the thresholded ``mask`` (H, W) has IoU > 0.5 with any of ``gt_boxes``.

    Ground-truth boxes are in the mask's pixel coordinates (``boxes.scale_box`` converts). A mask
    that selects no pixel gives no box and counts as an error.
    """
    _check_mode(mode)
    check_masks(mask, batched=False)
    size = _mask_size(mask)
    gts = [validate_box(b, size) for b in gt_boxes]
    if not gts:
        raise ValueError("localisation needs at least one ground-truth box per image")
    predicted = mask_to_box(mask, mode, alpha)
    return predicted is not None and any(iou(predicted, g) > IOU_THRESHOLD for g in gts)


class LocalisationError(BoxAccumulator):
    """Accumulates the localisation error over a dataset: ``update`` per batch, ``compute`` at the end."""

    def __init__(self, mode: str = "fixed", alpha: float = 0.5) -> None:
        _check_mode(mode)
        self.mode = mode
        self.alpha = float(alpha)
        super().__init__()

    def outcome(self, mask: torch.Tensor, boxes: Sequence[Sequence[float]]) -> bool:
        return localisation_correct(mask, boxes, self.mode, self.alpha)

    def compute(self) -> float:
        """Fraction of images *not* localised (0–1; multiply by 100 for the papers' %)."""
        return 1.0 - self.mean()


def tune_threshold(
    masks: torch.Tensor | Sequence[torch.Tensor],
    boxes_list: Sequence[Sequence[Sequence[float]]],
    mode: str = "value",
    alphas: Sequence[float] | None = None,
) -> tuple[float, dict[float, float]]:
    """Pick the α with the lowest localisation error on a held-out split (Fong's Val-α*).

    Returns ``(best_alpha, {alpha: error})``; ties go to the first α in ``alphas``. Evaluate the
    chosen α on *other* images with ``LocalisationError(mode, best_alpha)``.
    """
    _check_mode(mode)
    candidates = tuple(alphas) if alphas is not None else DEFAULT_ALPHAS[mode]
    if not candidates:
        raise ValueError("tune_threshold needs at least one alpha")
    errors: dict[float, float] = {}
    for alpha in candidates:
        acc = LocalisationError(mode, alpha)
        acc.update(masks, boxes_list)
        errors[float(alpha)] = acc.compute()
    best = min(errors, key=lambda a: errors[a])  # dicts keep insertion order: first minimum wins
    return best, errors


__all__ = [
    "DEFAULT_ALPHAS",
    "IOU_THRESHOLD",
    "Box",
    "LocalisationError",
    "center_box",
    "localisation_correct",
    "tune_threshold",
]
