"""Extremal perturbations (Fong, Patrick & Vedaldi, ICCV 2019): for each area a, the mask of that
area that keeps (``preserve``) or removes (``delete``) the most evidence for the target.

The hard area constraint is the ranking penalty (``objectives.ranking_penalty``), whose weight grows
geometrically over the run, so masks are soft early and have exactly the area a at the end; masks
come from the smooth-max family (``methods.smooth_max``); the perturbation is the paper's blur
pyramid (``recipe="paper"``) or, by default, one fixed blur blended in by the mask.
Every (image, area) pair is one row of the optimisation and of the ``Explanation``, image-major.
Why the default ``fast`` preset departs from the ``paper`` one: ``docs/methods/extremal.md``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import torch

from ..blackbox import BlackBox, TargetSpec, as_blackbox
from ..errors import ConfigError
from ..explanation import Explanation
from ..images import image_batch
from ..masks import combine_areas
from ..objectives import SCORES, class_score, keep_mask, ranking_penalty, ranking_template
from ..perturb import PERTURBATIONS, named_operator
from ..target import resolve
from .early_stop import EarlyStop, early_stop_params, early_stop_rule
from .optimise import (
    MAX_ITERATIONS,
    Active,
    Objective,
    Schedule,
    build_explanation,
    final_scores,
    optimise_masks,
    subset_applier,
)
from .smooth_max import SmoothMaxMasks

__all__ = [
    "EXTREMAL_GAMES",
    "RECIPES",
    "ExtremalSettings",
    "combine_areas",
    "extremal_perturbation",
]

EXTREMAL_GAMES = ("preserve", "delete", "dual")
DEFAULT_AREAS = (0.05, 0.1, 0.2)
# the paper's schedule: ×1.0035 per iteration over 800 iterations, i.e. ×16.4 over the run
PAPER_ITERATIONS = 800
PAPER_GROWTH = 1.0035


@dataclass(frozen=True)
class ExtremalSettings:
    """Extremal perturbations' hyper-parameters: the schedule (``iterations``; ``optimiser``
    ``adam`` or ``sgd`` with ``momentum``, at ``lr``), the mask family (``step``, ``sigma``,
    ``coldness``, ``form``: ``SmoothMaxMasks``) and the penalty's weight, from ``penalty`` growing
    geometrically to ``penalty_end`` at the last iteration (or by ``penalty_growth`` per iteration);
    the operator (``perturbation``: ``blur``, the paper's pyramid to σ = ``blur_sigma``, or one of
    ``perturb.PERTURBATIONS``) and what it moves (``score``)."""

    iterations: int = 200
    optimiser: str = "adam"
    lr: float = 0.05
    momentum: float = 0.9
    step: float = 7.0
    sigma: float = 14.0
    coldness: float = 10.0
    form: str = "normalised"
    penalty: float = 30.0
    penalty_end: float = 10000.0
    penalty_growth: float | None = None
    init: float = 0.5
    score: str = "logit"
    perturbation: str = "fixed-blur"
    blur_sigma: float = 10.0

    def check(self) -> ExtremalSettings:
        """These settings with ``iterations`` an int, or a ConfigError naming the bad value."""
        if self.optimiser not in ("sgd", "adam"):
            raise ConfigError(f"unknown optimiser {self.optimiser!r}; choose sgd or adam")
        if int(self.iterations) != self.iterations or not 1 <= self.iterations <= MAX_ITERATIONS:
            raise ConfigError(f"iterations must be a whole number of at least 1 and at most "
                              f"{MAX_ITERATIONS}, got {self.iterations}")
        if not (math.isfinite(self.lr) and self.lr > 0) or not 0 <= self.momentum < 1 or not self.penalty > 0:
            raise ConfigError("extremal needs lr > 0, momentum in [0, 1) and penalty > 0")
        if self.penalty_growth is None and self.penalty_end <= 0:
            raise ConfigError(f"penalty_end must be positive, got {self.penalty_end}")
        if not 0.0 <= self.init <= 1.0:  # also rejects NaN
            raise ConfigError(f"init must be in [0, 1], got {self.init}")
        if self.perturbation not in PERTURBATIONS:
            raise ConfigError(f"unknown perturbation {self.perturbation!r}; choose one of "
                              f"{', '.join(PERTURBATIONS)}")
        if not (math.isfinite(self.blur_sigma) and self.blur_sigma > 0):
            raise ConfigError(f"blur_sigma must be a positive number of pixels, got {self.blur_sigma}")
        if self.score not in SCORES:
            raise ConfigError(f"unknown score {self.score!r}; choose one of {', '.join(SCORES)}")
        if self.growth <= 0:
            raise ConfigError(f"penalty_growth must be positive, got {self.growth}")
        return replace(self, iterations=int(self.iterations))

    @property
    def growth(self) -> float:
        """The penalty's factor per iteration: ×(end/start) over the run, whatever its length."""
        if self.penalty_growth is not None:
            return self.penalty_growth
        return (self.penalty_end / self.penalty) ** (1.0 / max(1, self.iterations - 1))

    def optimiser_for(self, params: list[torch.Tensor]) -> torch.optim.Optimizer:
        if self.optimiser == "adam":
            return torch.optim.Adam(params, lr=self.lr)
        return torch.optim.SGD(params, lr=self.lr, momentum=self.momentum)


