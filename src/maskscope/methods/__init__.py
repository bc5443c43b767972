"""Saliency methods. Each is a function ``method(model, images, target=..., **options) -> Explanation``.

``get_method(name)`` finds one by its CLI name; heavy methods are imported only when asked for.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from ..errors import ConfigError
from .crisp import crisp_mask
from .extremal import combine_areas, extremal_perturbation
from .meaningful import meaningful_perturbation
from .optimise import PRESETS

# CLI name -> "module:function" (relative to maskscope.methods unless a full dotted path)
METHODS: dict[str, str] = {
    "meaningful": "meaningful:meaningful_perturbation",
    "crisp": "crisp:crisp_mask",
    "extremal": "extremal:extremal_perturbation",
    "realtime": "realtime:realtime_saliency",
    "gradient": "gradient:gradient",
    "guided-backprop": "guided_backprop:guided_backprop",
    "gradcam": "gradcam:gradcam",
    "occlusion": "occlusion:occlusion",
    "rise": "rise:rise",
    "center": "maskscope.evaluate.reference:center_box",
    "full": "maskscope.evaluate.reference:full_image",
}

# what ``maskscope evaluate`` and the quality benchmarks run when no methods are named
DEFAULT_METHODS = (
    "meaningful", "crisp", "gradient", "guided-backprop", "gradcam", "occlusion", "rise", "center",
)


def get_method(name: str) -> Callable:
    """The method function registered under ``name``; ConfigError for an unknown name."""
    if name not in METHODS:
        raise ConfigError(f"unknown method {name!r}; choose one of {', '.join(METHODS)}")
    module_name, function = METHODS[name].split(":")
    try:
        module = importlib.import_module(module_name if "." in module_name else f"{__name__}.{module_name}")
    except ImportError as exc:
        from ..extras import missing_extra

        error = missing_extra(exc)
        if error is not None:
            raise type(error)(f"method {name!r}: {error}") from None
        raise ConfigError(f"method {name!r} is not available: {exc}") from None
    return getattr(module, function)


__all__ = [
    "DEFAULT_METHODS",
    "METHODS",
    "PRESETS",
    "combine_areas",
    "crisp_mask",
    "extremal_perturbation",
    "get_method",
    "meaningful_perturbation",
]
