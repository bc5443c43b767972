"""Grad-CAM (Selvaraju et al. 2017) through Captum's ``LayerGradCam``, and its default layer."""

from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F
from captum.attr import LayerGradCam
from torch import nn

from ..blackbox import BlackBox, TargetSpec, as_blackbox
from ..errors import ConfigError
from ..explanation import Explanation
from .attribution import TargetScore, finish, normalise_saliency, quiet, setup

SHORTCUT_NAMES = ("shortcut", "downsample", "skip")


def last_conv_layer(model, images: torch.Tensor) -> nn.Module:
    """The default Grad-CAM layer (``gradcam_layer``'s module)."""
    return gradcam_layer(model, images)[1]


def gradcam_layer(model, images: torch.Tensor) -> tuple[str, nn.Module]:
    """(name, module) of the last ``nn.Conv2d`` *on the main path* whose output is spatial (H, W > 1),
    found by one probe forward (registration order need not be execution order).

    A residual block's shortcut is not the main path: a conv named ``shortcut``/``downsample``/
    ``skip``, or a 1×1 conv reading the very tensor an earlier conv already read (the branch beside
    the block's first conv), is passed over, so a ResNet gets its last block's last conv, not the
    1×1 projection that may run after it. A model whose only spatial conv is a patch embedding
    (kernel = stride, as in a ViT) has no spatial layer to explain: ConfigError asking for ``layer=``.
    """
    blackbox = as_blackbox(model)
    names = {m: n for n, m in blackbox.named_modules()}
    executed: list[tuple[nn.Conv2d, torch.Tensor, torch.Size]] = []
    handles = [
        m.register_forward_hook(lambda mod, inp, out: executed.append((mod, inp[0], out.shape)))
        for m in blackbox.modules()
        if isinstance(m, nn.Conv2d)
    ]
    try:
        with torch.no_grad(), blackbox.evaluating():
            blackbox(images[:1].detach().to(blackbox.device, torch.float32))
    finally:
        for handle in handles:
            handle.remove()
    main_path = []
    for i, (conv, inp, shape) in enumerate(executed):
        name = names.get(conv, "")
        named_branch = any(part in SHORTCUT_NAMES for part in name.lower().split("."))
        shared_input = conv.kernel_size == (1, 1) and any(inp is other for _, other, _ in executed[:i])
        spatial = len(shape) == 4 and shape[-1] > 1 and shape[-2] > 1
        if spatial and not (named_branch or shared_input):
            main_path.append(conv)
    if not main_path:
        raise ConfigError("Grad-CAM needs a Conv2d layer with spatial output; pass layer= explicitly")
    layer = main_path[-1]
    first = executed[0][0]
    if layer is first and layer.kernel_size == layer.stride and layer.kernel_size != (1, 1):
        raise ConfigError(
            f"Grad-CAM: the only spatial conv of this model is {_layer_name(names, layer)}, a patch "
            "embedding (transformer-like model): pass layer= a module whose output is (B, C, H, W)"
        )
    return _layer_name(names, layer), layer


def _layer_name(names: dict, layer: nn.Module) -> str:
    return names.get(layer, type(layer).__name__).removeprefix("model.") or type(layer).__name__


def _find_layer(blackbox: BlackBox, layer: nn.Module | str) -> tuple[str, nn.Module]:
    """A layer given as a module or by its name in the model (``layer4.1.conv2``)."""
    names = {m: n for n, m in blackbox.named_modules()}
    if isinstance(layer, nn.Module):
        if layer not in names:
            raise ConfigError(f"Grad-CAM: layer {type(layer).__name__} is not part of the model")
        return _layer_name(names, layer), layer
    for prefix in ("model.", ""):
        try:
            return layer, blackbox.get_submodule(prefix + layer)
        except AttributeError:
            continue
    raise ConfigError(f"Grad-CAM: the model has no layer named {layer!r}")


def gradcam(
    model,
    images: torch.Tensor,
    target: TargetSpec = None,
    layer: nn.Module | str | None = None,
    score: str = "logit",
) -> Explanation:
    """Selvaraju et al. (2017) Grad-CAM on ``layer`` (a module or its name; default: the last spatial
    Conv2d on the main path, named in a warning), ReLU'd and upsampled bilinearly to the image size."""
    blackbox, x, targets = setup(model, images, target)
    if layer is None:
        name, layer = gradcam_layer(blackbox, x)
        warnings.warn(f"Grad-CAM: no layer given, using {name}; pass layer= to choose another", stacklevel=2)
    else:
        name, layer = _find_layer(blackbox, layer)
    with blackbox.evaluating():
        cam = quiet(
            LayerGradCam(TargetScore(blackbox, score), layer).attribute,
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
