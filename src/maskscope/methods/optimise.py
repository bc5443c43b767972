"""The shared mask-optimisation core: an ``Objective`` (what is minimised) and a ``Schedule`` (how
long and with what optimiser), projected onto [0, 1], and the final scores and ``Explanation``
every mask method returns.

Meaningful perturbation, crisp masks, extremal perturbations, the baselines and the real-time
masker all build on this module, so a change to the loop or to how scores are reported reaches
every method at once. Meaningful's settings and presets live in ``methods.settings``, the games in
``objectives``, the stopping rule in ``methods.early_stop``; they are importable from here too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from ..blackbox import require_finite
from ..errors import ConfigError
from ..explanation import Explanation
from ..masks import jitter
from ..objectives import GAMES, check_game, class_score, game_loss, keep_mask
from ..perturb import Applier, Blur, Perturbation, seeded
from ..target import ScoreTarget
from .early_stop import EarlyStop, converged, early_stop_params, early_stop_rule
from .settings import MAX_ITERATIONS, PRESETS, Settings, check_settings, resolve_settings, whole_number

__all__ = [
    "GAMES", "MAX_ITERATIONS", "PRESETS", "Active", "EarlyStop", "Objective", "Schedule", "Settings",
    "build_explanation",
    "check_game", "check_settings", "early_stop_params", "early_stop_rule", "final_scores", "game_loss",
    "keep_mask", "optimise_masks", "resolve_settings", "scoring_perturbation", "subset_applier",
    "whole_number",
]

Targets = torch.Tensor | ScoreTarget  # resolved targets: class indices (B, K) or a callable's


def scoring_perturbation() -> Perturbation:
    """What methods that optimise against no perturbation are scored with (see ``Explanation``)."""
    return Blur()


@dataclass
class Active:
    """The images still being optimised: their indices in the batch and their perturbation (the
    terms of an ``Objective`` get this, so their per-image data follows the shrinking batch)."""

    rows: torch.Tensor
    apply: Callable[[torch.Tensor], torch.Tensor]


def subset_applier(pert: Perturbation, images: torch.Tensor,
                   apply: Applier) -> Callable[[torch.Tensor], Applier]:
    """``optimise_masks``'s ``prepare``: Φ of some of ``images`` (``apply`` is already all of them)."""
    return lambda rows: apply if len(rows) == images.shape[0] else pert.prepare(images[rows])


@dataclass(frozen=True)
class Objective:
    """The loss per image: ``data(shown, t, active) + weight(t) · regulariser(mask, params, active)``.

    - ``to_mask``: the mask parametrisation, parameters in [0, 1] → salient masks (N, 1, H, W);
    - ``data``: the score term, given the salient mask the model is shown (shifted by a random
      offset of up to ``jitter`` px each iteration, the same for the whole batch) and the iteration;
    - ``regulariser``: the mask's penalty, given the unshifted mask and the parameters;
    - ``weight``: the regulariser's weight at iteration t (a growing penalty); ``None`` is 1.
    """

    to_mask: Callable[[torch.Tensor], torch.Tensor]
    data: Callable[[torch.Tensor, int, Active], torch.Tensor]
    regulariser: Callable[[torch.Tensor, torch.Tensor, Active], torch.Tensor]
    weight: Callable[[int], float] | None = None
    jitter: int = 0


@dataclass(frozen=True)
class Schedule:
    """How the objective is minimised: ``iterations`` steps of Adam at ``lr`` (or of ``optimiser``,
    built from the parameter list), keeping each image's ``best`` (lowest loss) or ``last`` iterate,
    with per-image ``early_stop`` (``EarlyStop``) or the fixed schedule (``None``).

    A loss whose weights change over the run cannot rank iterates from different iterations, so
    such a run keeps the last.
    """

    iterations: int
    lr: float = 0.1
    optimiser: Callable[[list[torch.Tensor]], torch.optim.Optimizer] | None = None
    keep: str = "best"
    early_stop: EarlyStop | None = None

    def __post_init__(self) -> None:
        whole_number("iterations", self.iterations, 1)
        if self.keep not in ("best", "last"):
            raise ConfigError(f"keep must be 'best' or 'last', got {self.keep!r}")

    def make_optimiser(self, params: torch.Tensor) -> torch.optim.Optimizer:
        return torch.optim.Adam([params], lr=self.lr) if self.optimiser is None else self.optimiser([params])


def _shrink_optimiser(opt: torch.optim.Optimizer, old: torch.Tensor, new: torch.Tensor,
                      keep: torch.Tensor) -> None:
    """Move the optimiser onto ``new`` = ``old[keep]``: every per-element state (Adam's moments,
    SGD's momentum) keeps the rows that stay, so the remaining images continue exactly as before."""
    state = opt.state.pop(old, {})
    opt.state[new] = {
        k: v[keep] if torch.is_tensor(v) and v.dim() and v.shape[0] == old.shape[0] else v
        for k, v in state.items()
    }
    opt.param_groups[0]["params"] = [new]


