"""Deletion protocols: does removing what a mask calls salient remove the class evidence?

- ``probability_drop`` (Godi et al. 2019, Table 2): perturb (blur) the image with the mask and report
  the drop of the class probability, in % of the original probability by default.
- ``mask_box_suppression`` (Fong & Vedaldi 2017, §5.3 / Fig. 8): threshold the saliency map at
  h ∈ {0, 0.1, …, 1}, blur the tightest box of each threshold, and for each suppression level find the
  smallest of those boxes whose *normalised* score p' = (p − p_b) / (p0 − p_b) is ≤ 1 − level
  (p0 original, p_b fully blurred image, p box-blurred image). Fig. 8 plots the mean of these areas
  (pixels²) at levels 80, 90, 95, 99 %.
- ``smallest_suppressive_box``: the same quantity without a saliency method, searching a grid of
  boxes (sizes k/g of each side, positions on a 1/g lattice): an oracle lower bound to place methods
  against on the Fig. 8 axes.
- ``deletion_insertion_auc`` (Petsiuk et al. 2018, RISE): remove (insert) pixels in decreasing order
  of saliency and integrate the class probability over the removed (inserted) fraction.

Box perturbations are binary, and for a binary keep-mask every operator in ``perturb`` reduces to
x·m + Φ(x, 0)·(1 − m), so each image's fully perturbed copy is computed once and boxes are
composited onto it in large batches.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from ..blackbox import BlackBox, TargetSpec, as_blackbox
from ..boxes import Box, box_area, mask_to_box, pixel_box
from ..explanation import Explanation
from ..objectives import class_score
from ..perturb import Perturbation, gaussian_blur, get_perturbation

LEVELS = (0.8, 0.9, 0.95, 0.99)
FONG_THRESHOLDS = tuple(round(0.1 * i, 1) for i in range(11))


def _setup(blackbox, images: torch.Tensor, target) -> tuple[BlackBox, torch.Tensor, torch.Tensor]:
    bb = as_blackbox(blackbox)
    if images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f"images must have shape (B, 3, H, W), got {tuple(images.shape)}")
    x = images.detach().to(bb.device, torch.float32)
    with torch.no_grad(), bb.evaluating():
        targets = bb.resolve_targets(x, target).to(x.device)
    return bb, x, targets


@torch.no_grad()
def _probs(bb: BlackBox, x: torch.Tensor, targets: torch.Tensor, batch_size: int) -> torch.Tensor:
    """Class probability (summed over K targets) of each image in x (N,), evaluated in chunks."""
    with bb.evaluating():
        return torch.cat(
            [
                class_score(bb(x[i : i + batch_size]), targets[i : i + batch_size], "prob")
                for i in range(0, x.shape[0], batch_size)
            ]
        )


# -- probability drop (Godi Table 2) --------------------------------------------------------------
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
    bb, x, targets = _setup(blackbox, images, target)
    if masks.shape[0] != x.shape[0] or masks.shape[-2:] != x.shape[-2:]:
        raise ValueError(f"masks {tuple(masks.shape)} do not match images {tuple(x.shape)}")
    keep = 1.0 - masks.detach().to(x).clamp(0, 1)
    perturbed = get_perturbation(perturbation).prepare(x)(keep)
    p0 = _probs(bb, x, targets, x.shape[0])
    p = _probs(bb, perturbed, targets, x.shape[0])
    return drop_from_probabilities(p0, p, relative).cpu()


def drop_from_probabilities(
    p_original: torch.Tensor, p_deleted: torch.Tensor, relative: bool = True
) -> torch.Tensor:
    diff = p_original - p_deleted
    return 100.0 * (diff / p_original.clamp(min=1e-12) if relative else diff)


def drop_from_explanation(explanation: Explanation, relative: bool = True) -> torch.Tensor:
    """The % drop from the probabilities a method already stored (its own perturbation)."""
    if explanation.p_original is None or explanation.p_deleted is None:
        raise ValueError(f"the {explanation.method!r} explanation has no p_original / p_deleted")
    return drop_from_probabilities(explanation.p_original, explanation.p_deleted, relative)


class ProbabilityDrop:
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
        self.values: list[float] = []

    def update(
        self, images: torch.Tensor, masks: torch.Tensor, target: TargetSpec | torch.Tensor = None
    ) -> torch.Tensor:
        if self.blackbox is None:
            raise ValueError("ProbabilityDrop.update needs a black box; use update_explanation otherwise")
        drops = probability_drop(self.blackbox, images, masks, target, self.perturbation, self.relative)
        self.values.extend(float(v) for v in drops)
        return drops

    def update_explanation(self, explanation: Explanation) -> torch.Tensor:
        drops = drop_from_explanation(explanation, self.relative)
        self.values.extend(float(v) for v in drops)
        return drops

    def compute(self) -> float:
        if not self.values:
            raise ValueError("no images were evaluated")
        return math.fsum(self.values) / len(self.values)


# -- minimal suppressive boxes (Fong Fig. 8) -------------------------------------------------------
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
    x0, y0, x1, y1 = pixel_box(box, tuple(x.shape[-2:]))
    out = x.clone()
    out[:, y0 : y1 + 1, x0 : x1 + 1] = reference[:, y0 : y1 + 1, x0 : x1 + 1]
    return out


class _BoxScorer:
    """Normalised scores of box-perturbed copies of a batch of images, in large batches."""

    def __init__(self, blackbox, images, target, perturbation, batch_size: int) -> None:
        self.bb, self.x, self.targets = _setup(blackbox, images, target)
        self.reference = get_perturbation(perturbation).reference(self.x)
        self.batch_size = batch_size
        self.p_original = _probs(self.bb, self.x, self.targets, batch_size)
        self.p_blurred = _probs(self.bb, self.reference, self.targets, batch_size)

    def scores(self, pairs: Sequence[tuple[int, Box]]) -> torch.Tensor:
        """Normalised score p' of each (image index, box) pair."""
        out = []
        for start in range(0, len(pairs), self.batch_size):
            chunk = pairs[start : start + self.batch_size]
            idx = torch.tensor([i for i, _ in chunk], device=self.x.device)
            batch = torch.stack([_composite(self.x[i], self.reference[i], b) for i, b in chunk])
            p = _probs(self.bb, batch, self.targets[idx], self.batch_size)
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
    candidates = grid_boxes(tuple(scorer.x.shape[-2:]), grid)
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


