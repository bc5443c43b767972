"""maskscope: what does an image classifier look at? Learned perturbation masks for any model.

Masks follow one convention everywhere: (B, 1, H, W) in [0, 1], 1 = salient.
"""

from .blackbox import BlackBox, as_blackbox
from .errors import (
    CheckpointError,
    ConfigError,
    DataError,
    ImageError,
    MaskscopeError,
    MissingExtraError,
    ModelError,
    OutputError,
    TargetError,
)
from .explanation import Explanation
from .images import load_batch, load_image
from .masks import combine_areas
from .methods import crisp_mask, extremal_perturbation, meaningful_perturbation
from .perturb import Blur, Constant, FixedBlur, Noise, get_perturbation
from .zoo import imagenet_class_names, load_classifier

__version__ = "0.1.0"

# heavier parts load on first use: ``maskscope.realtime_saliency``, ``maskscope.metrics``, ...
_LAZY = {
    "realtime_saliency": ("maskscope.methods.realtime", "realtime_saliency"),
    "get_method": ("maskscope.methods", "get_method"),
    "register_method": ("maskscope.methods", "register_method"),
    "explain_files": ("maskscope.files", "explain_files"),
    "find_layer": ("maskscope.layers", "find_layer"),
}
# every other method as a top-level function (``maskscope.gradcam``), found by its registered name
_METHODS = {
    "gradient": "gradient",
    "guided_backprop": "guided-backprop",
    "gradcam": "gradcam",
    "occlusion": "occlusion",
    "rise": "rise",
    "center_box": "center",
    "full_image": "full",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        module, attribute = _LAZY[name]
        return getattr(importlib.import_module(module), attribute)
    if name in _METHODS:
        from .methods import get_method

        return get_method(_METHODS[name])
    raise AttributeError(f"module 'maskscope' has no attribute {name!r}")


def __dir__() -> list[str]:
    """The lazy names too, for ``dir(maskscope)`` and tab completion."""
    return sorted(set(globals()) | set(__all__))


__all__ = [
    "BlackBox",
    "Blur",
    "CheckpointError",
    "ConfigError",
    "Constant",
    "DataError",
    "Explanation",
    "FixedBlur",
    "ImageError",
    "MaskscopeError",
    "MissingExtraError",
    "ModelError",
    "Noise",
    "OutputError",
    "TargetError",
    "as_blackbox",
    "center_box",
    "combine_areas",
    "crisp_mask",
    "explain_files",
    "extremal_perturbation",
    "find_layer",
    "full_image",
    "get_method",
    "get_perturbation",
    "gradcam",
    "gradient",
    "guided_backprop",
    "imagenet_class_names",
    "load_batch",
    "load_classifier",
    "load_image",
    "meaningful_perturbation",
    "occlusion",
    "realtime_saliency",
    "register_method",
    "rise",
]
