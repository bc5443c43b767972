"""Saliency methods. Each is a function ``method(model, images, target=...) -> Explanation``."""

from .crisp import crisp_mask
from .meaningful import PRESETS, meaningful_perturbation

__all__ = ["PRESETS", "crisp_mask", "meaningful_perturbation"]
