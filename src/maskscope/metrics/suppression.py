"""Minimal suppressive boxes (Fong & Vedaldi 2017, §5.3 / Fig. 8).

- ``mask_box_suppression``: threshold the saliency map at h ∈ {0, 0.1, …, 1}, blur the tightest box
  of each threshold, and for each suppression level find the smallest of those boxes whose
  *normalised* score p' = (p − p_b) / (p0 − p_b) is ≤ 1 − level (p0 original, p_b fully blurred
  image, p box-blurred image). Fig. 8 plots the mean of these areas (pixels²) at levels 80, 90, 95,
  99 %.
- ``smallest_suppressive_box``: the same quantity without a saliency method, searching a grid of
  boxes (sizes k/g of each side, positions on a 1/g lattice): an oracle lower bound to place methods
  against on the Fig. 8 axes.

Box perturbations are binary, and for a binary keep-mask every operator in ``perturb`` reduces to
x·m + Φ(x, 0)·(1 − m), so each image's fully perturbed copy (``Perturbation.reference``) is
computed once and boxes are composited onto it in large batches.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from ..blackbox import BlackBox, TargetSpec
from ..boxes import Box, box_area, mask_to_box, pixel_box
from ..perturb import Perturbation, get_perturbation
from .base import NO_IMAGES, Accumulator, check_masks, class_probs, setup_batch

LEVELS = (0.8, 0.9, 0.95, 0.99)
FONG_THRESHOLDS = tuple(round(0.1 * i, 1) for i in range(11))


@dataclass
class SuppressionResult:
    """Per image and level the smallest box (and its area, pixels²) reaching that suppression.

    ``areas`` is NaN where no candidate box reached the level or where blurring the whole image does
    not lower the score (p0 ≤ p_b, normalisation undefined); ``mean_areas`` ignores NaNs.
    """

    levels: tuple[float, ...]
    areas: torch.Tensor  # (B, L)
    boxes: list[list[Box | None]]  # [B][L]
    p_original: torch.Tensor  # (B,)
    p_blurred: torch.Tensor  # (B,)

    def mean_areas(self) -> torch.Tensor:
        return self.areas.nanmean(dim=0)


def normalised_score(p: torch.Tensor, p_original: torch.Tensor, p_blurred: torch.Tensor) -> torch.Tensor:
    """Fong's p' = (p − p_b)/(p0 − p_b): 1 = untouched score, 0 = as low as the fully blurred image."""
    denom = p_original - p_blurred
    out = (p - p_blurred) / denom.clamp(min=1e-12)
    return torch.where(denom > 1e-12, out, torch.full_like(out, float("nan")))


def _composite(x: torch.Tensor, reference: torch.Tensor, box: Sequence[float]) -> torch.Tensor:
    """x with the box region replaced by the fully perturbed reference (one image, (3, H, W))."""
    x0, y0, x1, y1 = pixel_box(box, (x.shape[-2], x.shape[-1]))
    out = x.clone()
    out[:, y0 : y1 + 1, x0 : x1 + 1] = reference[:, y0 : y1 + 1, x0 : x1 + 1]
    return out


class _BoxScorer:
    """Normalised scores of box-perturbed copies of a batch of images, in large batches."""

    def __init__(self, blackbox, images, target, perturbation, batch_size: int) -> None:
        self.bb, self.x, self.targets = setup_batch(blackbox, images, target)
        self.reference = get_perturbation(perturbation).reference(self.x)
        self.batch_size = batch_size
        self.p_original = class_probs(self.bb, self.x, self.targets, batch_size)
        self.p_blurred = class_probs(self.bb, self.reference, self.targets, batch_size)

    def scores(self, pairs: Sequence[tuple[int, Box]]) -> torch.Tensor:
        """Normalised score p' of each (image index, box) pair."""
        out = []
        for start in range(0, len(pairs), self.batch_size):
            chunk = pairs[start : start + self.batch_size]
            idx = torch.tensor([i for i, _ in chunk], device=self.x.device)
            batch = torch.stack([_composite(self.x[i], self.reference[i], b) for i, b in chunk])
            p = class_probs(self.bb, batch, self.targets[idx], self.batch_size)
            out.append(normalised_score(p, self.p_original[idx], self.p_blurred[idx]))
        return torch.cat(out) if out else torch.empty(0)

    def result(self, levels: tuple[float, ...], best: list[list[Box | None]]) -> SuppressionResult:
        areas = torch.tensor([[box_area(b) if b is not None else float("nan") for b in row] for row in best])
        return SuppressionResult(
            levels, areas.view(len(best), len(levels)), best, self.p_original.cpu(), self.p_blurred.cpu()
        )


def _check_levels(levels: Sequence[float]) -> tuple[float, ...]:
    levels = tuple(float(v) for v in levels)
    if not levels or any(not 0 < v <= 1 for v in levels):
        raise ValueError(f"suppression levels must lie in (0, 1], got {levels}")
    return levels


def _pick_smallest(candidates: list[tuple[Box, float]], levels: tuple[float, ...]) -> list[Box | None]:
    """For each level the smallest-area candidate box whose normalised score is ≤ 1 − level."""
    ordered = sorted(candidates, key=lambda c: box_area(c[0]))
    return [next((b for b, s in ordered if s <= 1.0 - lv + 1e-9), None) for lv in levels]


