"""Extremal perturbations (Fong, Patrick & Vedaldi, ICCV 2019), written from DESIGN.md's description.

Instead of trading the score against λ·area, the area a is fixed and the method looks for the mask
of that area that keeps (``preserve``) or removes (``delete``) the most evidence for the target:
m_a = argmax_{‖m‖₁ = a·|Ω|} f_c(Φ(x, m)), with f_c the target's *logit*. The hard constraint is a
ranking penalty on the sorted mask, R_a(m) = mean((sort(m) − r_a)²), whose weight grows
geometrically over the run, so masks are soft early and have exactly the area a at the end.

Masks come from a smooth parametric family (``SmoothMaxMasks``): parameters on a coarse grid, each
spreading to nearby pixels with a radial Gaussian, combined by a smooth maximum, so masks are
smooth yet can be flat at 1. The perturbation is the shared pyramid ``perturb.Blur`` (8 levels,
σ from 0 to 20 px at 224, 1 = untouched).

Layout: every (image, area) pair is one row of a single optimisation and of the ``Explanation``,
image-major (row = image·A + area index). Each row carries its own image, target, scores and mask,
so everything that works row by row (``save``, figures, ``__getitem__``, ``record``) works
unchanged; ``Explanation.image_index`` and ``Explanation.requested_area`` say which image and
which area a row is, and ``combine_areas`` merges an image's rows the paper's way for pointing and
localisation (``maskscope evaluate`` scores that combined mask).

Why this is better than the only packaged version: images × areas are batched in one loop with
per-image targets, the model is only differentiated w.r.t. the mask parameters
(``torch.autograd.grad``: no ``requires_grad`` flag is touched), its train/eval modes are restored,
and the blur pyramid is built on the images' own device.

Deviations from the paper (``recipe="fast"``, the default; ``recipe="paper"`` is DESIGN.md's
description: plain smooth max of p·K, σ = 21 px, β = 20, SGD lr 0.01 momentum 0.9, 800 iterations,
penalty 300 growing ×1.0035 per iteration). Measured on 4 ImageNet *train-sample* photos (tench,
Chihuahua, Siberian husky, zebra; EfficientNet-Lite0, areas 0.05/0.1/0.2, 100 iterations) and on
the quadrant toy of the tests:

- **Mask family.** The plain smooth max of p_k·K(u − u_k) is flat at 0.947, not 1, inside a block
  of parameters at 1 (every kernel value around a pixel is below 1, and the smooth max averages
  them), so the ranking penalty, whose template is exact 0s and 1s, can never be met; with σ = 21
  px the Gaussian tail also makes every edge ~30 px soft. Measured: only 0.5–2 % of the image
  reaches 0.9 in the 0.05/0.1 masks, and 86–94 % of each mask's support is in (0.1, 0.9). The
  default ``form="normalised"`` is m(u) = Σ_k w_k·p_k / Σ_k w_k with w_k = K_k·e^{β·K_k·p_k}: a
  convex combination of the parameters, so a constant field maps to itself and a block of ones
  is exactly 1 (tested), still a smooth max (as β grows it tends to the max of the parameters in
  reach). With σ = 10.5 px and β = 10 an edge goes from 0.9 to 0.1 in ~8 px and one parameter at
  1 alone gives a disk of ~1.4 % of the image, fine enough for the 0.05 area. On the quadrant toy
  the masks become near-binary with the requested area (0.055 / 0.111 at ≥ 0.5 for 0.05 / 0.1).
- **Optimiser and schedule.** At a uniform 0.5 initialisation the penalty's gradient w.r.t. the
  parameters (×300: ~0.26 on every parameter) is ~10× the target logit's (mean 0.03), and a flat
  mask's sort order is arbitrary, so with the paper's weights the penalty alone sorts the initial
  mask into blobs before the score has a say (the "blobs off the object" symptom). ``fast`` uses
  Adam (lr 0.05: per-parameter steps, so a short run moves) and grows the penalty geometrically
  from 30 to 10⁴ over the run (``penalty``, ``penalty_end``); the larger final weight pulls the
  area within ~1 point of the request (3·10³ left the toy's 0.05 mask at 0.074), 200 iterations.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from ..blackbox import BlackBox, TargetSpec, as_blackbox
from ..errors import ConfigError
from ..explanation import Explanation
from ..images import image_batch
from ..masks import combine_areas
from ..objectives import class_score
from ..perturb import Blur, pixel_scale
from .optimise import (
    MAX_ITERATIONS,
    EarlyStop,
    Settings,
    build_explanation,
    early_stop_params,
    early_stop_rule,
    final_scores,
    keep_mask,
    optimise_masks,
    subset_applier,
)

__all__ = [
    "EXTREMAL_GAMES",
    "SmoothMaxMasks",
    "combine_areas",
    "extremal_perturbation",
    "ranking_penalty",
    "ranking_template",
]

EXTREMAL_GAMES = ("preserve", "delete", "dual")
DEFAULT_AREAS = (0.05, 0.1, 0.2)
MASK_FORMS = ("normalised", "paper")
# the paper's schedule: ×1.0035 per iteration over 800 iterations, i.e. ×16.4 over the run
PAPER_ITERATIONS = 800
PAPER_GROWTH = 1.0035
RECIPES: dict[str, dict] = {
    # DESIGN.md's description of the paper: SGD, 800 iterations, σ = 21 px, the plain smooth max
    "paper": dict(iterations=PAPER_ITERATIONS, optimiser="sgd", lr=0.01, momentum=0.9, step=7.0,
                  sigma=21.0, coldness=20.0, form="paper", penalty=300.0,
                  penalty_end=300.0 * PAPER_GROWTH**PAPER_ITERATIONS),
    "fast": dict(iterations=200, optimiser="adam", lr=0.05, momentum=0.9, step=7.0, sigma=10.5,
                 coldness=10.0, form="normalised", penalty=30.0, penalty_end=10000.0),
}


class SmoothMaxMasks:
    """The smooth-max mask family, over the parameters whose kernel K (a radial Gaussian of std
    ``sigma`` cut at ``support``·σ) reaches u. ``form="paper"``: m(u) = smax_k p_k·K(u − u_k) with
    smax_β(c) = Σ c·e^{βc} / Σ e^{βc} (flat at ~0.947 inside a block of ones, not 1).
    ``form="normalised"`` (default): m(u) = Σ w_k·p_k / Σ w_k, w_k = K_k·e^{β·K_k·p_k}, a convex
    combination of the parameters, so a constant field maps to itself exactly.
    The grid is extended beyond the image by repeating its edge
    parameters, so every pixel sees the same number of participants: with parameters outside the
    image left out (or taken as 0) the smooth max is less (more) damped near the border, a uniform
    initialisation is then not uniform, and the ranking penalty, which ranks pixels from the first
    iteration on, drives every mask into the corners (or the centre) before the score has a say.

    A smooth maximum rather than a sum lets a region of parameters at 1 give a mask that is flat
    at 1 instead of piling up. ``step`` and ``sigma`` are pixels at 224 and scale with the image.

    The field is evaluated exactly on a lattice of ``substeps``² points per parameter cell (every
    3.5 px at 224 by default) and interpolated bilinearly to pixels: the field varies on the
    scale of σ = 21 px, so this is within about 0.01 of evaluating every pixel (tested) at a small
    fraction of the memory and time, which keeps the method's cost close to the classifier's.
    """

    def __init__(
        self,
        size: tuple[int, int],
        step: float = 7.0,
        sigma: float = 10.5,
        coldness: float = 10.0,
        support: float = 2.0,
        substeps: int = 2,
        device: torch.device | str | None = None,
        form: str = "normalised",
    ) -> None:
        if form not in MASK_FORMS:
            raise ConfigError(f"unknown mask form {form!r}; choose one of {', '.join(MASK_FORMS)}")
        self.form = form
        if step <= 0 or sigma <= 0 or coldness <= 0 or support <= 0 or substeps < 1:
            raise ConfigError("the mask family needs positive step, sigma, coldness, support and substeps")
        scale = pixel_scale(size)
        self.size = (int(size[0]), int(size[1]))
        self.step = step * scale
        self.sigma = sigma * scale
        self.coldness = float(coldness)
        self.substeps = int(substeps)
        h, w = (max(1, math.ceil(n / self.step)) for n in self.size)
        self.param_size = (h, w)
        self.radius = max(1, math.ceil(support * self.sigma / self.step))  # in parameter cells
        r, s = self.radius, self.substeps
        offsets = torch.arange(-r, r + 1, dtype=torch.float64)
        sub = (torch.arange(s, dtype=torch.float64) + 0.5) / s
        # distance (in cells) from lattice point (sub-position j) to the parameter at offset o
        d = offsets.view(1, -1) + 0.5 - sub.view(-1, 1)  # (S, 2r+1)
        dist2 = (d.view(s, 1, -1, 1) ** 2 + d.view(1, s, 1, -1) ** 2) * self.step**2  # (S, S, 2r+1, 2r+1)
        kernel = torch.exp(-dist2 / (2 * self.sigma**2)).reshape(s * s, -1)  # (S², O)
        reach = (dist2 <= (support * self.sigma) ** 2).reshape(s * s, -1)
        used = reach.any(0)  # offsets that reach no lattice point are dropped altogether
        self.offsets = used.nonzero()[:, 0].to(device)
        takes_part = reach[:, used, None]  # (S², O, 1)
        # e^{β·c} with c ≤ 1 stays below e^β, so the smooth max needs no max-subtraction for
        # β up to ~80 in float32; β·K is folded into one constant
        if self.coldness > 80:
            raise ConfigError(f"coldness {coldness} is too large (at most 80)")
        cold = (self.coldness * kernel[:, used]).to(device=device, dtype=torch.float32)
        self.cold_kernel = cold[None, :, :, None]
        weight = kernel[:, used] * reach[:, used]
        self.kernel_weight = weight.to(device=device, dtype=torch.float32)[None, :, :, None]
        self.takes_part = takes_part.to(device=device, dtype=torch.float32)[None]

    def __call__(self, params: torch.Tensor) -> torch.Tensor:
        """Parameters (N, 1, h, w) in [0, 1] → masks (N, 1, H, W) in [0, 1]."""
        n = params.shape[0]
        (h, w), r, s = self.param_size, self.radius, self.substeps
        padded = F.pad(params, (r, r, r, r), mode="replicate")
        neighbours = F.unfold(padded, 2 * r + 1)[:, self.offsets]  # (N, O, h·w)
        if self.form == "paper":
            field = _SmoothMax.apply(neighbours, self.cold_kernel, self.takes_part, self.coldness)
        else:
            field = _KernelSmoothMax.apply(neighbours, self.cold_kernel, self.kernel_weight)
        lattice = field.view(n, s, s, h, w).permute(0, 3, 1, 4, 2).reshape(n, 1, h * s, w * s)
        up = F.interpolate(
            lattice, scale_factor=self.step / s, mode="bilinear", align_corners=False,
            recompute_scale_factor=False,
        )
        return up[..., : self.size[0], : self.size[1]].clamp(0, 1)


class _KernelSmoothMax(torch.autograd.Function):
    """The normalised smooth max over the O neighbours, as one op (see ``_SmoothMax`` for why):

    m = Σ w·p / Σ w,  w_o = K_o·e^{β·K_o·p_o};  ∂m/∂p_o = (w_o / Σ w)·(1 + β·K_o·(p_o − m)).

    A convex combination of the parameters, so a constant field maps to itself exactly.
    """

    @staticmethod
    def forward(ctx, neighbours, cold_kernel, kernel_weight):
        values = neighbours[:, None]
        weights = torch.exp(values * cold_kernel).mul_(kernel_weight)
        den = weights.sum(2)
        field = (values * weights).sum(2).div_(den)
        ctx.save_for_backward(neighbours, cold_kernel, kernel_weight, den, field)
        return field

    @staticmethod
    def backward(ctx, grad):
        neighbours, cold_kernel, kernel_weight, den, field = ctx.saved_tensors
        values = neighbours[:, None]
        weights = torch.exp(values * cold_kernel).mul_(kernel_weight)
        factor = (values - field[:, :, None]).mul_(cold_kernel).add_(1.0).mul_(weights)
        factor.mul_((grad / den)[:, :, None])
        return factor.sum(1), None, None


class _SmoothMax(torch.autograd.Function):
    """smax_β over the O neighbours of c = p·K, as one op: the (N, S², O, h·w) intermediates are
    recomputed in the backward pass instead of stored, and updated in place, which makes the mask
    family several times cheaper (time and memory) than the same formula through autograd.

    m = Σ c·e^{βc} / Σ e^{βc};  ∂m/∂c_o = w_o·(1 + β(c_o − m)) with w = the softmax weights.
    """

    @staticmethod
    def forward(ctx, neighbours, cold_kernel, takes_part, coldness):
        hot = neighbours[:, None] * cold_kernel  # β·c
        weights = torch.exp(hot).mul_(takes_part)
        den = weights.sum(2)
        field = (weights.mul_(hot)).sum(2).div_(den * coldness)
        ctx.save_for_backward(neighbours, cold_kernel, takes_part, den, field)
        ctx.coldness = coldness
        return field

    @staticmethod
    def backward(ctx, grad):
        neighbours, cold_kernel, takes_part, den, field = ctx.saved_tensors
        beta = ctx.coldness
        hot = neighbours[:, None] * cold_kernel
        weights = torch.exp(hot).mul_(takes_part)
        # w·(1 + βc − βm)·K·g, with w = e/den and K = βK/β
        factor = hot.sub_((beta * field)[:, :, None]).add_(1.0).mul_(weights)
        factor.mul_((grad / (den * beta))[:, :, None]).mul_(cold_kernel)
        return factor.sum(1), None, None, None


def ranking_template(n: int, areas: torch.Tensor) -> torch.Tensor:
    """r_a per row: (1 − a)·n zeros then a·n ones (rounded), shape (N, n)."""
    ones = torch.round(areas * n).long()
    return (torch.arange(n, device=areas.device).view(1, -1) >= (n - ones).view(-1, 1)).float()


def ranking_penalty(masks: torch.Tensor, template: torch.Tensor) -> torch.Tensor:
    """R_a(m) = mean((sort(m) − r_a)²) per mask (N,): zero exactly for a binary mask of area a."""
    ordered = masks.flatten(1).sort(dim=1).values
    return (ordered - template).pow(2).mean(1)


def check_areas(areas: float | Sequence[float]) -> tuple[float, ...]:
    """Areas as a tuple of floats in (0, 1); ConfigError otherwise."""
    if isinstance(areas, (int, float)):
        areas = (areas,)
    try:
        values = tuple(float(a) for a in areas)
    except (TypeError, ValueError):
        raise ConfigError(f"areas must be numbers in (0, 1), got {areas!r}") from None
    if not values:
        raise ConfigError("give at least one area")
    for a in values:
        if not 0.0 < a < 1.0:  # also rejects NaN
            raise ConfigError(f"area {a:g} is outside (0, 1): it is the fraction of the image to keep")
    return values


def extremal_perturbation(
    model: BlackBox | torch.nn.Module,
    images: torch.Tensor,
    target: TargetSpec = None,
    areas: float | Sequence[float] = DEFAULT_AREAS,
    game: str = "preserve",
    recipe: str = "fast",
    iterations: int | None = None,
    optimiser: str | None = None,
    lr: float | None = None,
    momentum: float | None = None,
    step: float | None = None,
    sigma: float | None = None,
    coldness: float | None = None,
    form: str | None = None,
    penalty: float | None = None,
    penalty_end: float | None = None,
    penalty_growth: float | None = None,
    blur_sigma: float = 20.0,
    blur_levels: int = 8,
    flip: bool = True,
    seed: int = 0,
    progress: bool = False,
    early_stop: bool | EarlyStop = False,
) -> Explanation:
    """For each image and each area a, the mask of area a that keeps (or removes) the most evidence.

    Args:
        model: a ``BlackBox`` or any ``nn.Module`` taking [0, 1] images (B, 3, H, W) to logits.
        images: (B, 3, H, W) in [0, 1].
        target: as for ``meaningful_perturbation`` (per-image list, int, name, ``top1``...).
        areas: fractions of the image in (0, 1), all optimised in the same run.
        game: ``preserve`` (keep only the mask), ``delete`` (blur the mask away) or ``dual``
            (both at once: the loss is −f(Φ(x, m)) + f(Φ(x, 1 − m))).
        recipe: ``fast`` (default: normalised smooth max, Adam, 200 iterations) or ``paper`` (the
            paper's SGD recipe, 800 iterations); every option left ``None`` comes from it (see the
            module docstring for the numbers behind the difference).
        iterations: optimiser steps; parameters stay in [0, 1].
        optimiser, lr, momentum: ``adam`` or ``sgd`` (with ``momentum``) at learning rate ``lr``.
        step, sigma, coldness, form: the mask family (pixels at 224; see ``SmoothMaxMasks``).
        penalty, penalty_end, penalty_growth: the ranking penalty's weight starts at ``penalty``
            and grows geometrically to ``penalty_end`` at the last iteration, whatever the run's
            length (``penalty_growth``, per iteration, overrides ``penalty_end``).
        blur_sigma, blur_levels: the blur pyramid (σ from 0 to ``blur_sigma`` px at 224).
        flip: show the perturbed input flipped left-right every other iteration (the jitter).
        seed: unused by the optimisation itself (it is deterministic); recorded for the cache.
        early_stop: ``True`` (or an ``optimise.EarlyStop``) stops a row once its mask parameters have
            stopped moving (``Explanation.iterations_used`` says when). Off by default: the penalty
            grows until the last iteration, so a row stopped early has met a weaker area constraint,
            and this has not been measured on real images yet (meaningful and crisp stop by default).

    Returns an ``Explanation`` with one row per (image, area), image-major: ``masks`` (B·A, 1, H, W),
    ``image_index`` and ``requested_area`` per row, scores under the same blur. The masks are salient
    (1 = kept for preservation, 1 = deleted for deletion) with mean value ≈ the area.
    """
    areas = check_areas(areas)
    if recipe not in RECIPES:
        raise ConfigError(f"unknown recipe {recipe!r}; choose one of {', '.join(RECIPES)}")
    given = dict(iterations=iterations, optimiser=optimiser, lr=lr, momentum=momentum, step=step, sigma=sigma,
                 coldness=coldness, form=form, penalty=penalty, penalty_end=penalty_end)
    opts = {**RECIPES[recipe], **{k: v for k, v in given.items() if v is not None}}
    iterations, optimiser, lr, momentum = opts["iterations"], opts["optimiser"], opts["lr"], opts["momentum"]
    step, sigma, coldness = opts["step"], opts["sigma"], opts["coldness"]
    form, penalty = opts["form"], opts["penalty"]
    if optimiser not in ("sgd", "adam"):
        raise ConfigError(f"unknown optimiser {optimiser!r}; choose sgd or adam")
    if game not in EXTREMAL_GAMES:
        raise ConfigError(f"unknown game {game!r}; choose one of {', '.join(EXTREMAL_GAMES)}")
    if int(iterations) != iterations or not 1 <= iterations <= MAX_ITERATIONS:
        raise ConfigError(f"iterations must be a whole number of at least 1 and at most {MAX_ITERATIONS}, "
                          f"got {iterations}")
    if not (math.isfinite(lr) and lr > 0) or not 0 <= momentum < 1 or not penalty > 0:
        raise ConfigError("extremal needs lr > 0, momentum in [0, 1) and penalty > 0")
    if penalty_growth is None:
        # ×(end/start) over the run, whatever its length
        end = opts["penalty_end"]
        if end <= 0:
            raise ConfigError(f"penalty_end must be positive, got {end}")
        penalty_growth = (end / penalty) ** (1.0 / max(1, iterations - 1))
    if penalty_growth <= 0:
        raise ConfigError(f"penalty_growth must be positive, got {penalty_growth}")
    images = image_batch(images)
    iterations = int(iterations)
    blackbox = as_blackbox(model)
    blackbox.check_images(images)
    device = blackbox.device
    x = images.detach().to(device=device, dtype=torch.float32)
    batch, count = x.shape[0], len(areas)
    size = (x.shape[-2], x.shape[-1])
    family = SmoothMaxMasks(size, step, sigma, coldness, device=device, form=form)
    rows = torch.arange(batch).repeat_interleave(count)  # image-major: row = image·A + area index
    row_areas = torch.tensor(areas, dtype=torch.float32).repeat(batch)
    if bool(((row_areas * size[0] * size[1]).round() < 1).any()):
        raise ConfigError(f"area {min(areas):g} is less than one pixel of a {size[0]}x{size[1]} image")
    pert = Blur(sigma0=blur_sigma, levels=blur_levels)

    with blackbox.evaluating():
        targets = blackbox.resolve_targets(x, target).to(device)
        row_targets = targets[rows.to(device)]
        xr = x[rows.to(device)]
        apply = pert.prepare(xr)
        template = ranking_template(size[0] * size[1], row_areas.to(device))

        def data_term(shown: torch.Tensor, t: int, active) -> torch.Tensor:
            """The negated logit of what the game keeps (plus the deleted logit for ``dual``)."""
            if game == "dual":
                seen = torch.cat([active.apply(shown), active.apply(1.0 - shown)])
            else:
                seen = active.apply(keep_mask(shown, game))
            if flip and t % 2 == 1:
                seen = seen.flip(-1)
            logits = blackbox(seen)
            these = row_targets[active.rows]
            if game == "dual":
                scores = class_score(logits, torch.cat([these, these]), "logit")
                return -scores[: len(these)] + scores[len(these) :]
            scores = class_score(logits, these, "logit")
            return scores if game == "delete" else -scores

        def make_optimiser(ps: list[torch.Tensor]) -> torch.optim.Optimizer:
            if optimiser == "adam":
                return torch.optim.Adam(ps, lr=lr)
            return torch.optim.SGD(ps, lr=lr, momentum=momentum)

        rule = early_stop_rule(early_stop)
        params, history, used = optimise_masks(
            blackbox,
            subset_applier(pert, xr, apply),
            row_targets,
            xr.new_full((len(xr), 1, *family.param_size), 0.5),
            family,
            lambda masks, _params, active: ranking_penalty(masks, template[active.rows]),
            game,
            Settings(iterations=iterations, lr=lr, jitter=0, score="logit"),
            iterations,
            seed=seed,
            progress=progress,
            desc="extremal",
            optimiser=make_optimiser,
            regulariser_weight=lambda t: penalty * penalty_growth**t,
            data_term=data_term,
            keep="last",
            early_stop=rule,
        )
        with torch.no_grad():
            masks = family(params)
        scores = final_scores(blackbox, apply, xr, masks, row_targets)
    explanation = build_explanation(
        blackbox,
        images[rows.to(images.device)],
        masks,
        row_targets,
        "extremal",
        scores,
        history,
        {
            "game": game,
            "areas": list(areas),
            "recipe": recipe,
            "optimiser": optimiser,
            "form": form,
            "perturbation": "blur",
            "blur_sigma": blur_sigma,
            "blur_levels": blur_levels,
            "iterations": iterations,
            "lr": lr,
            "momentum": momentum,
            "step": step,
            "sigma": sigma,
            "coldness": coldness,
            "penalty": penalty,
            "penalty_growth": penalty_growth,
            "flip": flip,
            "seed": seed,
            **early_stop_params(rule),
        },
        iterations_used=used,
    )
    explanation.image_index = rows
    explanation.requested_area = row_areas
    return explanation