# -- deletion / insertion curves (RISE) -----------------------------------------------------------
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


def _substrate(x: torch.Tensor, kind: str, sigma: float) -> torch.Tensor:
    if kind == "zero":
        return torch.zeros_like(x)
    if kind == "mean":
        return x.mean(dim=(2, 3), keepdim=True).expand_as(x)
    if kind == "blur":
        return gaussian_blur(x, sigma)
    raise ValueError(f"unknown substrate {kind!r}; choose zero, mean or blur")


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
    bb, x, targets = _setup(blackbox, images, target)
    if saliency.shape[0] != x.shape[0] or saliency.shape[-2:] != x.shape[-2:]:
        raise ValueError(f"saliency {tuple(saliency.shape)} does not match images {tuple(x.shape)}")
    b, _, h, w = x.shape
    n = h * w
    order = saliency.detach().to(x).reshape(b, -1, n)[:, 0].argsort(dim=1, descending=True, stable=True)
    rank = torch.empty_like(order).scatter_(1, order, torch.arange(n, device=x.device).expand(b, -1))
    counts = [round(k * n / steps) for k in range(steps + 1)]
    gone = _substrate(x, deletion_substrate, blur_sigma)
    empty = _substrate(x, insertion_substrate, blur_sigma)

    def curve(start: torch.Tensor, end: torch.Tensor) -> torch.Tensor:
        values = []
        for count in counts:  # one batch of B images per step, B·(steps + 1) forwards in all
            changed = (rank < count).view(b, 1, h, w)
            values.append(_probs(bb, torch.where(changed, end, start), targets, batch_size))
        return torch.stack(values, dim=1).cpu()

    fractions = torch.tensor([c / n for c in counts], dtype=torch.float32)
    return CurveResult(fractions, curve(x, gone), curve(empty, x))


class DeletionInsertion:
    """Accumulates mean deletion and insertion AUCs over a dataset."""

    def __init__(self, blackbox: BlackBox | torch.nn.Module, **options) -> None:
        self.blackbox = blackbox
        self.options = options
        self.deletion: list[float] = []
        self.insertion: list[float] = []

    def update(
        self, images: torch.Tensor, saliency: torch.Tensor, target: TargetSpec | torch.Tensor = None
    ) -> CurveResult:
        result = deletion_insertion_auc(self.blackbox, images, saliency, target, **self.options)
        self.deletion.extend(float(v) for v in result.deletion)
        self.insertion.extend(float(v) for v in result.insertion)
        return result

    def compute(self) -> dict[str, float]:
        if not self.deletion:
            raise ValueError("no images were evaluated")
        return {
            "deletion_auc": math.fsum(self.deletion) / len(self.deletion),
            "insertion_auc": math.fsum(self.insertion) / len(self.insertion),
        }


class MinimalBoxes:
    """Accumulates ``SuppressionResult``s; ``compute`` gives the mean minimal box area per level."""

    def __init__(self, levels: Sequence[float] = LEVELS) -> None:
        self.levels = _check_levels(levels)
        self.areas: list[torch.Tensor] = []

    def update(self, result: SuppressionResult) -> None:
        if tuple(result.levels) != self.levels:
            raise ValueError(f"result levels {result.levels} differ from {self.levels}")
        self.areas.append(result.areas)

    def compute(self) -> dict[float, float]:
        """{level: mean area in pixels² over images where the level was reached}."""
        if not self.areas:
            raise ValueError("no images were evaluated")
        means = torch.cat(self.areas).nanmean(dim=0)
        return {lv: float(v) for lv, v in zip(self.levels, means)}