def grid_boxes(size: tuple[int, int], grid: int) -> list[Box]:
    """All boxes with sides k/grid of the image (k = 1..grid, independently in x and y) placed on a
    1/grid lattice, sorted by area (smallest first)."""
    h, w = size
    xs = [round(j * w / grid) for j in range(grid + 1)]
    ys = [round(j * h / grid) for j in range(grid + 1)]
    boxes = [
        (float(xs[i]), float(ys[j]), float(xs[i + kx] - 1), float(ys[j + ky] - 1))
        for kx in range(1, grid + 1)
        for ky in range(1, grid + 1)
        for i in range(grid - kx + 1)
        for j in range(grid - ky + 1)
    ]
    return sorted(boxes, key=box_area)


def smallest_suppressive_box(
    blackbox: BlackBox | torch.nn.Module,
    images: torch.Tensor,
    target: TargetSpec | torch.Tensor = None,
    levels: Sequence[float] = LEVELS,
    grid: int = 4,
    perturbation: str | Perturbation = "blur",
    batch_size: int = 32,
) -> SuppressionResult:
    """Smallest grid box whose perturbation reaches each normalised suppression level (oracle search).

    Boxes are tried from the smallest area up and the search stops for an image once its highest
    level is reached, so easy images cost few forwards. The whole-image box always reaches every
    level (p = p_b), so every image with p0 > p_b gets a box. Cost: up to (grid·(grid+1)/2)² boxes
    per image (100 for grid 4, 441 for grid 6).
    """
    levels = _check_levels(levels)
    scorer = _BoxScorer(blackbox, images, target, perturbation, batch_size)
    batch = scorer.x.shape[0]
    candidates = grid_boxes((scorer.x.shape[-2], scorer.x.shape[-1]), grid)
    best: list[list[Box | None]] = [[None] * len(levels) for _ in range(batch)]
    defined = ~torch.isnan(normalised_score(scorer.p_original, scorer.p_original, scorer.p_blurred)).cpu()
    active = [i for i in range(batch) if bool(defined[i])]
    position = 0
    while active and position < len(candidates):
        per_image = max(1, batch_size // len(active))
        chunk = candidates[position : position + per_image]
        pairs = [(i, b) for i in active for b in chunk]
        scores = scorer.scores(pairs).view(len(active), len(chunk)).cpu()
        for row, i in enumerate(active):
            for col, box in enumerate(chunk):
                for li, level in enumerate(levels):
                    if best[i][li] is None and float(scores[row, col]) <= 1.0 - level + 1e-9:
                        best[i][li] = box
        active = [i for i in active if any(b is None for b in best[i])]
        position += len(chunk)
    return scorer.result(levels, best)


def mask_box_suppression(
    blackbox: BlackBox | torch.nn.Module,
    images: torch.Tensor,
    masks: torch.Tensor,
    target: TargetSpec | torch.Tensor = None,
    levels: Sequence[float] = LEVELS,
    thresholds: Sequence[float] = FONG_THRESHOLDS,
    perturbation: str | Perturbation = "blur",
    batch_size: int = 32,
) -> SuppressionResult:
    """Fong's §5.3 protocol for a method's saliency ``masks`` (B, 1, H, W): min-max normalise each,
    threshold at each h, blur the tightest box, keep per level the smallest box reaching it."""
    levels = _check_levels(levels)
    if masks.shape[0] != images.shape[0] or masks.shape[-2:] != images.shape[-2:]:
        raise ValueError(f"masks {tuple(masks.shape)} do not match images {tuple(images.shape)}")
    scorer = _BoxScorer(blackbox, images, target, perturbation, batch_size)
    pairs: list[tuple[int, Box]] = []
    check_masks(masks)
    for i, mask in enumerate(masks.detach().float().cpu()):
        m = mask[0] - mask.min()
        m = m / m.max() if float(m.max()) > 0 else m
        boxes = {mask_to_box(m, "fixed", h) for h in thresholds}
        pairs.extend((i, b) for b in sorted(b for b in boxes if b is not None))
    scores = scorer.scores(pairs).cpu().tolist()
    per_image: list[list[tuple[Box, float]]] = [[] for _ in range(images.shape[0])]
    for (i, box), s in zip(pairs, scores):
        if not math.isnan(s):
            per_image[i].append((box, s))
    return scorer.result(levels, [_pick_smallest(c, levels) for c in per_image])


class MinimalBoxes(Accumulator):
    """Accumulates ``SuppressionResult``s; ``compute`` gives the mean minimal box area per level."""

    def __init__(self, levels: Sequence[float] = LEVELS) -> None:
        super().__init__()
        self.levels = _check_levels(levels)
        self.areas: list[torch.Tensor] = []

    def update(self, result: SuppressionResult) -> None:
        if tuple(result.levels) != self.levels:
            raise ValueError(f"result levels {result.levels} differ from {self.levels}")
        self.areas.append(result.areas)
        self.values.extend([float("nan")] * result.areas.shape[0])  # one entry per image, for len()

    def compute(self) -> dict[float, float]:
        """{level: mean area in pixels² over images where the level was reached}."""
        if not self.areas:
            raise ValueError(NO_IMAGES)
        means = torch.cat(self.areas).nanmean(dim=0)
        return {lv: float(v) for lv, v in zip(self.levels, means)}
