"""The smooth-max mask family of extremal perturbations: smooth masks that can be flat at 1.

Parameters on a coarse grid each spread to nearby pixels with a radial Gaussian and are combined by
a smooth maximum. The two autograd functions evaluate it as one op each, recomputing their large
intermediates in the backward pass rather than storing them. ``docs/methods/extremal.md`` has the
measurements behind the default form.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..errors import ConfigError
from ..perturb import pixel_scale

MASK_FORMS = ("normalised", "paper")


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
