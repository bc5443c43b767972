"""Grad-CAM (Selvaraju et al. 2017) through Captum's ``LayerGradCam``, and its default layer."""

from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F
from captum.attr import LayerGradCam
from torch import nn

from .. import layers
from ..blackbox import TargetSpec
from ..errors import ConfigError
from ..explanation import Explanation
from ..masks import normalise_saliency
from .attribution import TargetScore, finish, quiet, setup


def last_conv_layer(model, images: torch.Tensor) -> nn.Module:
    """The default Grad-CAM layer (``gradcam_layer``'s module)."""
    return gradcam_layer(model, images)[1]


def gradcam_layer(model, images: torch.Tensor) -> tuple[str, nn.Module]:
    """(name, module) of the default Grad-CAM layer: ``maskscope.layers.default_layer``."""
    return layers.default_layer(model, images)


def gradcam(
    model,
    images: torch.Tensor,
    target: TargetSpec = None,
    layer: nn.Module | str | None = None,
    score: str = "logit",
) -> Explanation:
    """Selvaraju et al. (2017) Grad-CAM on ``layer`` (a module or its name; default: the last spatial
    Conv2d on the main path, or a transformer's last block's first norm, named in a warning; patch
    tokens are read as their grid), ReLU'd and upsampled bilinearly to the image size."""
    blackbox, x, targets = setup(model, images, target)
    if layer is None:
        name, layer = gradcam_layer(blackbox, x)
        warnings.warn(f"Grad-CAM: no layer given, using {name}; {layers.LAYER_HINT} to choose another",
                      stacklevel=2)
    else:
        name, layer = layers.find_layer(blackbox, layer)
    with blackbox.evaluating(), layers.grid_view(blackbox, layer, x) as features:
        cam = quiet(
            LayerGradCam(TargetScore(blackbox, score), features).attribute,
            x,
            target=0,
            additional_forward_args=(targets,),
            relu_attributions=True,
        )
    if not isinstance(cam, torch.Tensor) or cam.dim() != 4:
        raise ConfigError(f"Grad-CAM: layer {name} does not output (B, C, H, W) feature maps")
    cam = F.interpolate(cam.detach().float(), size=tuple(x.shape[-2:]), mode="bilinear", align_corners=False)
    masks = normalise_saliency(cam, "positive")
    params: dict[str, object] = {"score": score, "sign": "positive", "layer": name}
    weight = getattr(layer, "weight", None)
    if isinstance(weight, torch.Tensor):
        params["layer_shape"] = list(weight.shape)
    return finish(blackbox, images, x, masks, targets, "gradcam", params)
