"""A user's own function as a method: ``fn(model, images, target, **options)`` returning masks
(or an ``Explanation``) gets the built-in call shape and an ``Explanation`` scored by the rule every
method follows (``Explanation``: ``Blur()`` for a method that optimises against no perturbation).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

import torch
import torch.nn.functional as F

from ..blackbox import TargetSpec, as_blackbox
from ..errors import ConfigError
from ..explanation import Explanation
from ..images import image_batch
from ..target import class_targets
from .optimise import build_explanation, final_scores, scoring_perturbation


def check_function(name: str, function: Callable) -> None:
    """ConfigError unless ``function`` can be called as ``function(model, images, target)``."""
    try:
        inspect.signature(function).bind(None, None, None)
    except TypeError:
        raise ConfigError(f"method {name!r}: the function must take (model, images, target)") from None
    except ValueError:  # a builtin without a signature: called as it is
        pass


def adapt(name: str, function: Callable) -> Callable[..., Explanation]:
    """``function`` with the call shape ``method(model, images, target=None, **options)``."""

    def method(model, images, target: TargetSpec = None, **options) -> Explanation:
        blackbox = as_blackbox(model)
        x = image_batch(images).detach().to(blackbox.device, torch.float32)
        blackbox.check_images(x)
        with blackbox.evaluating():
            targets = class_targets(blackbox, x, target, f"method {name!r}").to(x.device)
            result = function(blackbox, x, targets[:, 0] if targets.shape[1] == 1 else targets, **options)
        if isinstance(result, Explanation):
            return result
        masks = _masks(name, result, x)
        perturbation = scoring_perturbation()
        with torch.no_grad(), blackbox.evaluating():
            scores = final_scores(blackbox, perturbation.prepare(x), x, masks, targets)
        return build_explanation(blackbox, image_batch(images, check_values=False), masks, targets, name,
                                 scores, None, dict(options), perturbation)

    method.__name__ = method.__qualname__ = getattr(function, "__name__", name)
    method.__doc__ = function.__doc__
    return method


def _masks(name: str, result, images: torch.Tensor) -> torch.Tensor:
    """The returned masks as (B, 1, H, W) at the images' size; ConfigError for anything else."""
    if not isinstance(result, torch.Tensor):
        raise ConfigError(f"method {name!r} returned {type(result).__name__}; expected a masks tensor "
                          "(B, 1, H, W) or an Explanation")
    masks = result.detach().to(images.device, torch.float32)
    if masks.dim() == 3:
        masks = masks[:, None]
    if masks.dim() != 4 or masks.shape[:2] != (images.shape[0], 1):
        raise ConfigError(f"method {name!r} returned masks of shape {tuple(result.shape)}; expected "
                          f"({images.shape[0]}, 1, H, W)")
    if not bool(torch.isfinite(masks).all()) or float(masks.min()) < 0 or float(masks.max()) > 1:
        raise ConfigError(f"method {name!r} returned mask values outside [0, 1] (1 = salient); "
                          "scale them into [0, 1]")
    if masks.shape[-2:] != images.shape[-2:]:
        masks = F.interpolate(masks, size=images.shape[-2:], mode="bilinear", align_corners=False).clamp(0, 1)
    return masks
