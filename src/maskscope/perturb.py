"""Perturbation operators Φ(x, m) of Fong & Vedaldi (2017), shared by every method and metric.

Convention here is the paper's: ``m`` is a *keep* mask, m = 1 leaves the pixel untouched and
m = 0 applies the full perturbation. (Explanations store *salient* masks; see ``explanation.py``.)

Each operator first ``prepare``s the images (the blur pyramid is computed once per optimisation,
not once per iteration) and then applies cheaply to any number of masks.

Pixel quantities (the blur σ0 = 10 here, the mask blur and jitter of meaningful perturbation, the
occlusion window) are the papers' values for 224×224 inputs and scale with the image's short side
(``pixel_scale``): a 10-px blur wipes out a 64-px scene's textures at a tenth of its strength, so an
unscaled σ0 lets a faint, spread-out mask delete what should take a strong, compact one.
"""

from __future__ import annotations

import math
import numbers
from abc import ABC, abstractmethod
from collections.abc import Callable

import torch
import torch.nn.functional as F

from .errors import ConfigError


def seeded(seed) -> torch.Generator:
    """A CPU generator from ``seed``, an integer torch's generator takes (−2**63 to 2**64 − 1); any
    other is a ConfigError rather than torch's overflow RuntimeError."""
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or not -(2**63) <= int(seed) < 2**64:
        raise ConfigError(f"seed must be an integer from -2**63 to 2**64 - 1, got {seed!r}")
    return torch.Generator(device="cpu").manual_seed(int(seed))

Applier = Callable[[torch.Tensor], torch.Tensor]

REFERENCE_SIZE = 224  # the input size the papers' pixel quantities are given for


def pixel_scale(size: tuple[int, ...]) -> float:
    """How much a 224-px quantity grows for an image of this (…, H, W) size: min(H, W) / 224."""
    return min(size[-2:]) / REFERENCE_SIZE


def gaussian_kernel1d(sigma: float, device=None, dtype=torch.float32) -> torch.Tensor:
    radius = max(1, int(math.ceil(3.0 * sigma)))
    x = torch.arange(-radius, radius + 1, device=device, dtype=dtype)
    k = torch.exp(-0.5 * (x / sigma) ** 2)
    return k / k.sum()


