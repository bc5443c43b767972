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
    OutputError,
    TargetError,
)
from .explanation import Explanation
from .images import load_batch, load_image
from .methods import crisp_mask, meaningful_perturbation
from .perturb import Blur, Constant, FixedBlur, Noise, get_perturbation
from .zoo import imagenet_class_names, load_classifier

__version__ = "0.1.0"

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
    "Noise",
    "OutputError",
    "TargetError",
    "as_blackbox",
    "crisp_mask",
    "get_perturbation",
    "imagenet_class_names",
    "load_batch",
    "load_classifier",
    "load_image",
    "meaningful_perturbation",
]
