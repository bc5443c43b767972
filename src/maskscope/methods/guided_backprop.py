"""Guided backpropagation (Springenberg et al. 2015): gradients gated at every rectifier."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator

import torch
from torch import nn

from ..blackbox import TargetSpec
from ..explanation import Explanation
from ..masks import normalise_saliency
from .attribution import finish, setup
from .gradient import input_gradient

RECTIFIERS = (nn.ReLU, nn.ReLU6)


@contextlib.contextmanager
def _guided_rectifiers(model: nn.Module) -> Iterator[None]:
    """Guided backprop's gate at every rectifier module, with public hooks only, removed on exit.

    Captum's ``GuidedBackprop`` hooks ``nn.ReLU`` alone (and through a private helper); ReLU6
    (EfficientNet-Lite, MobileNets) is a clipped rectifier with the same gating, so it is guided too.
    Zeroing the negative gradient at a rectifier's *output* gives exactly Captum's relu(grad_input):
    the rectifier's own gate is a non-negative factor, so relu(gate · g) = gate · relu(g). Smooth
    activations (SiLU, GELU) and functional ReLUs are left alone: on a model that has no rectifier
    *modules* guided backprop is plain gradient, and ``guided_backprop`` warns about that.
    """

    def gate(_module: nn.Module, _inputs, output: torch.Tensor) -> None:
        if isinstance(output, torch.Tensor) and output.requires_grad:
            output.register_hook(lambda grad: grad.clamp(min=0))

    handles = [m.register_forward_hook(gate) for m in model.modules() if isinstance(m, RECTIFIERS)]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def guided_backprop(
    model, images: torch.Tensor, target: TargetSpec = None, score: str = "logit"
) -> Explanation:
    """Springenberg et al. (2015): gradients with negative values zeroed at every rectifier."""
    blackbox, x, targets = setup(model, images, target)
    rectifiers = sum(isinstance(m, RECTIFIERS) for m in blackbox.modules())
    if rectifiers == 0:
        warnings.warn(
            "guided backprop: the model has no nn.ReLU / nn.ReLU6 modules, so the result is the "
            "plain gradient",
            stacklevel=2,
        )
    with blackbox.evaluating(), _guided_rectifiers(blackbox):
        raw = input_gradient(blackbox, x, targets, score)
    masks = normalise_saliency(raw, "abs")
    return finish(
        blackbox,
        images,
        x,
        masks,
        targets,
        "guided-backprop",
        {"score": score, "sign": "abs", "rectifiers": rectifiers},
    )