def gaussian_blur(images: torch.Tensor, sigma: float, padding: str = "replicate") -> torch.Tensor:
    """Separable Gaussian blur of a (B, C, H, W) tensor (differentiable). ``padding``:
    ``replicate`` (images: the border colour continues) or ``zeros`` (masks: nothing outside)."""
    if padding not in ("replicate", "zeros"):
        raise ConfigError(f"padding must be 'replicate' or 'zeros', got {padding!r}")
    if sigma <= 0:
        return images
    k = gaussian_kernel1d(sigma, images.device, images.dtype)
    r = k.numel() // 2
    c = images.shape[1]
    mode = "replicate" if padding == "replicate" else "constant"
    x = F.pad(images, (r, r, 0, 0), mode=mode)
    x = F.conv2d(x, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    x = F.pad(x, (0, 0, r, r), mode=mode)
    return F.conv2d(x, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def blend(images: torch.Tensor, fill: torch.Tensor) -> Applier:
    """m ↦ x·m + fill·(1 − m), computed as fill + (x − fill)·m: one fused op per call (the
    difference is taken once per ``prepare``), not four, forward and backward."""
    diff = images - fill
    fill = fill.expand_as(images)
    return lambda masks: torch.addcmul(fill, diff, masks)


class Perturbation(ABC):
    """Φ(x, m): ``prepare(x)`` returns a function of the keep-mask m (B, 1, H, W) in [0, 1]."""

    name = "perturbation"

    @abstractmethod
    def prepare(self, images: torch.Tensor) -> Applier: ...

    def __call__(self, images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        return self.prepare(images)(masks)

    def reference(self, images: torch.Tensor) -> torch.Tensor:
        """The fully perturbed image Φ(x, 0)."""
        return self(images, images.new_zeros(images.shape[0], 1, *images.shape[-2:]))


class Blur(Perturbation):
    """Per-pixel Gaussian blur of strength σ(u) = σ0·(1 − m(u)) (the paper's definition).

    ``sigma0`` is in pixels at 224×224 and scales with the image (``pixel_scale``). Implemented as
    a pyramid of ``levels`` copies blurred with σ evenly spaced in [0, σ0]; each pixel blends
    linearly between the two copies that bracket its σ, so the result is continuous (and
    differentiable) in m.
    """

    name = "blur"

    def __init__(self, sigma0: float = 10.0, levels: int = 9) -> None:
        if sigma0 <= 0 or levels < 2:
            raise ConfigError("blur needs sigma0 > 0 and at least 2 pyramid levels")
        self.sigma0 = float(sigma0)
        self.levels = int(levels)

    def sigmas(self, size: tuple[int, ...]) -> list[float]:
        """The pyramid's blur levels, in pixels, for images of this size."""
        top = self.sigma0 * pixel_scale(size)
        return [top * i / (self.levels - 1) for i in range(self.levels)]

    def prepare(self, images: torch.Tensor) -> Applier:
        pyramid = [gaussian_blur(images, s) for s in self.sigmas(images.shape)]
        top = self.levels - 1

        def apply(masks: torch.Tensor) -> torch.Tensor:
            # fractional pyramid level per pixel; the "hat" weight max(0, 1 − |position − l|) is
            # the linear blend between the two bracketing levels, without any gather
            position = (1.0 - masks.clamp(0, 1)) * top  # (B, 1, H, W)
            out = torch.zeros_like(images)
            for level, blurred in enumerate(pyramid):
                weight = torch.relu(1.0 - (position - level).abs())
                out = out + weight * blurred
            return out

        return apply


class FixedBlur(Perturbation):
    """x·m + blur_σ0(x)·(1 − m): one fixed blur blended in (what Fong's released code did).
    ``sigma0`` is in pixels at 224×224, like ``Blur``'s."""

    name = "fixed-blur"

    def __init__(self, sigma0: float = 10.0) -> None:
        self.sigma0 = float(sigma0)

    def prepare(self, images: torch.Tensor) -> Applier:
        blurred = gaussian_blur(images, self.sigma0 * pixel_scale(images.shape))
        return blend(images, blurred)


class Constant(Perturbation):
    """x·m + µ0·(1 − m) with µ0 each image's mean colour (or a fixed ``color``)."""

    name = "constant"

    def __init__(self, color: tuple[float, float, float] | None = None) -> None:
        self.color = color

    def prepare(self, images: torch.Tensor) -> Applier:
        if self.color is None:
            fill = images.mean(dim=(2, 3), keepdim=True)
        else:
            fill = torch.tensor(self.color, device=images.device, dtype=images.dtype).view(1, -1, 1, 1)
        return blend(images, fill)


class Noise(Perturbation):
    """x·m + η·(1 − m), η i.i.d. Gaussian around the mean colour (std ``std``), clamped to [0, 1].

    The noise field is drawn once per ``prepare`` from a generator seeded with ``seed``; every image
    gets the same field, so results do not depend on how images are batched.
    """

    name = "noise"

    def __init__(self, std: float = 0.2, seed: int = 0) -> None:
        self.std = float(std)
        self.seed = int(seed)

    def prepare(self, images: torch.Tensor) -> Applier:
        gen = seeded(self.seed)
        eta = torch.randn(images.shape[1:], generator=gen).to(images).unsqueeze(0) * self.std + images.mean(
            dim=(2, 3), keepdim=True
        )
        eta = eta.clamp(0, 1)
        return blend(images, eta)


PERTURBATIONS: dict[str, type[Perturbation]] = {
    "blur": Blur,
    "fixed-blur": FixedBlur,
    "constant": Constant,
    "noise": Noise,
}


def get_perturbation(spec: str | Perturbation, **kwargs) -> Perturbation:
    """Perturbation by name (blur, fixed-blur, constant, noise) or pass an instance through."""
    if isinstance(spec, Perturbation):
        return spec
    try:
        cls = PERTURBATIONS[spec]
    except KeyError:
        raise ConfigError(
            f"unknown perturbation {spec!r}; choose one of {', '.join(PERTURBATIONS)}"
        ) from None
    return cls(**kwargs)


def named_operator(name: str, sigma0: float, levels: int = 8) -> Perturbation:
    """The perturbation ``name`` with the blur's σ0 (and the pyramid's levels) where it has them:
    what a method's recorded ``perturbation`` / ``blur_sigma`` / ``blur_levels`` stand for."""
    if name == "blur":
        return Blur(sigma0=sigma0, levels=levels)
    if name == "fixed-blur":
        return FixedBlur(sigma0=sigma0)
    return get_perturbation(name)


FILLS = ("zero", "mean", "blur")


def fill_perturbation(kind: str, sigma0: float = 10.0, what: str = "fill") -> Perturbation:
    """The binary fills of occlusion and of the deletion/insertion curves as perturbations, so that
    their fully perturbed image is ``fill_perturbation(kind).reference(x)`` like every method's:
    ``zero`` (black), ``mean`` (each image's mean colour), ``blur`` (``FixedBlur(sigma0)``)."""
    if kind == "zero":
        return Constant(color=(0.0, 0.0, 0.0))
    if kind == "mean":
        return Constant()
    if kind == "blur":
        return FixedBlur(sigma0)
    raise ConfigError(f"unknown {what} {kind!r}; choose one of {', '.join(FILLS)}")
