"""The shared mask-optimisation core: settings and presets, the two games, projected Adam on mask
parameters, and the final scores and ``Explanation`` every mask method returns.

Meaningful perturbation, crisp masks, extremal perturbations, the baselines and the real-time masker
all build on this module: a change to the loop or to how scores are reported reaches every method.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import torch
from tqdm.auto import tqdm

from ..blackbox import BlackBox, require_finite
from ..errors import ConfigError
from ..explanation import Explanation
from ..masks import jitter
from ..objectives import SCORES, class_score
from ..perturb import Applier, Blur, Perturbation, pixel_scale, seeded

GAMES = ("delete", "preserve")
# the most iterations a caller may ask for: the papers use 300 (+ 150); 20 000 is hours per batch on a CPU
MAX_ITERATIONS = 20_000


def scoring_perturbation() -> Perturbation:
    """What methods that optimise against no perturbation are scored with (see ``Explanation``)."""
    return Blur()


@dataclass(frozen=True)
class Settings:
    """Hyper-parameters of the iterative mask optimisation (paper §4, 'Implementation details').

    λ1 (``l1``) and λ2 (``tv``) weigh the plain L1 and TV(β) sums over the low-resolution mask
    that is optimised (28×28 for a 224×224 image; the L1 sum over other grid sizes is rescaled to
    28×28 cells, so λ1 means the same at any image size), as the paper's mask is that grid: read this
    way, λ1 = 1e-4 reproduces the paper's near-total deletion with small masks, while reading it as
    a per-pixel weight at 224×224 (``regularise="mask"``) makes the L1 term 64× stronger and the
    masks too small to delete the evidence. ``benchmarks/quality_demo.py`` measures both (its latest
    numbers are in the README), so no number here can go stale.
    ``mask_sigma`` and ``jitter`` are pixels at 224×224 and scale with min(H, W) / 224, as does
    the blur perturbation's σ0.

    ``perturbation`` is the operator the preset optimises against and ``relative`` divides the
    deletion score by the whole image's (p / p0). The default preset uses the authors' released
    operator, a fixed σ0 = 10 blur blended by the mask (``fixed-blur``), because the paper's
    per-pixel blur σ0·(1 − m) is so strong at small (1 − m) that a faint mask (peak ≈ 0.3) already
    destroys the score; such a mask deletes nothing once binarised or applied with another
    operator (§5.2's test). With the blend the drop is linear in the mask, so only a mask near 1
    removes the evidence. ``relative`` makes every image trade area against the same relative
    drop (the measure reported), instead of low-confidence images stopping at a weak deletion; λ1
    is then the paper's localisation value, 1e-3. ``benchmarks/faint_masks.py`` measures each
    candidate; the README has its latest table.
    """

    iterations: int = 300
    lr: float = 0.1
    l1: float = 1e-4
    tv: float = 1e-2
    tv_beta: float = 3.0
    mask_scale: int = 8
    mask_sigma: float = 5.0
    jitter: int = 4
    score: str = "prob"
    default_target: str = "top1"
    regularise: str = "params"
    relative: bool = False
    perturbation: str = "blur"

    def for_size(self, size: tuple[int, int]) -> Settings:
        """Settings with the pixel quantities scaled to an image of this size."""
        scale = pixel_scale(size)
        jitter = max(1, round(self.jitter * scale)) if self.jitter > 0 else 0
        return replace(self, mask_sigma=self.mask_sigma * scale, jitter=jitter)


PRESETS: dict[str, Settings] = {
    # the default: masks that hold up when deleted with another operator (see ``Settings``)
    "fong2017": Settings(perturbation="fixed-blur", relative=True, l1=1e-3),
    # the paper's recipe as written: per-pixel blur σ0·(1 − m), probability, λ1 = 1e-4. Faint masks:
    # a few pixels of blur already remove the texture evidence EfficientNet-Lite0 uses
    "fong2017-paper-blur": Settings(),
    # localisation (paper Table 1, ‡): λ1 = 1e-3, β = 2, minimise the sum of the top-5 classes
    "fong2017-loc": Settings(l1=1e-3, tv_beta=2.0, default_target="top5"),
}


def resolve_settings(preset: str, **overrides) -> Settings:
    if preset not in PRESETS:
        raise ConfigError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    return check_settings(replace(PRESETS[preset], **{k: v for k, v in overrides.items() if v is not None}))


def check_settings(settings: Settings) -> Settings:
    """The settings unchanged, or a ``ConfigError`` naming the first value out of range (a NaN, a
    fractional count or a zero grid step would otherwise surface as a TypeError or
    ZeroDivisionError deep in the loop, or as NaN masks)."""
    if settings.regularise not in ("mask", "params"):
        raise ConfigError(f"regularise must be 'mask' or 'params', got {settings.regularise!r}")
    if settings.score not in SCORES:
        raise ConfigError(f"unknown score {settings.score!r}; choose one of {', '.join(SCORES)}")
    whole_number("iterations", settings.iterations, 1, MAX_ITERATIONS)  # the one cap, however it came
    whole_number("mask_scale", settings.mask_scale, 1)
    whole_number("jitter", settings.jitter, 0)
    for name, low in (("lr", None), ("l1", 0.0), ("tv", 0.0), ("tv_beta", None), ("mask_sigma", 0.0)):
        value = getattr(settings, name)
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or (
            value <= 0 if low is None else value < low
        ):
            bound = "positive" if low is None else "at least 0"
            raise ConfigError(f"{name} must be a finite number, {bound}, got {value!r}")
    return settings


def whole_number(name: str, value, minimum: int, maximum: int | None = None) -> int:
    """``value`` when it is an integer from ``minimum`` to ``maximum`` (numpy ints too), else ConfigError."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or int(value) < minimum \
            or (maximum is not None and int(value) > maximum):
        top = "" if maximum is None else f" and at most {maximum}"
        raise ConfigError(f"{name} must be a whole number of at least {minimum}{top}, got {value!r}")
    return int(value)


def check_game(game: str) -> None:
    if game not in GAMES:
        raise ConfigError(f"unknown game {game!r}; choose delete or preserve")


def keep_mask(salient: torch.Tensor, game: str) -> torch.Tensor:
    """The paper's keep mask m from a salient mask: deletion perturbs what is salient."""
    return 1.0 - salient if game == "delete" else salient


def game_loss(
    scores: torch.Tensor, game: str, reference: torch.Tensor | None, relative: bool = False
) -> torch.Tensor:
    """Deletion minimises the class score. Preservation asks that the kept region alone keep the
    score of the whole image, f_c(Φ(x, m)) ≥ f_c(x) (paper §4.2), so only a shortfall below the
    original score costs (a hinge, relative to it for probabilities): rewarding scores *above* the
    original would let the mask grow to push the probability towards 1 instead of staying small.
    """
    if game == "delete" and not relative:
        return scores
    assert reference is not None, "preservation and relative scores need the whole image's score"
    if game == "delete":
        return scores / reference.clamp_min(1e-6)
    shortfall = torch.relu(reference - scores)
    return shortfall / reference.clamp_min(1e-6) if bool((reference > 0).all()) else shortfall


@dataclass(frozen=True)
class EarlyStop:
    """When an image leaves the batch: once its best loss has improved by less than ``tolerance``
    (relative) over the last ``window`` iterations, after at least ``min_iterations``. For a loss
    whose weights change over the run (``keep="last"``: extremal's growing penalty) losses from
    different iterations do not compare, so there the test is on the mask parameters instead: their
    mean absolute change over the window is below ``tolerance``.

    The iterations after that point barely move the result (the best loss is reported anyway), so
    stopping there keeps quality and saves passes; ``benchmarks/early_stop.py`` measures both.
    """

    window: int = 30
    tolerance: float = 2e-3
    min_iterations: int = 60

    def __post_init__(self) -> None:
        if self.window < 1 or self.min_iterations < 0 or not self.tolerance >= 0:
            raise ConfigError("early stopping needs window ≥ 1, min_iterations ≥ 0 and tolerance ≥ 0")


def early_stop_rule(early_stop: bool | dict | EarlyStop | None) -> EarlyStop | None:
    """``True`` → the default rule, ``False``/``None`` → the fixed schedule, a rule → itself, a dict
    → a rule with those fields changed (how ``--option meaningful.early_stop={"window": 50}`` reads)."""
    if isinstance(early_stop, EarlyStop):
        return early_stop
    if isinstance(early_stop, dict):
        unknown = set(early_stop) - {"window", "tolerance", "min_iterations"}
        if unknown:
            raise ConfigError(f"early_stop takes window, tolerance and min_iterations, not {sorted(unknown)}")
        return replace(EarlyStop(), **early_stop)
    return EarlyStop() if early_stop else None


def early_stop_params(rule: EarlyStop | None) -> dict[str, Any]:
    """The rule as the scalar entries of an ``Explanation``'s parameters (and its JSON)."""
    if rule is None:
        return {"early_stop": False}
    return {"early_stop": True, "early_stop_window": rule.window, "early_stop_tolerance": rule.tolerance,
            "early_stop_min_iterations": rule.min_iterations}


def subset_applier(pert: Perturbation, images: torch.Tensor,
                   apply: Applier) -> Callable[[torch.Tensor], Applier]:
    """``optimise_masks``'s ``prepare``: Φ of some of ``images`` (``apply`` is already all of them)."""
    return lambda rows: apply if len(rows) == images.shape[0] else pert.prepare(images[rows])


@dataclass
class Active:
    """The images still being optimised: their indices in the batch and their perturbation (the
    hooks of ``optimise_masks`` get this, so their per-image data follows the shrinking batch)."""

    rows: torch.Tensor
    apply: Callable[[torch.Tensor], torch.Tensor]


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
    blackbox: BlackBox,
    prepare: Callable[[torch.Tensor], Callable[[torch.Tensor], torch.Tensor]],
    targets: torch.Tensor,
    params: torch.Tensor,
    to_mask: Callable[[torch.Tensor], torch.Tensor],
    regulariser: Callable[[torch.Tensor, torch.Tensor, Active], torch.Tensor],
    game: str,
    settings: Settings,
    iterations: int,
    seed: int = 0,
    progress: bool | Callable[[int, int], None] = False,
    desc: str = "mask",
    *,
    optimiser: Callable[[list[torch.Tensor]], torch.optim.Optimizer] | None = None,
    regulariser_weight: Callable[[int], float] | None = None,
    data_term: Callable[[torch.Tensor, int, Active], torch.Tensor] | None = None,
    keep: str = "best",
    early_stop: EarlyStop | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Projected Adam on mask parameters in [0, 1]; returns (params, loss history (N, B),
    iterations used per image (B,)).

    ``prepare(rows)`` gives the perturbation Φ(x[rows], ·) of those images (``Active.apply``).

    The returned parameters are, per image, the iterate with the lowest loss seen, not the last
    one: a very confident classifier's softmax saturates, and once the mask shrinks past the
    point where the score jumps back to ~1 the score's gradient vanishes and the L1 term alone
    would drag the mask to zero. Keeping the best iterate returns the minimiser that was found.

    With ``early_stop`` an image that has converged (``EarlyStop``) leaves the batch: the forward
    and backward passes run on the remaining images only, and its history reads NaN from then on.
    Every image's decision depends on its own losses alone, and the jitter offset is drawn every
    iteration whoever is left, so an image's result does not depend on its batch-mates.

    Keyword-only hooks (extremal perturbations use them; their defaults are meaningful's loop):

    - ``optimiser``: builds the optimiser from the parameter list (default Adam at ``settings.lr``);
    - ``regulariser_weight(t)``: multiplies the regulariser at iteration t (a growing penalty);
    - ``data_term(shown, t, active)``: replaces the game's score term; gets the (jittered) salient
      mask of the active images and the iteration index, returns a loss per mask, and owns its
      own input jitter;
    - ``keep``: ``"best"`` (lowest loss seen) or ``"last"`` iterate. A loss whose weights change
      over the run cannot rank iterates from different iterations, so such a run keeps the last.

    ``progress`` is a tqdm bar when true, or a callable ``progress(done, total)`` called after every
    step (the explorer's job queue reports it and cancels a job by raising from it).
    """
    if keep not in ("best", "last"):
        raise ConfigError(f"keep must be 'best' or 'last', got {keep!r}")
    count = params.shape[0]
    rows = torch.arange(count, device=params.device)
    active = Active(rows, prepare(rows))
    reference = None  # the whole image's score: the preservation game's hinge point
    if (game == "preserve" or settings.relative) and data_term is None:
        with torch.no_grad():
            reference = class_score(
                blackbox(active.apply(torch.ones_like(to_mask(params)))), targets, settings.score
            )
    params = params.detach().clone().requires_grad_(True)
    opt = torch.optim.Adam([params], lr=settings.lr) if optimiser is None else optimiser([params])
    gen = seeded(seed)
    history = torch.full((iterations, count), float("nan"), device=params.device)
    used = torch.zeros(count, dtype=torch.long)
    result = params.detach().clone()  # best (or, once stopped, last) iterate of every image
    best_loss = torch.full((count,), float("inf"), device=params.device)
    trace: list[torch.Tensor] = []  # what the stopping test compares, one entry per iteration
    report = progress if callable(progress) else None
    for t in tqdm(range(iterations), desc=desc, disable=report is not None or not progress, leave=False):
        salient = to_mask(params)
        if settings.jitter > 0:
            dy, dx = torch.randint(0, settings.jitter, (2,), generator=gen).tolist()
            shown = jitter(salient, dy, dx)
        else:
            shown = salient
        if data_term is None:
            logits = blackbox(active.apply(keep_mask(shown, game)))
            ref = None if reference is None else reference[active.rows]
            scores = class_score(logits, targets[active.rows], settings.score)
            data = game_loss(scores, game, ref, settings.relative)
        else:
            data = data_term(shown, t, active)
        penalty = regulariser(salient, params, active)
        if regulariser_weight is not None:
            penalty = regulariser_weight(t) * penalty
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
        if early_stop is None:
            continue
        done = _converged(early_stop, trace, t, best_loss if keep == "best" else result, active.rows)
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


def _converged(rule: EarlyStop, trace: list[torch.Tensor], t: int, watched: torch.Tensor,
               rows: torch.Tensor) -> torch.Tensor:
    """Which of the active ``rows`` meet ``rule`` after iteration t; ``watched`` is the best loss
    per image (B,) or the kept parameters (B, …), of which ``trace`` keeps the last window."""
    trace.append(watched.detach().clone())
    if len(trace) > rule.window + 1:
        trace.pop(0)
    if t + 1 < max(rule.min_iterations, rule.window + 1):
        return torch.zeros(len(rows), dtype=torch.bool, device=rows.device)
    now, then = trace[-1][rows], trace[0][rows]
    if watched.dim() == 1:  # best loss: relative improvement over the window
        return (then - now) <= rule.tolerance * then.abs()
    return (now - then).abs().flatten(1).mean(1) <= rule.tolerance


@torch.no_grad()
def final_scores(blackbox, apply, images, masks, targets) -> dict[str, torch.Tensor]:
    """Target probability on the image, with the salient region deleted, and with it alone kept."""
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
    targets,
    method,
    scores,
    history,
    params,
    perturbation: Perturbation | None = None,
    iterations_used: torch.Tensor | None = None,
) -> Explanation:
    """Package a method's result; ``perturbation`` is what ``scores`` were measured with (the rule:
    ``Explanation``'s docstring)."""
    out = images.device
    return Explanation(
        masks=masks.detach().to(out),
        images=images.detach(),
        targets=targets.cpu(),
        class_names=[blackbox.class_name(int(t)) for t in targets[:, 0]],
        method=method,
        p_original=scores["p_original"].cpu(),
        p_deleted=scores["p_deleted"].cpu(),
        p_preserved=scores["p_preserved"].cpu(),
        history=history,
        params=params,
        perturbation=perturbation,
        iterations_used=iterations_used,
    )
