"""Saliency methods. Each is a function ``method(model, images, target=..., **options) -> Explanation``.

``get_method(name)`` finds one by its CLI name and ``get_spec(name)`` says what it takes
(``registry``); heavy methods are imported only when asked for. ``register_method`` adds a user's
own function as a method.
"""

from __future__ import annotations

from ..masks import combine_areas
from .crisp import crisp_mask
from .extremal import extremal_perturbation
from .meaningful import meaningful_perturbation
from .optimise import PRESETS
from .registry import (
    DEFAULT_METHODS,
    METHODS,
    MethodSpec,
    explain_batch,
    get_method,
    get_spec,
    register_method,
    unregister_method,
)

__all__ = [
    "DEFAULT_METHODS",
    "METHODS",
    "PRESETS",
    "MethodSpec",
    "combine_areas",
    "crisp_mask",
    "explain_batch",
    "extremal_perturbation",
    "get_method",
    "get_spec",
    "meaningful_perturbation",
    "register_method",
    "unregister_method",
]
