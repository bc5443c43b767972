"""Does the region a mask calls salient delete the evidence under perturbations it was not made with?

- ``representativeness`` (Fong & Vedaldi 2017, §5.2 "Deletion region representativeness", Fig. 7):
  smooth the salient mask s (Gaussian, ``smooth_sigma`` px at 224, scaled with the image), binarise
  it at α ∈ {0, 0.05, …, 0.95} and delete the binary region with each perturbation (fixed blur,
  mean colour, noise); per α report the normalised probability (p − p_full)/(p0 − p_full), p_full
  being the probability of the image perturbed everywhere by the same operator.
- ``cross_perturbation_drop``: the % drop of the target probability when the *soft* salient region
  is deleted with each perturbation operator (a mask optimised with one can be scored with the others).

Binarisation follows the paper's keep-mask convention m = 1 − s̃ (s̃ the smoothed salient mask): the
pixels with m < α are deleted, i.e. the region D_α = {s̃ > 1 − α}. D grows with α, from nothing at
α = 0 (every curve starts at exactly 1) to everything the mask touches, so good masks give curves
that fall quickly, as in Fig. 7. At α = 0.5 this is the region s̃ > 0.5 whichever way one reads it.
Masks are not rescaled: a faint mask that never exceeds 1 − α deletes nothing at that α, and its
curve stays at 1 — which is exactly the weakness the test exists to expose.

AUC: trapezoid of the normalised score over α, divided by the α range (0.95), so 1 = the region never
suppresses, 0 = it suppresses fully from the first step; lower is better. Larger regions suppress more,
so read it with the deleted area per α (``areas``), which is reported alongside.

For a binary keep-mask every operator in ``perturb`` reduces to x·m + Φ(x, 0)·(1 − m) (the blur
pyramid picks level 0 or its top level), so each image's fully perturbed copy is computed once and the
α regions are composited onto it in batches; consecutive α giving the same region (regions are
nested, so only neighbours can coincide) share one forward pass, an empty region is the original
image and a full one the reference image.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch

from ..blackbox import BlackBox, TargetSpec, as_blackbox
from ..errors import ConfigError
from ..objectives import class_score
from ..perturb import Perturbation, gaussian_blur, get_perturbation, pixel_scale
from ..target import class_targets
from .base import check_masks

ALPHAS = tuple(round(0.05 * k, 2) for k in range(20))  # the paper's [0 : 0.05 : 0.95]
# the paper does not give its extra smoothing; this is the σ its own mask parametrisation uses
SMOOTH_SIGMA = 5.0
# the paper's three deletions, by their names in ``perturb`` ("fixed-blur" is the σ0 = 10 blur blend
# x·(1 − s) + blur(x)·s of the authors' code)
REPR_PERTURBATIONS = ("fixed-blur", "constant", "noise")
CROSS_PERTURBATIONS = ("blur", "fixed-blur", "constant", "noise")
MIN_GAP = 1e-4  # p0 − p_full below this: whole-image deletion changes nothing, score undefined (NaN)

PerturbationSpec = str | Perturbation
Perturbations = Sequence[PerturbationSpec] | Mapping[str, PerturbationSpec]


def _named(perturbations: Perturbations) -> dict[str, Perturbation]:
    items = perturbations.items() if isinstance(perturbations, Mapping) else (
        (p if isinstance(p, str) else p.name, p) for p in perturbations
    )
    out = {str(name): get_perturbation(p) for name, p in items}
    if not out:
        raise ConfigError("at least one perturbation is needed")
    return out


def _setup(blackbox, images: torch.Tensor, masks: torch.Tensor, target):
    bb = as_blackbox(blackbox)
    bb.check_images(images)
    if masks.dim() == 3:
        masks = masks[:, None]
    if masks.dim() != 4 or masks.shape[1] != 1 or masks.shape[0] != images.shape[0] \
            or masks.shape[-2:] != images.shape[-2:]:
        raise ConfigError(f"masks {tuple(masks.shape)} do not match images {tuple(images.shape)}; "
                          "expected (B, 1, H, W) salient masks")
    check_masks(masks)
    x = images.detach().to(bb.device, torch.float32)
    s = masks.detach().to(x).clamp(0, 1)
    with bb.evaluating():
        targets = class_targets(bb, x, target, "a metric").to(x.device)
    return bb, x, s, targets


def _probs(bb: BlackBox, x: torch.Tensor, targets: torch.Tensor, batch_size: int) -> torch.Tensor:
    """Target probability (summed over K targets) of each image of x, in chunks of ``batch_size``."""
    with bb.evaluating():
        return torch.cat([
            class_score(bb(x[i : i + batch_size]), targets[i : i + batch_size], "prob")
            for i in range(0, x.shape[0], batch_size)
        ])


def _normalise(p: torch.Tensor, p0: torch.Tensor, p_full: torch.Tensor, min_gap: float) -> torch.Tensor:
    gap = p0 - p_full
    out = (p - p_full) / gap.clamp(min=min_gap)
    return torch.where(gap >= min_gap, out, torch.full_like(out, float("nan")))


def curve_auc(alphas: Sequence[float], scores: torch.Tensor) -> torch.Tensor:
    """Trapezoid area of scores (..., A) over α, divided by the α range: 1 = flat at 1, lower = better."""
    a = torch.tensor([float(v) for v in alphas], dtype=scores.dtype)
    span = float(a[-1] - a[0])
    if span <= 0:
        raise ConfigError("the AUC needs at least two distinct α")
    return torch.trapezoid(scores, a, dim=-1) / span


@dataclass
class RepresentativenessResult:
    """Per image, per perturbation and per α: normalised scores, and the deleted area per α.

    ``scores[name]`` is NaN for every α of an image where deleting the whole image lowers the
    probability by less than ``MIN_GAP`` (normalisation undefined); means ignore NaNs.
    """

    alphas: tuple[float, ...]
    scores: dict[str, torch.Tensor]  # name → (B, A)
    areas: torch.Tensor  # (B, A) fraction of the image deleted at each α
    p_original: torch.Tensor  # (B,)
    p_full: dict[str, torch.Tensor]  # name → (B,) probability of the fully perturbed image

    def auc(self) -> dict[str, torch.Tensor]:
        """Normalised area under each image's curve (B,), per perturbation; lower is better."""
        return {name: curve_auc(self.alphas, s) for name, s in self.scores.items()}

    def at(self, alpha: float) -> dict[str, torch.Tensor]:
        """Normalised score (B,) at one of the evaluated α, per perturbation."""
        k = _alpha_index(self.alphas, alpha)
        return {name: s[:, k] for name, s in self.scores.items()}

    def mean_curves(self) -> dict[str, torch.Tensor]:
        return {name: s.nanmean(dim=0) for name, s in self.scores.items()}


