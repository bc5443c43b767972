"""Mask parametrisation (low resolution → upsample → smooth), jitter, initialisation, resizing, and
merging the several area masks of an image into one."""

from __future__ import annotations

import math
from typing import Protocol

import torch
import torch.nn.functional as F

from .errors import ConfigError
from .perturb import gaussian_blur, pixel_scale


def upsample_mask(params: torch.Tensor, size: tuple[int, int], sigma: float = 5.0) -> torch.Tensor:
    """Low-resolution mask parameters (B, 1, h, w) → smooth mask (B, 1, H, W) in [0, 1].

    Bilinear upsampling to ``size`` followed by a Gaussian of std ``sigma`` pixels keeps the mask
    too regular to co-adapt with the classifier's artefacts (Fong & Vedaldi §4.3).

    Both steps are linear and separable, so the mask is A_H · p · A_Wᵀ with two small matrices
    (``smoothing_matrix``): the same values as interpolating then blurring, at a fraction of the
    cost, forward and backward (a full-resolution blur is a noticeable share of an iteration of
    meaningful perturbation; ``benchmarks/speed/speed_meaningful.py --breakdown`` measures it).
    """
    h, w = params.shape[-2:]
    rows = smoothing_matrix(h, size[0], sigma, params.device, params.dtype)
    cols = smoothing_matrix(w, size[1], sigma, params.device, params.dtype)
    return (rows @ params @ cols.T).clamp(0, 1)


_MATRICES: dict[tuple, torch.Tensor] = {}


def smoothing_matrix(n: int, size: int, sigma: float, device=None, dtype=torch.float32) -> torch.Tensor:
    """(size, n): bilinear interpolation from n to ``size`` samples (align_corners=False), then a
    Gaussian of std ``sigma`` with replicated edges, as one linear map along one axis. Built by
    sending the identity through ``F.interpolate`` and ``gaussian_blur`` themselves, so it is those
    operations exactly; cached per (n, size, σ, device, dtype)."""
    key = (n, size, float(sigma), str(device), dtype)
    if key not in _MATRICES:
        basis = torch.eye(n, dtype=torch.float64).view(n, 1, n, 1)
        m = basis if n == size else F.interpolate(basis, size=(size, 1), mode="bilinear", align_corners=False)
        if sigma > 0:  # along a width of 1 the replicated blur leaves values unchanged
            m = gaussian_blur(m, sigma)
        _MATRICES[key] = m.view(n, size).T.contiguous().to(device=device, dtype=dtype)
    return _MATRICES[key]


def jitter(masks: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """Shift masks by (dy, dx) pixels, replicating the border (the paper's random jitter τ)."""
    if dy == 0 and dx == 0:
        return masks
    h, w = masks.shape[-2:]
    pad = max(abs(dy), abs(dx))
    padded = F.pad(masks, (pad, pad, pad, pad), mode="replicate")
    return padded[..., pad - dy : pad - dy + h, pad - dx : pad - dx + w]


def circle_masks(radii: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Centred discs (value 1 inside) of the given radii, as fractions of the half-diagonal: (R, 1, h, w)."""
    h, w = size
    ys = (torch.arange(h, dtype=torch.float32) + 0.5 - h / 2) / (h / 2)
    xs = (torch.arange(w, dtype=torch.float32) + 0.5 - w / 2) / (w / 2)
    dist = torch.sqrt(ys.view(-1, 1) ** 2 + xs.view(1, -1) ** 2) / math.sqrt(2.0)
    return (dist.unsqueeze(0) <= radii.view(-1, 1, 1)).float().unsqueeze(1)


def resize_mask(mask: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Resize (B, 1, h, w) or (1, h, w) masks bilinearly to ``size`` (height, width)."""
    batched = mask.dim() == 4
    m = mask if batched else mask[None]
    if tuple(m.shape[-2:]) != tuple(size):
        m = F.interpolate(m, size=size, mode="bilinear", align_corners=False).clamp(0, 1)
    return m if batched else m[0]


class AreaRows(Protocol):
    """Masks with the input image of each row (an ``Explanation`` of several areas per image)."""

    @property
    def masks(self) -> torch.Tensor: ...

    @property
    def image_index(self) -> torch.Tensor | None: ...


def combine_areas(masks: torch.Tensor | AreaRows, sigma: float = 5.0,
                  image_index: torch.Tensor | None = None, padding: str = "zeros") -> torch.Tensor:
    """One mask per image (B, 1, H, W) from its area masks, as the paper does for its metrics:
    the sum of the image's area masks, smoothed by a light Gaussian (``sigma`` px at 224), divided
    by the number of areas, so a value is the (smoothed) fraction of the area masks covering the
    pixel: in [0, 1], the smallest area's core highest. Images come in ``image_index`` order.

    The smoothing takes the world outside the image as mask 0 (zero padding, as TorchRay's
    benchmark smooths), so a blob at the border is worth what lies inside: deletion masks often
    park a small blob in a corner, and edge replication stretched it beyond the image until it
    won the pointing game (``docs/methods/extremal.md`` finding 22). ``padding="replicate"`` gives
    the combination as it was before, for comparison.

    ``masks`` is a (rows, 1, H, W) tensor with ``image_index`` (rows,) naming each row's image, or
    an explanation that carries both. Without an index every row is its own image: returned as is."""
    if not isinstance(masks, torch.Tensor):
        image_index = masks.image_index
        masks = masks.masks
    values = masks.detach()
    if image_index is None:
        return values
    index = image_index.to(values.device)
    images = torch.unique(index)  # sorted
    out = []
    for i in images.tolist():
        rows = values[index == i]
        out.append(rows.sum(0, keepdim=True) / rows.shape[0])
    combined = torch.cat(out)
    return gaussian_blur(combined, sigma * pixel_scale(combined.shape), padding=padding).clamp(0, 1)


SIGNS = ("abs", "positive")


def normalise_saliency(attributions: torch.Tensor, sign: str = "abs") -> torch.Tensor:
    """Raw attributions (B, C, H, W) or (B, H, W) → saliency masks (B, 1, H, W) in [0, 1].

    ``sign`` says which attributions count as evidence: ``abs`` (magnitude, the convention of
    gradient maps, Simonyan et al.) or ``positive`` (only positive values: Grad-CAM's ReLU, the
    score *drop* of occlusion; negative = counter-evidence is set to 0). Then the maximum over
    channels and a per-image min-max rescale. For magnitude maps the minimum is ~0, so this is the
    usual divide-by-maximum; for maps with a floor (RISE) it spreads the informative range over
    [0, 1]. A constant map carries no location information and becomes all zeros.
    """
    if sign not in SIGNS:
        raise ConfigError(f"unknown sign {sign!r}; choose abs or positive")
    a = attributions.detach().float()
    if a.dim() == 3:
        a = a.unsqueeze(1)
    if a.dim() != 4:
        raise ConfigError(f"expected attributions (B, C, H, W) or (B, H, W), got {tuple(attributions.shape)}")
    a = a.abs() if sign == "abs" else a.clamp(min=0)
    a = a.amax(dim=1, keepdim=True)
    low = a.amin(dim=(2, 3), keepdim=True)
    span = a.amax(dim=(2, 3), keepdim=True) - low
    return torch.where(span > 0, (a - low) / span.clamp(min=1e-30), torch.zeros_like(a))
