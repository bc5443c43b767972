"""Box geometry, below the methods and the metrics: validation, IoU, mask → box thresholding,
box → mask, the centre baseline box.

Two conventions are in use, and every function says which it takes:

- **Inclusive pixel boxes** (ImageNet's, the shared annotations', all of ``maskscope.metrics``):
  ``[xmin, ymin, xmax, ymax]`` in the pixels of the image they belong to, 0-based and *inclusive*,
  so ``[0, 0, W-1, H-1]`` is the whole image and a box's width is ``xmax - xmin + 1``. Coordinates
  may be fractional (annotations scaled to another image size); a coordinate in ``[W-1, W)`` still
  lies inside the last pixel.
- **Exclusive edge boxes** (OpenCV's selective search, ``maskscope.summaries``): ``[x0, y0, x1, y1)``
  with the right and bottom *edges* excluded, so ``[0, 0, W, H)`` is the whole image and a box's
  width is ``x1 - x0``; only ``box_iou_exclusive`` takes them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from .errors import DataError

Box = tuple[float, float, float, float]
THRESHOLD_MODES = ("value", "energy", "mean", "fixed")
_EPS = 1e-6


def validate_box(box: Sequence[float], size: tuple[int, int] | None = None) -> Box:
    """Return ``box`` as a float tuple; DataError when malformed, inverted or outside ``size`` (H, W)."""
    try:
        values = tuple(float(v) for v in box)
    except (TypeError, ValueError):
        raise DataError(f"a box must be 4 numbers [xmin, ymin, xmax, ymax], got {box!r}") from None
    if len(values) != 4 or not all(math.isfinite(v) for v in values):
        raise DataError(f"a box must be 4 finite numbers [xmin, ymin, xmax, ymax], got {box!r}")
    xmin, ymin, xmax, ymax = values
    if xmin > xmax or ymin > ymax:
        raise DataError(f"inverted box {list(values)}: need xmin <= xmax and ymin <= ymax")
    if size is not None:
        h, w = size
        if xmin < -_EPS or ymin < -_EPS or xmax >= w or ymax >= h:
            raise DataError(f"box {list(values)} lies outside the {w}x{h} image")
    return values


def box_area(box: Sequence[float]) -> float:
    """Area in pixels of an inclusive box (a single pixel has area 1)."""
    xmin, ymin, xmax, ymax = validate_box(box)
    return (xmax - xmin + 1.0) * (ymax - ymin + 1.0)


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two *inclusive* pixel boxes (the ImageNet / VOC "+1" convention)."""
    a, b = validate_box(a), validate_box(b)
    iw = min(a[2], b[2]) - max(a[0], b[0]) + 1.0
    ih = min(a[3], b[3]) - max(a[1], b[1]) + 1.0
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    return inter / (box_area(a) + box_area(b) - inter)


def scale_box(box: Sequence[float], from_size: tuple[int, int], to_size: tuple[int, int]) -> Box:
    """Map a box from an image of size (H, W) ``from_size`` to one of ``to_size`` (e.g. 227 → 224).

    Pixel *edges* are scaled (the inclusive right edge is at ``xmax + 1``), so the whole image maps
    to the whole image. A side that shrinks below one pixel (a one-pixel box, 227 → 224) would come
    out inverted; it becomes one pixel wide at the same centre instead, so the box stays valid and
    is scored.
    """
    xmin, ymin, xmax, ymax = validate_box(box)
    sy, sx = to_size[0] / from_size[0], to_size[1] / from_size[1]
    x0, x1 = _scale_side(xmin, xmax, sx, to_size[1])
    y0, y1 = _scale_side(ymin, ymax, sy, to_size[0])
    return (x0, y0, x1, y1)


def _scale_side(low: float, high: float, scale: float, length: int) -> tuple[float, float]:
    first, last = low * scale, (high + 1.0) * scale - 1.0
    if last >= first:
        return first, last
    centre = (low + high + 1.0) * scale / 2.0 - 0.5  # the scaled side's centre, as a pixel coordinate
    centre = min(max(centre, 0.0), length - 1.0)
    return centre, centre


def pixel_box(box: Sequence[float], size: tuple[int, int]) -> tuple[int, int, int, int]:
    """Integer inclusive pixel indices covered by ``box`` in an image of ``size`` (H, W) (rounded)."""
    xmin, ymin, xmax, ymax = validate_box(box, size)
    h, w = size
    x0 = min(max(int(math.floor(xmin + 0.5)), 0), w - 1)
    y0 = min(max(int(math.floor(ymin + 0.5)), 0), h - 1)
    x1 = min(max(int(math.floor(xmax + 0.5)), x0), w - 1)
    y1 = min(max(int(math.floor(ymax + 0.5)), y0), h - 1)
    return x0, y0, x1, y1