def _alpha_index(alphas: Sequence[float], alpha: float) -> int:
    for k, a in enumerate(alphas):
        if abs(a - alpha) < 1e-9:
            return k
    raise ConfigError(f"α = {alpha} was not evaluated (α: {list(alphas)})")


def _check_alphas(alphas: Sequence[float]) -> tuple[float, ...]:
    alphas = tuple(float(a) for a in alphas)
    if len(alphas) < 2 or any(not 0 <= a <= 1 for a in alphas) or list(alphas) != sorted(set(alphas)):
        raise ConfigError(f"α must be at least two increasing values in [0, 1], got {list(alphas)}")
    return alphas


def keep_masks(masks: torch.Tensor, alphas: Sequence[float] = ALPHAS,
               smooth_sigma: float = SMOOTH_SIGMA) -> torch.Tensor:
    """The binary keep-masks (B, A, H, W) (True = kept) of salient masks (B, 1, H, W), one per α:
    smooth, then keep where 1 − s̃ ≥ α (delete s̃ > 1 − α)."""
    if smooth_sigma < 0:
        raise ConfigError(f"smooth_sigma must be ≥ 0, got {smooth_sigma}")
    s = gaussian_blur(masks.float(), smooth_sigma * pixel_scale(masks.shape)).clamp(0, 1)
    m = 1.0 - s
    return torch.cat([m >= a for a in alphas], dim=1)


@torch.no_grad()
def representativeness(
    blackbox: BlackBox | torch.nn.Module,
    images: torch.Tensor,
    masks: torch.Tensor,
    target: TargetSpec | torch.Tensor = None,
    alphas: Sequence[float] = ALPHAS,
    perturbations: Perturbations = REPR_PERTURBATIONS,
    smooth_sigma: float = SMOOTH_SIGMA,
    batch_size: int = 32,
    min_gap: float = MIN_GAP,
) -> RepresentativenessResult:
    """Fong & Vedaldi §5.2 on salient ``masks`` (B, 1, H, W), 1 = salient (see the module doc).

    Cost: one forward per image and perturbation for the reference, plus one per distinct
    non-empty, non-full α region, in batches of ``batch_size`` (images × α mixed).
    """
    if batch_size < 1:
        raise ConfigError(f"batch_size must be at least 1, got {batch_size}")
    alphas = _check_alphas(alphas)
    ops = _named(perturbations)
    bb, x, s, targets = _setup(blackbox, images, masks, target)
    b, a = x.shape[0], len(alphas)
    keep = keep_masks(s, alphas, smooth_sigma)  # (B, A, H, W)
    areas = 1.0 - keep.flatten(2).float().mean(2)
    # which (image, α) regions need a forward: the first of each run of equal regions, unless empty/full
    first = torch.zeros(b, a, dtype=torch.long)  # index of the α whose forward this α reuses
    jobs: list[tuple[int, int]] = []
    kind = torch.zeros(b, a, dtype=torch.long)  # 0 = original, 1 = reference, 2 = composite
    for i in range(b):
        for k in range(a):
            if k and torch.equal(keep[i, k], keep[i, k - 1]):
                first[i, k], kind[i, k] = first[i, k - 1], kind[i, k - 1]
                continue
            first[i, k] = k
            if bool(keep[i, k].all()):
                kind[i, k] = 0
            elif not bool(keep[i, k].any()):
                kind[i, k] = 1
            else:
                kind[i, k] = 2
                jobs.append((i, k))
    p0 = _probs(bb, x, targets, batch_size)
    scores, p_full = {}, {}
    for name, op in ops.items():
        reference = op.reference(x)
        pf = _probs(bb, reference, targets, batch_size)
        p = torch.zeros(b, a, device=x.device)
        for start in range(0, len(jobs), batch_size):
            chunk = jobs[start : start + batch_size]
            idx = torch.tensor([i for i, _ in chunk], device=x.device)
            kept = torch.stack([keep[i, k] for i, k in chunk])[:, None]
            batch = torch.where(kept, x[idx], reference[idx])
            values = _probs(bb, batch, targets[idx], batch_size)
            for (i, k), v in zip(chunk, values):
                p[i, k] = v
        kind_d = kind.to(x.device)
        p = p.gather(1, first.to(x.device))  # repeated regions reuse their first α's forward
        p = torch.where(kind_d == 0, p0[:, None], torch.where(kind_d == 1, pf[:, None], p))
        scores[name] = _normalise(p, p0[:, None], pf[:, None], min_gap).cpu()
        p_full[name] = pf.cpu()
    return RepresentativenessResult(alphas, scores, areas.cpu(), p0.cpu(), p_full)


