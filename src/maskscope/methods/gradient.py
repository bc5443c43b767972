"""Gradient saliency (Simonyan et al. 2014), through Captum's ``Saliency``."""

from __future__ import annotations

import torch
from captum.attr import Saliency

from ..blackbox import BlackBox, TargetSpec
from ..explanation import Explanation
from ..masks import normalise_saliency
from .attribution import TargetScore, finish, quiet, setup
from .optimise import Targets


def input_gradient(blackbox: BlackBox, x: torch.Tensor, targets: Targets, score: str) -> torch.Tensor:
    """∂ score / ∂ pixel (B, 3, H, W) through Captum's Saliency, with whatever hooks are active."""
    return quiet(
        Saliency(TargetScore(blackbox, score)).attribute,
        x,
        target=0,
        additional_forward_args=(targets,),
        abs=False,
    )


def gradient(model, images: torch.Tensor, target: TargetSpec = None, score: str = "logit") -> Explanation:
    """Simonyan et al. (2014) gradient saliency: |∂ score / ∂ pixel|, max over colour channels."""
    blackbox, x, targets = setup(model, images, target)
    with blackbox.evaluating():
        raw = input_gradient(blackbox, x, targets, score)
    masks = normalise_saliency(raw, "abs")
    return finish(blackbox, images, x, masks, targets, "gradient", {"score": score, "sign": "abs"})
