"""Meaningful perturbation (Fong & Vedaldi 2017): optimise a smooth mask per image and class.

The whole batch is optimised in one loop: every loss term is per image and the batch loss is
their sum, so each image's gradient (and Adam's per-element state) is independent of the others.
The only randomness, the jitter offset, is drawn from a seeded generator once per iteration and
shared by the batch, so a batch of 4 gives the same masks as four batches of 1.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..blackbox import BlackBox, TargetSpec, as_blackbox
from ..errors import ConfigError
from ..explanation import Explanation
from ..images import image_batch
from ..masks import circle_masks, upsample_mask
from ..objectives import REFERENCE_GRID, area, check_game, class_score, keep_mask, total_variation
from ..perturb import Perturbation, get_perturbation
from ..target import resolve
from .early_stop import EarlyStop, early_stop_params, early_stop_rule
from .optimise import (
    Active,
    Objective,
    Schedule,
    Targets,
    build_explanation,
    final_scores,
    game_term,
    optimise_masks,
    subset_applier,
)
from .settings import PRESETS, Settings, check_settings, preset_target, resolve_settings

__all__ = ["PRESETS", "Settings", "circle_init", "meaningful_perturbation", "optimise_smooth_masks"]


@torch.no_grad()
def circle_init(
    blackbox: BlackBox,
    apply: Callable[[torch.Tensor], torch.Tensor],
    images: torch.Tensor,
    targets: Targets,
    game: str,
    settings: Settings,
    param_size: tuple[int, int],
    steps: int = 16,
) -> torch.Tensor:
    """The paper's initialisation: the smallest centred circle whose deletion suppresses the
    score by 99 % of the way to the fully perturbed image (for preservation: whose keeping
    recovers 99 % of it). Returns salient low-resolution parameters (B, 1, h, w).

    The radius is found by a per-image bisection over ``steps`` radii (the score is monotone in
    the radius for all practical purposes), one batched forward pass per bisection step.
    """
    size = (images.shape[-2], images.shape[-1])
    batch = images.shape[0]
    radii = torch.linspace(1.0 / steps, 1.0, steps)
    circles = circle_masks(radii, param_size).to(images)  # (R, 1, h, w)
    p0 = class_score(blackbox(images), targets)
    p_ref = class_score(blackbox(apply(images.new_zeros(batch, 1, *size))), targets)
    goal = p_ref + 0.01 * (p0 - p_ref) if game == "delete" else p_ref + 0.99 * (p0 - p_ref)
    lo = torch.zeros(batch, dtype=torch.long)  # invariant: the answer lies in [lo, hi]
    hi = torch.full((batch,), steps - 1, dtype=torch.long)
    while bool((lo < hi).any()):
        mid = (lo + hi) // 2
        salient = upsample_mask(circles[mid.to(images.device)], size, settings.mask_sigma)
        p = class_score(blackbox(apply(keep_mask(salient, game))), targets)
        ok = ((p <= goal) if game == "delete" else (p >= goal)).cpu()
        active = lo < hi
        hi = torch.where(active & ok, mid, hi)
        lo = torch.where(active & ~ok, mid + 1, lo)
    return circles[lo.to(images.device)]


def meaningful_perturbation(
    model: BlackBox | torch.nn.Module,
    images: torch.Tensor,
    target: TargetSpec = None,
    game: str = "delete",
    perturbation: str | Perturbation | None = None,
    preset: str = "fong2017",
    iterations: int | None = None,
    lr: float | None = None,
    l1: float | None = None,
    tv: float | None = None,
    tv_beta: float | None = None,
    mask_scale: int | None = None,
    mask_sigma: float | None = None,
    jitter: int | None = None,
    score: str | None = None,
    alternate: str | None = None,
    harden: float | None = None,
    init: str = "circle",
    seed: int = 0,
    progress: bool = False,
    early_stop: bool | EarlyStop = True,
) -> Explanation:
    """Learn the smallest mask whose deletion destroys (or whose keeping preserves) the score.

    Args:
        model: a ``BlackBox`` or any ``nn.Module`` taking [0, 1] images (B, 3, H, W) to logits.
        images: (B, 3, H, W) in [0, 1]; the optimisation runs at this size.
        target: int, class name, per-sample list/tensor, ``"top1"`` or ``"topK"``, or a callable
            of the logits giving one score per image (``maskscope.target``); default from the
            preset (top1; top5 for ``fong2017-loc``).
        game: ``"delete"`` or ``"preserve"``.
        perturbation: ``blur`` (per-pixel σ0·(1−m)), ``fixed-blur``, ``constant`` or ``noise``
            (or an instance); default: the preset's.
        preset: ``fong2017`` (visualisation) or ``fong2017-loc`` (localisation); keyword
            arguments override single values.
        alternate, harden: masks that hold up under other operators and binarised (``Settings``):
            a second operator for every other iteration, and the final fraction of the iterations
            shown the mask binarised at 0.5.
        init: ``circle`` (the paper's 99 % rule) or ``uniform`` (0.5 everywhere).
        early_stop: on by default, an image stops once its loss has stopped improving
            (``optimise.EarlyStop``; ``Explanation.iterations_used`` says when): fewer passes at
            the fixed schedule's quality (``benchmarks/studies/early_stop.py`` measures both);
            ``False`` runs every image the paper's full schedule.

    Returns an ``Explanation`` with salient masks (1 = salient) on the images' device.
    """
    check_game(game)
    images = image_batch(images)
    settings = resolve_settings(
        preset,
        iterations=iterations,
        lr=lr,
        l1=l1,
        tv=tv,
        tv_beta=tv_beta,
        mask_scale=mask_scale,
        mask_sigma=mask_sigma,
        jitter=jitter,
        score=score,
        alternate=alternate,
        harden=harden,
    )
    blackbox = as_blackbox(model)
    blackbox.check_images(images)
    x = images.detach().to(device=blackbox.device, dtype=torch.float32)
    targets = resolve(blackbox, x, target, preset_target(preset))
    return optimise_smooth_masks(
        blackbox, images, targets, game, perturbation, settings, preset, init=init, seed=seed,
        progress=progress, early_stop=early_stop,
    )


def robust_term(data, blackbox, x: torch.Tensor, targets: Targets, game: str, settings: Settings):
    """The data term with ``settings.alternate`` (every odd iteration deletes with that operator
    instead) and ``settings.harden`` (the last fraction of the iterations sees the mask binarised
    at 0.5, its gradient passed straight through): a mask has to remove the evidence under both
    operators and as a region, not only as soft values under one operator."""
    if not settings.alternate and settings.harden <= 0:
        return data
    other = None
    if settings.alternate:
        pert = get_perturbation(settings.alternate)
        apply_all = pert.prepare(x)
        rows_of = subset_applier(pert, x, apply_all)
        other = game_term(blackbox, apply_all, x[:, :1], targets, game, settings.score, settings.relative)
    start = round(settings.iterations * (1.0 - settings.harden)) if settings.harden > 0 else None

    def term(shown: torch.Tensor, t: int, active: Active) -> torch.Tensor:
        if start is not None and t >= start:
            shown = shown + ((shown > 0.5).to(shown.dtype) - shown).detach()
        if other is not None and t % 2 == 1:
            return other(shown, t, Active(active.rows, rows_of(active.rows)))
        return data(shown, t, active)

    return term


def optimise_smooth_masks(
    model: BlackBox | torch.nn.Module,
    images: torch.Tensor,
    targets: Targets,
    game: str,
    perturbation: str | Perturbation | None,
    settings: Settings,
    preset: str = "custom",
    init: str = "circle",
    seed: int = 0,
    progress: bool = False,
    early_stop: bool | EarlyStop = False,
) -> Explanation:
    """``meaningful_perturbation`` with its targets and settings already resolved (crisp's stage
    one): ``targets`` are class indices (B, K) or a ``target.ScoreTarget`` (``target.resolve``).

    ``preset`` is only recorded in the explanation's parameters.
    """
    check_game(game)
    check_settings(settings)
    blackbox = as_blackbox(model)
    pert = get_perturbation(settings.perturbation if perturbation is None else perturbation)
    images = image_batch(images, check_values=False)  # the public entry points warn about values
    blackbox.check_images(images)
    device = blackbox.device
    x = images.detach().to(device=device, dtype=torch.float32)
    size = (x.shape[-2], x.shape[-1])
    settings = settings.for_size(size)
    param_size = (max(1, size[0] // settings.mask_scale), max(1, size[1] // settings.mask_scale))

    with blackbox.evaluating():
        targets = targets.to(device)
        apply = pert.prepare(x)
        if init == "circle":
            params = circle_init(blackbox, apply, x, targets, game, settings, param_size)
        elif init == "uniform":
            params = x.new_full((x.shape[0], 1, *param_size), 0.5)
        else:
            raise ConfigError(f"unknown init {init!r}; choose circle or uniform")

        def to_mask(p: torch.Tensor) -> torch.Tensor:
            return upsample_mask(p, size, settings.mask_sigma)

        def regulariser(s: torch.Tensor, p: torch.Tensor, _active) -> torch.Tensor:
            if settings.regularise == "mask":
                return settings.l1 * area(s) + settings.tv * total_variation(s, settings.tv_beta)
            # the grid's L1 is rescaled to 28×28 cells; its TV stays a plain sum (TV does not grow
            # with the number of cells the way an area does)
            return settings.l1 * area(p, REFERENCE_GRID) + settings.tv * total_variation(
                p, settings.tv_beta, None
            )

        rule = early_stop_rule(early_stop)
        data = game_term(blackbox, apply, x[:, :1], targets, game, settings.score, settings.relative)
        objective = Objective(to_mask, robust_term(data, blackbox, x, targets, game, settings), regulariser,
                              jitter=settings.jitter)
        schedule = Schedule(settings.iterations, settings.lr, early_stop=rule)
        params, history, used = optimise_masks(
            params, subset_applier(pert, x, apply), objective, schedule, seed=seed, progress=progress,
            desc="meaningful",
        )
        masks = to_mask(params)
        scores = final_scores(blackbox, apply, x, masks, targets)
    return build_explanation(
        blackbox,
        images,
        masks,
        targets,
        "meaningful",
        scores,
        history,
        {
            "game": game,
            "perturbation": pert.name,
            "preset": preset,
            "init": init,
            "seed": seed,
            **settings.__dict__,
            **early_stop_params(rule),
        },
        pert,
        used,
    )