class Representativeness:
    """Accumulates §5.2 results over a dataset: mean curve, mean AUC and mean deleted area per α.

    ``update`` runs the protocol on a batch (options as for ``representativeness``);
    ``update_result`` adds a result computed elsewhere (e.g. read back from a cache).
    """

    def __init__(self, blackbox: BlackBox | torch.nn.Module | None = None, **options) -> None:
        self.blackbox = blackbox
        self.options = options
        self.results: list[RepresentativenessResult] = []

    def update(self, images: torch.Tensor, masks: torch.Tensor,
               target: TargetSpec | torch.Tensor = None) -> RepresentativenessResult:
        if self.blackbox is None:
            raise ConfigError("Representativeness.update needs a black box; use update_result otherwise")
        result = representativeness(self.blackbox, images, masks, target, **self.options)
        self.update_result(result)
        return result

    def update_result(self, result: RepresentativenessResult) -> None:
        if self.results:
            first = self.results[0]
            if result.alphas != first.alphas or set(result.scores) != set(first.scores):
                raise ConfigError("results with other α or perturbations cannot be averaged together")
        self.results.append(result)

    def compute(self) -> dict:
        """{"alphas", "curves": name → mean score per α, "auc": name → mean AUC, "n": name → images
        with a defined score, "area": mean deleted fraction per α}."""
        if not self.results:
            raise ConfigError("no images were evaluated")
        alphas = self.results[0].alphas
        out: dict = {"alphas": list(alphas), "curves": {}, "auc": {}, "n": {}}
        for name in self.results[0].scores:
            scores = torch.cat([r.scores[name] for r in self.results])
            defined = ~scores.isnan().any(dim=1)
            out["n"][name] = int(defined.sum())
            out["curves"][name] = [None if math.isnan(v) else float(v) for v in scores[defined].nanmean(0)]
            auc = curve_auc(alphas, scores[defined])
            out["auc"][name] = float(auc.mean()) if auc.numel() else None
        out["area"] = [float(v) for v in torch.cat([r.areas for r in self.results]).mean(0)]
        return out


@torch.no_grad()
def cross_perturbation_drop(
    blackbox: BlackBox | torch.nn.Module,
    images: torch.Tensor,
    masks: torch.Tensor,
    target: TargetSpec | torch.Tensor = None,
    perturbations: Perturbations = CROSS_PERTURBATIONS,
    relative: bool = True,
    batch_size: int = 32,
) -> dict[str, torch.Tensor]:
    """Per perturbation, the drop (B,) of the target probability when the soft salient region is
    deleted with it: Φ(x, 1 − s). ``relative``: 100·(p0 − p)/p0 (% of the original), otherwise
    100·(p0 − p) (probability points). A mask optimised with one operator is only credible if the
    drop survives the others (Fong & Vedaldi §5.2: a faint mask that deletes the evidence under the
    operator it was optimised with can delete almost nothing under a plain blur blend)."""
    if batch_size < 1:
        raise ConfigError(f"batch_size must be at least 1, got {batch_size}")
    ops = _named(perturbations)
    bb, x, s, targets = _setup(blackbox, images, masks, target)
    p0 = _probs(bb, x, targets, batch_size)
    out = {}
    for name, op in ops.items():
        p = torch.cat([
            _probs(bb, op.prepare(x[i : i + batch_size])(1.0 - s[i : i + batch_size]),
                   targets[i : i + batch_size], batch_size)
            for i in range(0, x.shape[0], batch_size)
        ])
        diff = p0 - p
        out[name] = (100.0 * (diff / p0.clamp(min=1e-12) if relative else diff)).cpu()
    return out
