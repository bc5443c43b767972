"""The pointing game (Zhang et al. 2016, as used by Fong & Vedaldi §5.6).

The mask "points" at its maximum; a hit is scored when that point lies on an object of the class,
with a 15-pixel tolerance. Tolerance follows Zhang et al.: the point may be at most 15 px (Euclidean)
from the object, here from any ground-truth box, so a point diagonally off a box corner needs
dx² + dy² ≤ 15², not just |dx|, |dy| ≤ 15.

Ties: a binary or flat mask has many maximal pixels. Taking the first in raster order would make a
centred box point at its top-left corner, so the point is the tied maximum nearest to the centroid of
all tied maxima (the centre of a centred box; the single argmax when there is no tie).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from ..boxes import validate_box
from .base import BoxAccumulator, check_masks

TOLERANCE = 15.0


def max_point(mask: torch.Tensor) -> tuple[int, int]:
    """(x, y) of the mask's maximum; among ties, the one nearest their centroid (first if equal)."""
    check_masks(mask, batched=False)
    m = torch.as_tensor(mask).detach().float()
    while m.dim() > 2:
        m = m[0]
    ys, xs = torch.nonzero(m == m.max(), as_tuple=True)
    cy, cx = ys.float().mean(), xs.float().mean()
    k = int(((ys.float() - cy) ** 2 + (xs.float() - cx) ** 2).argmin())
    return int(xs[k]), int(ys[k])


def distance_to_box(point: tuple[float, float], box: Sequence[float]) -> float:
    """Euclidean distance from (x, y) to an inclusive box (0 inside or on its border)."""
    x, y = point
    xmin, ymin, xmax, ymax = validate_box(box)
    dx = max(xmin - x, 0.0, x - xmax)
    dy = max(ymin - y, 0.0, y - ymax)
    return math.hypot(dx, dy)


def pointing_hit(
    mask: torch.Tensor, gt_boxes: Sequence[Sequence[float]], tolerance: float = TOLERANCE
) -> bool:
    """True when the mask's maximum lies within ``tolerance`` px of any of ``gt_boxes``."""
    size = (int(mask.shape[-2]), int(mask.shape[-1]))
    boxes = [validate_box(b, size) for b in gt_boxes]
    if not boxes:
        raise ValueError("the pointing game needs at least one ground-truth box per image")
    point = max_point(mask)
    return any(distance_to_box(point, b) <= tolerance for b in boxes)


class PointingGame(BoxAccumulator):
    """Accumulates pointing accuracy (hits / images) over a dataset."""

    def __init__(self, tolerance: float = TOLERANCE) -> None:
        self.tolerance = float(tolerance)
        super().__init__()

    def outcome(self, mask: torch.Tensor, boxes: Sequence[Sequence[float]]) -> bool:
        return pointing_hit(mask, boxes, self.tolerance)

    def compute(self) -> float:
        """Pointing accuracy in [0, 1]."""
        return self.mean()
