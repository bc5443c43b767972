"""The layers of a user's model that a method reads: found by name, chosen by default, and seen as
a (B, C, h, w) grid whether the model is a CNN or a vision transformer.

A transformer's blocks output tokens (B, N, C): a few class / distillation / register tokens, then
one token per patch in row order. ``token_layout`` infers how many come first and the patch grid
from the token count and the input size (pytorch-grad-cam's ``reshape_transform``, without having
to be told the patch size), and ``grid_view`` lets a layer-reading method (Captum's Grad-CAM) see
the patches as a feature map while the model itself runs unchanged.
"""

from __future__ import annotations

import contextlib
import difflib
import math
from collections.abc import Iterator

import torch
from torch import nn

from .blackbox import as_blackbox
from .errors import ConfigError

SHORTCUT_NAMES = ("shortcut", "downsample", "skip")
MAX_PREFIX_TOKENS = 16  # class + distillation + register tokens before the patches
LAYER_HINT = "pass layer= (--layer on the command line)"


# -- layers by name ------------------------------------------------------------------------------
def module_names(model) -> dict[nn.Module, str]:
    """Each submodule of the classifier → its name inside the user's model (no ``model.`` prefix)."""
    return {m: n.removeprefix("model.") for n, m in as_blackbox(model).named_modules() if n}


def layer_name(model, layer: nn.Module) -> str:
    return module_names(model).get(layer, type(layer).__name__) or type(layer).__name__


def find_layer(model, layer: nn.Module | str, method: str = "Grad-CAM") -> tuple[str, nn.Module]:
    """(name, module) of a layer given as a module or by its name in the model (``layer4.1.conv2``);
    a wrong name is a ConfigError listing the closest names the model has."""
    names = module_names(model)
    if isinstance(layer, int) and not isinstance(layer, bool):
        layer = str(layer)  # a Sequential's child, as --option gradcam.layer=2 reads it
    if isinstance(layer, nn.Module):
        if layer not in names:
            raise ConfigError(f"{method}: layer {type(layer).__name__} is not part of the model")
        return names[layer], layer
    if not isinstance(layer, str):
        raise ConfigError(f"{method}: layer must be a module or its name, got {type(layer).__name__}")
    by_name = {n: m for m, n in names.items()}
    for candidate in (layer, layer.removeprefix("model.")):
        if candidate in by_name:
            return candidate, by_name[candidate]
    close = difflib.get_close_matches(layer, list(by_name), n=5, cutoff=0.5)
    hint = f"; closest: {', '.join(close)}" if close else f"; it has {', '.join(list(by_name)[-5:])}, ..."
    raise ConfigError(f"{method}: the model has no layer named {layer!r}{hint}")


# -- tokens as a grid ----------------------------------------------------------------------------
def token_layout(count: int, input_size: tuple[int, int]) -> tuple[int, int, int] | None:
    """(prefix tokens, h, w) such that ``count`` = prefix + h·w and h/w matches the input's aspect
    ratio, the fewest prefix tokens first; None when no such grid exists."""
    height, width = input_size
    aspect = height / width
    for prefix in range(min(MAX_PREFIX_TOKENS, count - 1) + 1):
        patches = count - prefix
        h = max(1, round(math.sqrt(patches * aspect)))
        w = patches // h
        if w and h * w == patches and abs(h / w - aspect) <= 0.25 * aspect:
            return prefix, h, w
    return None


def is_token_output(output: object, input_size: tuple[int, int]) -> bool:
    return (isinstance(output, torch.Tensor) and output.dim() == 3
            and token_layout(int(output.shape[1]), input_size) is not None)


class TokenGrid(nn.Module):
    """(B, N, C) tokens → (B, C, h, w) patch grid (prefix tokens dropped); (B, h, w, C) channels-last
    maps (Swin's norms) → (B, C, h, w)."""

    def __init__(self, input_size: tuple[int, int]) -> None:
        super().__init__()
        self.input_size = input_size

    def forward(self, output: torch.Tensor) -> torch.Tensor:
        if output.dim() == 4:
            return output.permute(0, 3, 1, 2)
        layout = token_layout(int(output.shape[1]), self.input_size)
        if layout is None:
            raise ConfigError(
                f"{output.shape[1]} tokens do not form a patch grid for a {self.input_size} input"
            )
        prefix, h, w = layout
        patches = output[:, prefix:, :]
        return patches.transpose(1, 2).reshape(output.shape[0], output.shape[2], h, w)


