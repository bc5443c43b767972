"""Background share: how much of a mask lies off the object, per class.

With pixel-exact object masks (the synthetic benchmark) a method that relies on the background, as a
classifier trained on a spurious cue does, shows it directly: its mask's maximum falls off the
object, and most of its mass lies there.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from .pointing import max_point


def background_share(mask: torch.Tensor, object_mask: torch.Tensor) -> tuple[float, float]:
    """(1 if the mask's maximum lies off the object else 0, fraction of mask mass off the object);
    an all-zero mask counts as entirely off the object."""
    x, y = max_point(mask)
    total = float(mask.sum())
    argmax_off = 0.0 if bool(object_mask[y, x]) else 1.0
    return argmax_off, float(mask[~object_mask].sum()) / total if total > 0 else 1.0


def background_by_class(
    masks: Sequence[torch.Tensor], object_masks: Sequence[torch.Tensor], classes: Sequence[int]
) -> dict[str, dict[str, float]]:
    """Per class: the fraction of masks whose maximum lies off the object (``argmax_off_object``),
    the mean fraction of mask mass off the object (``mass_off_object``) and the image count."""
    argmax_off: dict[int, list[float]] = {}
    mass_off: dict[int, list[float]] = {}
    for mask, obj, c in zip(masks, object_masks, classes):
        a, m = background_share(mask, obj)
        argmax_off.setdefault(c, []).append(a)
        mass_off.setdefault(c, []).append(m)
    return {
        str(c): {
            "argmax_off_object": math.fsum(argmax_off[c]) / len(argmax_off[c]),
            "mass_off_object": math.fsum(mass_off[c]) / len(mass_off[c]),
            "n": len(argmax_off[c]),
        }
        for c in sorted(argmax_off)
    }
