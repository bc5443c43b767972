"""Meaningful perturbation's settings and presets (crisp's stage one uses them too).

A preset is a frozen ``Settings``; keyword arguments of the methods override single values, and
``check_settings`` refuses a value out of range with one line before the loop starts.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, replace

from ..errors import ConfigError
from ..objectives import SCORES
from ..perturb import PERTURBATIONS, pixel_scale

# the most iterations a caller may ask for: the papers use 300 (+ 150); 20 000 is hours per batch on a CPU
MAX_ITERATIONS = 20_000


@dataclass(frozen=True)
class Settings:
    """Hyper-parameters of the iterative mask optimisation (paper §4, 'Implementation details').

    λ1 (``l1``) and λ2 (``tv``) weigh the plain L1 and TV(β) sums over the low-resolution mask
    that is optimised (28×28 for a 224×224 image; the L1 sum over other grid sizes is rescaled to
    28×28 cells, so λ1 means the same at any image size), as the paper's mask is that grid: read this
    way, λ1 = 1e-4 reproduces the paper's near-total deletion with small masks, while reading it as
    a per-pixel weight at 224×224 (``regularise="mask"``) makes the L1 term 64× stronger and the
    masks too small to delete the evidence. ``benchmarks/quality/quality_demo.py`` measures both (its latest
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
    is then the paper's localisation value, 1e-3. ``benchmarks/studies/faint_masks.py`` measures each
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
    regularise: str = "params"
    relative: bool = False
    perturbation: str = "blur"
    # masks that hold up (docs/results/holdup.md): every other iteration deletes with this
    # second operator instead ("" for none), and the last ``harden`` fraction of the iterations
    # shows the model the mask binarised at 0.5 (its gradient passed straight through)
    alternate: str = ""
    harden: float = 0.0

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
    "fong2017-loc": Settings(l1=1e-3, tv_beta=2.0),
}
# the target a preset explains when none is given (the paper's localisation sums the top 5)
PRESET_TARGETS: dict[str, str] = {"fong2017-loc": "top5"}


def preset_target(preset: str) -> str:
    """The target ``preset`` explains when the caller gives none."""
    return PRESET_TARGETS.get(preset, "top1")


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
    if settings.alternate and settings.alternate not in PERTURBATIONS:
        raise ConfigError(f"unknown alternate perturbation {settings.alternate!r}; choose one of "
                          f"{', '.join(PERTURBATIONS)} or none")
    if isinstance(settings.harden, bool) or not isinstance(settings.harden, numbers.Real) \
            or not 0.0 <= settings.harden <= 1.0:
        raise ConfigError(f"harden is the fraction of the iterations shown a binary mask, in [0, 1], "
                          f"got {settings.harden!r}")
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