def optimise_masks(
    params: torch.Tensor,
    prepare: Callable[[torch.Tensor], Callable[[torch.Tensor], torch.Tensor]],
    objective: Objective,
    schedule: Schedule,
    seed: int = 0,
    progress: bool | Callable[[int, int], None] = False,
    desc: str = "mask",
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Projected descent on mask parameters in [0, 1]; returns (params, loss history (N, B),
    iterations used per image (B,)).

    ``prepare(rows)`` gives the perturbation Φ(x[rows], ·) of those images (``Active.apply``).

    With ``keep="best"`` the returned parameters are, per image, the iterate with the lowest loss
    seen, not the last one: a very confident classifier's softmax saturates, and once the mask
    shrinks past the point where the score jumps back to ~1 the score's gradient vanishes and the
    L1 term alone would drag the mask to zero. Keeping the best iterate returns the minimiser found.

    With early stopping an image that has converged leaves the batch: the forward and backward
    passes run on the remaining images only, and its history reads NaN from then on. Every image's
    decision depends on its own losses alone, and the jitter offset is drawn every iteration
    whoever is left, so an image's result does not depend on its batch-mates.

    ``progress`` is a tqdm bar when true, or a callable ``progress(done, total)`` called after every
    step (the explorer's job queue reports it and cancels a job by raising from it).
    """
    iterations, keep, rule = schedule.iterations, schedule.keep, schedule.early_stop
    count = params.shape[0]
    rows = torch.arange(count, device=params.device)
    active = Active(rows, prepare(rows))
    params = params.detach().clone().requires_grad_(True)
    opt = schedule.make_optimiser(params)
    gen = seeded(seed)
    history = torch.full((iterations, count), float("nan"), device=params.device)
    used = torch.zeros(count, dtype=torch.long)
    result = params.detach().clone()  # best (or, once stopped, last) iterate of every image
    best_loss = torch.full((count,), float("inf"), device=params.device)
    trace: list[torch.Tensor] = []  # what the stopping test compares, one entry per iteration
    report = progress if callable(progress) else None
    for t in tqdm(range(iterations), desc=desc, disable=report is not None or not progress, leave=False):
        salient = objective.to_mask(params)
        if objective.jitter > 0:
            dy, dx = torch.randint(0, objective.jitter, (2,), generator=gen).tolist()
            shown = jitter(salient, dy, dx)
        else:
            shown = salient
        data = objective.data(shown, t, active)
        penalty = objective.regulariser(salient, params, active)
        if objective.weight is not None:
            penalty = objective.weight(t) * penalty
        loss = penalty + data
        with torch.no_grad():
            history[t, active.rows] = loss.detach()
            used[active.rows.cpu()] += 1
            if keep == "best":
                better = loss < best_loss[active.rows]
                best_loss[active.rows[better]] = loss[better]
                result[active.rows[better]] = params[better]
        (grad,) = torch.autograd.grad(loss.sum(), params)
        params.grad = grad
        opt.step()
        with torch.no_grad():
            params.clamp_(0, 1)
            if keep == "last":
                result[active.rows] = params
        if report is not None:
            report(t + 1, iterations)
        if rule is None:
            continue
        done = converged(rule, trace, t, best_loss if keep == "best" else result, active.rows)
        if bool(done.any()):
            stay = (~done).nonzero()[:, 0]
            if len(stay) == 0:
                break
            smaller = params.detach()[stay].clone().requires_grad_(True)
            _shrink_optimiser(opt, params, smaller, stay)
            params = smaller
            rows = active.rows[stay]
            active = Active(rows, prepare(rows))
    return result, history.cpu(), used


def game_term(blackbox, apply: Applier, masks_like: torch.Tensor, targets: Targets, game: str,
              score: str, relative: bool) -> Callable[[torch.Tensor, int, Active], torch.Tensor]:
    """Meaningful perturbation's (and crisp's) data term: the game's loss of the target's ``score``
    on the perturbed image. Preservation and relative scores compare with the whole image's score,
    measured here once (``masks_like`` gives the shape of a mask of ones)."""
    reference = None  # the whole image's score: the preservation game's hinge point
    if game == "preserve" or relative:
        with torch.no_grad():
            reference = class_score(blackbox(apply(torch.ones_like(masks_like))), targets, score)

    def data(shown: torch.Tensor, _t: int, active: Active) -> torch.Tensor:
        logits = blackbox(active.apply(keep_mask(shown, game)))
        ref = None if reference is None else reference[active.rows]
        return game_loss(class_score(logits, targets[active.rows], score), game, ref, relative)

    return data


@torch.no_grad()
def final_scores(blackbox, apply, images, masks, targets: Targets) -> dict[str, torch.Tensor]:
    """Target probability (a callable target: its score) on the image, with the salient region
    deleted, and with it alone kept."""
    require_finite(masks, "the masks hold")  # before the model sees them: name the real cause

    def prob(x: torch.Tensor) -> torch.Tensor:
        return class_score(blackbox(x), targets, "prob")
    return {
        "p_original": prob(images),
        "p_deleted": prob(apply(1.0 - masks)),
        "p_preserved": prob(apply(masks)),
    }


def build_explanation(
    blackbox,
    images,
    masks,
    targets: Targets,
    method,
    scores,
    history,
    params,
    perturbation: Perturbation | None = None,
    iterations_used: torch.Tensor | None = None,
) -> Explanation:
    """Package a method's result; ``perturbation`` is what ``scores`` were measured with (the rule:
    ``Explanation``'s docstring). A callable target is recorded as class −1, named after it."""
    out = images.device
    if isinstance(targets, ScoreTarget):
        names = [targets.name] * len(targets)
        indices = torch.full((len(targets), 1), -1, dtype=torch.long)
    else:
        names = [blackbox.class_name(int(t)) for t in targets[:, 0]]
        indices = targets.cpu()
    return Explanation(
        masks=masks.detach().to(out),
        images=images.detach(),
        targets=indices,
        class_names=names,
        method=method,
        p_original=scores["p_original"].cpu(),
        p_deleted=scores["p_deleted"].cpu(),
        p_preserved=scores["p_preserved"].cpu(),
        history=history,
        params=params,
        perturbation=perturbation,
        iterations_used=iterations_used,
    )