def tokens_back(output: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """The layer's own output rebuilt from ``grid`` (equal values), so the model runs on through it."""
    if output.dim() == 4:
        return grid.permute(0, 2, 3, 1)
    prefix = output.shape[1] - grid.shape[-2] * grid.shape[-1]
    return torch.cat([output[:, :prefix], grid.flatten(2).transpose(1, 2)], dim=1)


def layer_output(model, layer: nn.Module, images: torch.Tensor) -> object:
    """What ``layer`` outputs for the first image (one forward pass without gradients)."""
    blackbox = as_blackbox(model)
    seen: list[object] = []
    handle = layer.register_forward_hook(lambda _m, _i, out: seen.append(out))
    try:
        with torch.no_grad(), blackbox.evaluating():
            blackbox(images[:1].detach().to(blackbox.device, torch.float32))
    finally:
        handle.remove()
    if not seen:
        raise ConfigError(f"layer {layer_name(blackbox, layer)} does not run in the model's forward pass")
    return seen[0]


@contextlib.contextmanager
def grid_view(model, layer: nn.Module, images: torch.Tensor) -> Iterator[nn.Module]:
    """The module to read ``layer``'s features from: the layer itself when it outputs (B, C, H, W)
    maps; for a token layer, a ``TokenGrid`` run on its output (a forward hook, removed on exit)
    whose output is the patch grid. ConfigError for any other output."""
    blackbox = as_blackbox(model)
    size = model_input_size(blackbox, images)
    out = layer_output(blackbox, layer, images)
    channels_last = isinstance(layer, nn.LayerNorm) and isinstance(out, torch.Tensor) and out.dim() == 4
    if isinstance(out, torch.Tensor) and out.dim() == 4 and not channels_last:
        yield layer
        return
    if not (channels_last or is_token_output(out, size)):
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ConfigError(
            f"Grad-CAM: layer {layer_name(blackbox, layer)} does not output (B, C, H, W) feature maps "
            f"or (B, tokens, C) patch tokens, but {shape}; {LAYER_HINT} naming another"
        )
    grid = TokenGrid(size)
    handle = layer.register_forward_hook(lambda _m, _i, output: tokens_back(output, grid(output)))
    try:
        yield grid
    finally:
        handle.remove()


def model_input_size(model, images: torch.Tensor) -> tuple[int, int]:
    """The (H, W) the model itself sees: its BlackBox input size, else the images' own."""
    size = as_blackbox(model).input_size
    return size if size is not None else (int(images.shape[-2]), int(images.shape[-1]))


# -- default layers ------------------------------------------------------------------------------
def default_layer(model, images: torch.Tensor) -> tuple[str, nn.Module]:
    """(name, module) of the layer Grad-CAM reads by default, found by one probe forward
    (registration order need not be execution order).

    A CNN: the last ``nn.Conv2d`` *on the main path* whose output is spatial (H, W > 1). A residual
    block's shortcut is not the main path: a conv named ``shortcut``/``downsample``/``skip``, or a
    1×1 conv reading the very tensor an earlier conv already read, is passed over, so a ResNet gets
    its last block's last conv, not the 1×1 projection that may run after it.

    A vision transformer (its only spatial conv is a patch embedding, kernel = stride, or it has
    none): the last block's first norm, the one before attention, as pytorch-grad-cam recommends;
    the final norm's gradient reaches the class token alone.
    """
    blackbox = as_blackbox(model)
    names = module_names(blackbox)
    size = model_input_size(blackbox, images)
    convs: list[tuple[nn.Conv2d, torch.Tensor, torch.Size]] = []
    norms: list[nn.Module] = []

    def record(module, inputs, output) -> None:
        if isinstance(module, nn.Conv2d):
            convs.append((module, inputs[0], output.shape))
        elif is_token_output(output, size) or (isinstance(output, torch.Tensor) and output.dim() == 4):
            norms.append(module)

    kinds = (nn.Conv2d, nn.LayerNorm)
    handles = [m.register_forward_hook(record) for m in blackbox.modules() if isinstance(m, kinds)]
    try:
        with torch.no_grad(), blackbox.evaluating():
            blackbox(images[:1].detach().to(blackbox.device, torch.float32))
    finally:
        for handle in handles:
            handle.remove()
    conv = _last_main_path_conv(convs, names)
    patch_embedding = conv is not None and conv is convs[0][0] and _is_patch_embedding(conv)
    if conv is not None and not patch_embedding:
        return names.get(conv, type(conv).__name__), conv
    norm = _last_block_norm(norms, names)
    if norm is not None:
        return names[norm], norm
    if conv is not None:  # a patch embedding
        raise ConfigError(
            f"Grad-CAM: the only spatial conv of this model is {names.get(conv, 'its first conv')}, a "
            f"patch embedding, and no token layer was found: {LAYER_HINT}"
        )
    raise ConfigError(f"Grad-CAM needs a Conv2d layer with spatial output or a token layer; {LAYER_HINT}")


def _is_patch_embedding(conv: nn.Conv2d) -> bool:
    return conv.kernel_size == conv.stride and conv.kernel_size != (1, 1)


def _last_main_path_conv(executed: list, names: dict[nn.Module, str]) -> nn.Conv2d | None:
    main_path = []
    for i, (conv, inp, shape) in enumerate(executed):
        named_branch = any(part in SHORTCUT_NAMES for part in names.get(conv, "").lower().split("."))
        shared_input = conv.kernel_size == (1, 1) and any(inp is other for _, other, _ in executed[:i])
        spatial = len(shape) == 4 and shape[-1] > 1 and shape[-2] > 1
        if spatial and not (named_branch or shared_input):
            main_path.append(conv)
    return main_path[-1] if main_path else None


def _last_block_norm(norms: list[nn.Module], names: dict[nn.Module, str]) -> nn.Module | None:
    """The first norm run in the last numbered block (``encoder.layer.11``, ``blocks.11``,
    ``layers.3.blocks.1``) among token norms; the model's final norm belongs to no block."""
    blocks = [(m, _block(names.get(m, ""))) for m in norms]
    numbered = [(m, block) for m, block in blocks if block]
    if not numbered:
        return None
    last = numbered[-1][1]
    return next(m for m, block in numbered if block == last)


def _block(name: str) -> str:
    """``vit.encoder.layer.1.layernorm_before`` → ``vit.encoder.layer.1``; "" without a number."""
    parts = name.split(".")
    numbered = [i for i, part in enumerate(parts) if part.isdigit()]
    return ".".join(parts[: numbered[-1] + 1]) if numbered else ""