def box_to_mask(box: Sequence[float], size: tuple[int, int], device=None) -> torch.Tensor:
    """Binary (H, W) float mask with 1 inside the (rounded) box."""
    x0, y0, x1, y1 = pixel_box(box, size)
    mask = torch.zeros(size, device=device)
    mask[y0 : y1 + 1, x0 : x1 + 1] = 1.0
    return mask


def boxes_to_mask(boxes: Sequence[Sequence[float]], size: tuple[int, int], device=None) -> torch.Tensor:
    """Union of several boxes as one binary (H, W) mask (e.g. all ground-truth boxes of an image)."""
    mask = torch.zeros(size, device=device)
    for box in boxes:
        mask = torch.maximum(mask, box_to_mask(box, size, device))
    return mask


def center_box(h: int, w: int) -> Box:
    """The "Center" baseline: the centred box spanning half the image area (sides scaled by 1/√2)."""
    bw = max(1, round(w / math.sqrt(2.0)))
    bh = max(1, round(h / math.sqrt(2.0)))
    x0, y0 = (w - bw) // 2, (h - bh) // 2
    return (float(x0), float(y0), float(x0 + bw - 1), float(y0 + bh - 1))


def _as_2d(mask: torch.Tensor) -> torch.Tensor:
    mask = torch.as_tensor(mask).detach().float()
    while mask.dim() > 2:
        if mask.shape[0] != 1:
            raise ValueError(f"expected one 2-D mask, got shape {tuple(mask.shape)}")
        mask = mask[0]
    if mask.dim() != 2:
        raise ValueError(f"expected a 2-D mask, got shape {tuple(mask.shape)}")
    return mask


def threshold_mask(mask: torch.Tensor, mode: str = "value", alpha: float = 0.5) -> torch.Tensor:
    """Boolean (H, W) selection of a mask's salient pixels by one of the papers' rules.

    - ``value`` (Fong): (m − min m) / (max m − min m) ≥ α, the heat-map normalised *min–max* to
      [0, 1] as Fong & Vedaldi's code and wsolevaluation do (normalising by the maximum alone
      would let a mask's floor count as saliency). A constant positive mask selects everything.
    - ``energy`` (Cao et al., used by Fong): the smallest set of highest pixels holding a fraction α
      of the total mass Σm; pixels tied with the last one taken are included too, so the result does
      not depend on sort order. At least the maximum pixel is selected.
    - ``mean`` (Zhang et al., used by Fong): m ≥ α·mean(m).
    - ``fixed`` (Dabkowski): m ≥ α, for masks already in [0, 1] (α = 0.5 in the paper).

    A mask with no positive value selects nothing (except ``fixed`` with α ≤ 0).
    """
    m = _as_2d(mask)
    if mode not in THRESHOLD_MODES:
        raise ValueError(f"unknown threshold mode {mode!r}; choose one of {', '.join(THRESHOLD_MODES)}")
    if mode == "fixed":
        return m >= alpha
    peak = float(m.max())
    if peak <= 0:
        return torch.zeros_like(m, dtype=torch.bool)
    if mode == "value":
        low = float(m.min())
        if peak - low <= 0:
            return torch.ones_like(m, dtype=torch.bool)
        return (m - low) / (peak - low) >= alpha
    if mode == "mean":
        return m >= alpha * float(m.mean())
    values = m.clamp(min=0).flatten().sort(descending=True).values
    cumulative = values.cumsum(0)
    k = int(torch.searchsorted(cumulative, alpha * cumulative[-1] - _EPS * cumulative[-1]))
    k = min(max(k, 0), values.numel() - 1)
    return m >= values[k]


def mask_to_box(mask: torch.Tensor, mode: str = "value", alpha: float = 0.5) -> Box | None:
    """Tightest inclusive box around the pixels that ``threshold_mask`` selects; None when none is."""
    selected = threshold_mask(mask, mode, alpha)
    ys, xs = torch.nonzero(selected, as_tuple=True)
    if ys.numel() == 0:
        return None
    return (float(xs.min()), float(ys.min()), float(xs.max()), float(ys.max()))


def box_iou_exclusive(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU (len(a), len(b)) of *exclusive* edge boxes [x0, y0, x1, y1) (no "+1")."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    ix = np.clip(np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    iy = np.clip(np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    inter = ix * iy
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9)
