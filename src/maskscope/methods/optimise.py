"""The shared mask-optimisation core: settings and presets, the two games, projected Adam on mask
parameters, and the final scores and ``Explanation`` every mask method returns.

Meaningful perturbation, crisp masks, extremal perturbations, the baselines and the real-time
masker all build on this module, so a change to the loop or to how scores are reported reaches
every method at once.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass, replace

import torch
from tqdm.auto import tqdm

from ..blackbox import BlackBox
from ..errors import ConfigError
from ..explanation import Explanation
from ..masks import jitter
from ..objectives import SCORES, class_score
from ..perturb import Blur, Perturbation, pixel_scale

GAMES = ("delete", "preserve")


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
    whole_number("iterations", settings.iterations, 1)
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


def whole_number(name: str, value, minimum: int) -> int:
    """``value`` when it is an integer ≥ ``minimum`` (numpy ints too), else a ConfigError."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ConfigError(f"{name} must be a whole number of at least {minimum}, got {value!r}")
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
    if game == "delete":
        return scores / reference.clamp_min(1e-6) if relative else scores
    shortfall = torch.relu(reference - scores)
    return shortfall / reference.clamp_min(1e-6) if bool((reference > 0).all()) else shortfall


def optimise_masks(
    blackbox: BlackBox,
    apply: Callable[[torch.Tensor], torch.Tensor],
    targets: torch.Tensor,
    params: torch.Tensor,
    to_mask: Callable[[torch.Tensor], torch.Tensor],
    regulariser: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    game: str,
    settings: Settings,
    iterations: int,
    seed: int = 0,
    progress: bool | Callable[[int, int], None] = False,
    desc: str = "mask",
    *,
    optimiser: Callable[[list[torch.Tensor]], torch.optim.Optimizer] | None = None,
    regulariser_weight: Callable[[int], float] | None = None,
    data_term: Callable[[torch.Tensor, int], torch.Tensor] | None = None,
    keep: str = "best",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Projected Adam on mask parameters in [0, 1]; returns (params, loss history (N, B)).

    The returned parameters are, per image, the iterate with the lowest loss seen, not the last
    one: a very confident classifier's softmax saturates, and once the mask shrinks past the
    point where the score jumps back to ~1 the score's gradient vanishes and the L1 term alone
    would drag the mask to zero. Keeping the best iterate returns the minimiser that was found.

    Keyword-only hooks (extremal perturbations use them; their defaults are meaningful's loop):

    - ``optimiser``: builds the optimiser from the parameter list (default Adam at ``settings.lr``);
    - ``regulariser_weight(t)``: multiplies the regulariser at iteration t (a growing penalty);
    - ``data_term(shown, t)``: replaces the game's score term; gets the (jittered) salient mask
      and the iteration index, returns a loss per mask (B,), and owns its own input jitter;
    - ``keep``: ``"best"`` (lowest loss seen) or ``"last"`` iterate. A loss whose weights change
      over the run cannot rank iterates from different iterations, so such a run keeps the last.

    ``progress`` is a tqdm bar when true, or a callable ``progress(done, total)`` called after every
    step (the explorer's job queue reports it and cancels a job by raising from it).
    """
    if keep not in ("best", "last"):
        raise ConfigError(f"keep must be 'best' or 'last', got {keep!r}")
    reference = None  # the whole image's score: the preservation game's hinge point
    if (game == "preserve" or settings.relative) and data_term is None:
        with torch.no_grad():
            reference = class_score(
                blackbox(apply(torch.ones_like(to_mask(params)))), targets, settings.score
            )
    params = params.detach().clone().requires_grad_(True)
    opt = torch.optim.Adam([params], lr=settings.lr) if optimiser is None else optimiser([params])
    gen = torch.Generator(device="cpu").manual_seed(seed)
    history = []
    best = params.detach().clone()
    best_loss = torch.full((params.shape[0],), float("inf"), device=params.device)
    report = progress if callable(progress) else None
    for t in tqdm(range(iterations), desc=desc, disable=report is not None or not progress, leave=False):
        salient = to_mask(params)
        if settings.jitter > 0:
            dy, dx = torch.randint(0, settings.jitter, (2,), generator=gen).tolist()
            shown = jitter(salient, dy, dx)
        else:
            shown = salient
        if data_term is None:
            logits = blackbox(apply(keep_mask(shown, game)))
            data = game_loss(class_score(logits, targets, settings.score), game, reference, settings.relative)
        else:
            data = data_term(shown, t)
        penalty = regulariser(salient, params)
        if regulariser_weight is not None:
            penalty = regulariser_weight(t) * penalty
        loss = penalty + data
        if keep == "best":
            with torch.no_grad():
                better = loss < best_loss
                best_loss = torch.where(better, loss, best_loss)
                best[better] = params[better]
        (grad,) = torch.autograd.grad(loss.sum(), params)
        params.grad = grad
        opt.step()
        with torch.no_grad():
            params.clamp_(0, 1)
        history.append(loss.detach())
        if report is not None:
            report(t + 1, iterations)
    return (best if keep == "best" else params.detach()), torch.stack(history).cpu()


@torch.no_grad()
def final_scores(blackbox, apply, images, masks, targets) -> dict[str, torch.Tensor]:
    """Target probability on the image, with the salient region deleted, and with it alone kept."""

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
    )