RECIPES: dict[str, ExtremalSettings] = {
    # the paper's recipe (docs/methods/extremal.md): SGD, 800 iterations, σ = 21 px, the plain smooth max
    "paper": ExtremalSettings(
        iterations=PAPER_ITERATIONS, optimiser="sgd", lr=0.01, sigma=21.0, coldness=20.0, form="paper",
        penalty=300.0, penalty_end=300.0 * PAPER_GROWTH**PAPER_ITERATIONS,
        perturbation="blur", blur_sigma=20.0,
    ),
    "fast": ExtremalSettings(),
    # ``fast`` before 2026-12-02: the paper's blur pyramid to σ = 20 px, a 10.5 px kernel (the
    # results pages measured with it say so)
    "pyramid": ExtremalSettings(sigma=10.5, perturbation="blur", blur_sigma=20.0),
}


def extremal_settings(recipe: str, **overrides) -> ExtremalSettings:
    """The ``recipe``'s settings with every override that is not ``None``, checked."""
    if recipe not in RECIPES:
        raise ConfigError(f"unknown recipe {recipe!r}; choose one of {', '.join(RECIPES)}")
    return replace(RECIPES[recipe], **{k: v for k, v in overrides.items() if v is not None}).check()


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
    init: float | None = None,
    score: str | None = None,
    perturbation: str | None = None,
    blur_sigma: float | None = None,
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
        target: as for ``meaningful_perturbation`` (per-image list, int, name, ``top1``, a
            callable of the logits...).
        areas: fractions of the image in (0, 1), all optimised in the same run.
        game: ``preserve`` (keep only the mask), ``delete`` (blur the mask away) or ``dual``
            (both at once: the loss is −f(Φ(x, m)) + f(Φ(x, 1 − m))).
        recipe: ``fast`` (default: normalised smooth max, Adam, 200 iterations, a fixed σ = 10 blur
            blended in), ``pyramid`` (``fast`` with the paper's blur pyramid, the default before
            2026-12-02) or ``paper`` (the paper's SGD recipe, 800 iterations, the blur pyramid):
            ``RECIPES``; every option left ``None`` comes
            from it (``docs/methods/extremal.md`` has the measurements behind the difference).
        iterations: optimiser steps; parameters stay in [0, 1].
        optimiser, lr, momentum: ``adam`` or ``sgd`` (with ``momentum``) at learning rate ``lr``.
        step, sigma, coldness, form: the mask family (pixels at 224; see ``SmoothMaxMasks``).
        penalty, penalty_end, penalty_growth: the ranking penalty's weight starts at ``penalty``
            and grows geometrically to ``penalty_end`` at the last iteration, whatever the run's
            length (``penalty_growth``, per iteration, overrides ``penalty_end``).
        perturbation: ``fixed-blur`` (``fast``: one σ = ``blur_sigma`` blur blended in by the
            mask), ``blur`` (``paper``: a pyramid to σ = ``blur_sigma``, the mask value picking
            the level) or another of ``perturb.PERTURBATIONS`` (``constant``, ``noise``).
        blur_sigma, blur_levels: the blur's σ in px at 224 (``fast`` 10, ``paper`` 20) and the
            pyramid's levels.
        flip: show the perturbed input flipped left-right every other iteration (the jitter).
        init: the mask parameters' starting value in [0, 1] (1: start from the whole image, salient).
        score: what the game moves: ``logit`` (the paper's), ``prob``, ``log-prob`` or ``log-odds``
            (``objectives.class_score``; ``docs/methods/extremal.md`` finding 14 compares them).
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
    if game not in EXTREMAL_GAMES:
        raise ConfigError(f"unknown game {game!r}; choose one of {', '.join(EXTREMAL_GAMES)}")
    settings = extremal_settings(
        recipe, iterations=iterations, optimiser=optimiser, lr=lr, momentum=momentum, step=step, sigma=sigma,
        coldness=coldness, form=form, penalty=penalty, penalty_end=penalty_end, penalty_growth=penalty_growth,
        init=init, score=score, perturbation=perturbation, blur_sigma=blur_sigma,
    )
    images = image_batch(images)
    blackbox = as_blackbox(model)
    blackbox.check_images(images)
    device = blackbox.device
    x = images.detach().to(device=device, dtype=torch.float32)
    batch, count = x.shape[0], len(areas)
    size = (x.shape[-2], x.shape[-1])
    family = SmoothMaxMasks(
        size, settings.step, settings.sigma, settings.coldness, device=device, form=settings.form
    )
    rows = torch.arange(batch).repeat_interleave(count)  # image-major: row = image·A + area index
    row_areas = torch.tensor(areas, dtype=torch.float32).repeat(batch)
    if bool(((row_areas * size[0] * size[1]).round() < 1).any()):
        raise ConfigError(f"area {min(areas):g} is less than one pixel of a {size[0]}x{size[1]} image")
    pert = named_operator(settings.perturbation, settings.blur_sigma, blur_levels)

    with blackbox.evaluating():
        targets = resolve(blackbox, x, target).to(device)
        row_targets = targets[rows.to(device)]
        xr = x[rows.to(device)]
        apply = pert.prepare(xr)
        template = ranking_template(size[0] * size[1], row_areas.to(device))

        kind = settings.score

        def data(shown: torch.Tensor, t: int, active: Active) -> torch.Tensor:
            """The negated score of what the game keeps (plus the deleted score for ``dual``)."""
            if game == "dual":
                seen = torch.cat([active.apply(shown), active.apply(1.0 - shown)])
            else:
                seen = active.apply(keep_mask(shown, game))
            if flip and t % 2 == 1:
                seen = seen.flip(-1)
            logits = blackbox(seen)
            these = row_targets[active.rows]
            if game == "dual":
                n = len(these)
                return -class_score(logits[:n], these, kind) + class_score(logits[n:], these, kind)
            scores = class_score(logits, these, kind)
            return scores if game == "delete" else -scores

        growth = settings.growth
        rule = early_stop_rule(early_stop)
        objective = Objective(
            family, data, lambda masks, _params, active: ranking_penalty(masks, template[active.rows]),
            weight=lambda t: settings.penalty * growth**t,
        )
        schedule = Schedule(
            settings.iterations, settings.lr, settings.optimiser_for, keep="last", early_stop=rule
        )
        params, history, used = optimise_masks(
            xr.new_full((len(xr), 1, *family.param_size), settings.init), subset_applier(pert, xr, apply),
            objective, schedule, seed=seed, progress=progress, desc="extremal",
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
            "optimiser": settings.optimiser,
            "form": settings.form,
            "perturbation": settings.perturbation,
            "blur_sigma": settings.blur_sigma,
            "blur_levels": blur_levels,
            "iterations": settings.iterations,
            "lr": settings.lr,
            "momentum": settings.momentum,
            "step": settings.step,
            "sigma": settings.sigma,
            "coldness": settings.coldness,
            "penalty": settings.penalty,
            "penalty_growth": growth,
            "init": settings.init,
            "score": settings.score,
            "flip": flip,
            "seed": seed,
            **early_stop_params(rule),
        },
        perturbation=pert,
        iterations_used=used,
    )
    explanation.image_index = rows
    explanation.requested_area = row_areas
    return explanation

