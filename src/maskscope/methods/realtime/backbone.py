"""The user's own classifier as the masker's frozen encoder: its spatial stages, or its token grid.

A CNN: one probe forward (hooks removed afterwards) records every module's (B, C, h, w) output;
the stride of each is the input size over its size, and the *last* module to finish at each stride
4, 8, 16, 32 is that stage's output (a stage container finishes after its blocks). Shortcut
branches (``shortcut``/``downsample``/``skip``) and global pools (1×1 maps) are passed over.

A vision transformer: its patch tokens are one grid at one stride (the patch size), while the
decoder wants maps at strides 4, 8, 16, ... . The residual stream is read at several depths (the
first norm of evenly spaced blocks, the last map from the final norm) and each is resampled to
its stride, as DPT does for dense prediction: earlier blocks keep more of where things are, which
is what the finer skip maps are for, and the deepest map is the one the classifier's head reads,
so the class selector can be tied to it. One grid pooled and upsampled would give the fine skip
maps nothing the coarse one lacks.

Layers the user names (``encoder_layers``) are read in the order given, shallow first, and
resampled to strides 4, 8, 16, ... in that order.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from ...blackbox import BlackBox
from ...errors import ConfigError
from ...layers import SHORTCUT_NAMES, TokenGrid, _block, find_layer, is_token_output
from .encoders import Features, FrozenBackbone

STRIDES = (4, 8, 16, 32)
HINT = "name them with encoder_layers=[...] (--encoder-layers a,b,c on the command line)"
PROBE_SIDE = 64  # the probe's side for a model that takes any input size


def probe_size(blackbox: BlackBox) -> tuple[int, int]:
    if blackbox.input_size is None:
        return PROBE_SIDE, PROBE_SIDE
    return int(blackbox.input_size[0]), int(blackbox.input_size[1])


def _modules(blackbox: BlackBox) -> list[tuple[str, nn.Module]]:
    model = blackbox.model
    return [(n, m) for n, m in model.named_modules() if n] if isinstance(model, nn.Module) else []


Seen = list[tuple[str, nn.Module, object]]


def _probe(blackbox: BlackBox, modules: Sequence[tuple[str, nn.Module]]) -> Seen:
    """(name, module, output) of every module in ``modules``, in the order they finish, for one
    zero image; every hook is removed again, the model's modes are restored."""
    seen: Seen = []
    handles = [m.register_forward_hook(lambda mod, _i, out, n=n: seen.append((n, mod, out)))
               for n, m in modules]
    try:
        h, w = probe_size(blackbox)
        with torch.no_grad(), blackbox.evaluating():
            blackbox(torch.zeros(1, 3, h, w, device=blackbox.device))
    finally:
        for handle in handles:
            handle.remove()
    return seen


def _keep(store: dict, key: object, _module: nn.Module, *args: object) -> None:
    """A forward hook's body: the module's first output kept under ``key``; returns None, so the
    model's own output goes on unchanged."""
    store.setdefault(key, args[-1])


def _first(output: object) -> object:
    """A layer's tensor output (Hugging Face layers return a tuple whose first item it is)."""
    return output[0] if isinstance(output, tuple) and output else output


def _stride(shape: torch.Size, size: tuple[int, int]) -> int | None:
    """The power-of-two stride of a (B, C, h, w) map on a ``size`` input, None if it has none."""
    h, w = int(shape[-2]), int(shape[-1])
    if h < 2 or w < 2:  # a global pool, not a stage
        return None
    stride = round(size[0] / h)
    fits = math.ceil(size[0] / stride) == h and math.ceil(size[1] / stride) == w
    return stride if fits and stride >= 1 and not stride & (stride - 1) else None


def cnn_stages(blackbox: BlackBox) -> list[str] | None:
    """Names of the last main-path module at each stride 4, 8, 16, 32 (as many as exist, doubling,
    at least 4 and 8); None when the model has no such stages."""
    size = probe_size(blackbox)
    last: dict[int, str] = {}
    for name, module, out in _probe(blackbox, _modules(blackbox)):
        out = _first(out)
        if isinstance(module, nn.LayerNorm) or not (isinstance(out, torch.Tensor) and out.dim() == 4):
            continue  # a LayerNorm's 4-d output may be channels-last
        if any(part in SHORTCUT_NAMES for part in name.lower().split(".")):
            continue
        stride = _stride(out.shape, size)
        if stride is not None:
            last[stride] = name
    names = []
    for stride in STRIDES:
        if stride not in last:
            break
        names.append(last[stride])
    return names if len(names) >= 2 else None


def token_stages(blackbox: BlackBox) -> list[str] | None:
    """Names of the token norms read at evenly spaced depths (see the module docstring), as many as
    the input has strides with maps of at least 2×2; None for a model without token norms."""
    size = probe_size(blackbox)
    norms = [(n, m) for n, m in _modules(blackbox) if isinstance(m, nn.LayerNorm)]
    tokens = [n for n, _m, out in _probe(blackbox, norms) if is_token_output(_first(out), size)]
    if not tokens:
        return None
    firsts: dict[str, str] = {}
    for name in tokens:
        block = _block(name)
        if block and block not in firsts:
            firsts[block] = name
    depths = list(firsts.values())[1:] + [tokens[-1]]  # after 1, 2, ... blocks, then the final norm
    count = sum(1 for s in STRIDES if min(size) // s >= 2)
    if count < 2:
        return None
    return [depths[math.ceil(len(depths) * (i + 1) / count) - 1] for i in range(count)]


def find_stages(blackbox: BlackBox) -> list[str] | None:
    """The layers a masker reads from this classifier by default: CNN stages, else token depths."""
    if not isinstance(blackbox.model, nn.Module):
        return None
    return cnn_stages(blackbox) or token_stages(blackbox)


def as_map(output: object, module: nn.Module, input_size: tuple[int, int]) -> torch.Tensor:
    """A layer's output as a (B, C, h, w) map: conv maps as they are, tokens as their patch grid."""
    out = _first(output)
    if isinstance(out, torch.Tensor) and out.dim() == 4:
        return out.permute(0, 3, 1, 2) if isinstance(module, nn.LayerNorm) else out
    if isinstance(out, torch.Tensor) and is_token_output(out, input_size):
        return TokenGrid(input_size)(out)
    shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
    raise ConfigError(f"the masker cannot read this layer: it outputs {shape}, neither (B, C, H, W) maps "
                      "nor (B, tokens, C) patch tokens")


def resample(grid: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """``grid`` at ``size``: unchanged, average-pooled when it is finer, bilinear when coarser."""
    if tuple(grid.shape[-2:]) == size:
        return grid
    if grid.shape[-2] >= size[0] and grid.shape[-1] >= size[1]:
        return F.adaptive_avg_pool2d(grid, size)
    return F.interpolate(grid, size=size, mode="bilinear", align_corners=False)


def model_backbone(blackbox: BlackBox, layers: list[str] | None = None) -> FrozenBackbone:
    """The classifier inside ``blackbox`` as a frozen encoder reading ``layers`` (default: those
    ``find_stages`` finds) at strides 4, 8, 16, ...; ConfigError when none are found or named."""
    model = blackbox.model
    if not isinstance(model, nn.Module):
        raise ConfigError("the classifier is a plain function, not a module: it has no layers to read")
    names = list(layers) if layers else find_stages(blackbox)
    if not names:
        raise ConfigError(f"no spatial stages or token blocks found in {blackbox.name!r}; {HINT}")
    if len(names) > len(STRIDES):
        raise ConfigError(f"the masker reads at most {len(STRIDES)} layers, got {len(names)}")
    taps = [find_layer(blackbox, name, "the masker") for name in names]
    unique = list(dict.fromkeys(module for _, module in taps))
    strides = list(STRIDES[: len(taps)])

    def extract(x: torch.Tensor) -> Features:
        size = (int(x.shape[-2]), int(x.shape[-1]))
        seen: dict[nn.Module, object] = {}
        handles = [m.register_forward_hook(partial(_keep, seen, m)) for m in unique]
        try:
            model(x)
        finally:
            for handle in handles:
                handle.remove()
        maps = []
        for (name, module), stride in zip(taps, strides):
            if module not in seen:
                raise ConfigError(f"layer {name} does not run in the classifier's forward pass")
            grid = as_map(seen[module], module, size).float()
            maps.append(resample(grid, (math.ceil(size[0] / stride), math.ceil(size[1] / stride))))
        return maps

    backbone = FrozenBackbone(model, extract, blackbox.preprocess, [0] * len(taps), strides)
    h, w = probe_size(blackbox)
    probe = backbone(torch.zeros(1, 3, h, w, device=blackbox.device))
    backbone.channels = [int(f.shape[1]) for f in probe]
    backbone.layers = [name for name, _ in taps]
    backbone.head_pools = head_pools(blackbox, taps[-1][1])
    return backbone


def head_pools(blackbox: BlackBox, deepest: nn.Module) -> bool:
    """Whether the classifier's last linear layer reads the average of ``deepest``'s map (a CNN's
    global pooling, a transformer head over the mean patch token): then its rows w_s give a class
    activation map w_sᵀ X_ij there. A class-token head does not: the patch tokens of the last block
    reach the class token through attention only, and w_sᵀ X_ij over them says nothing of where
    class s is. Found by one probe forward of a seeded random image."""
    linears = [m for _n, m in _modules(blackbox) if isinstance(m, nn.Linear)]
    if not linears:
        return False
    seen: dict[str, object] = {}
    handles = [deepest.register_forward_hook(partial(_keep, seen, "map")),
               linears[-1].register_forward_hook(lambda _m, inputs, _o: _keep(seen, "head", _m, inputs[0]))]
    size = probe_size(blackbox)
    images = torch.rand(2, 3, *size, generator=torch.Generator().manual_seed(0)).to(blackbox.device)
    try:
        with torch.no_grad(), blackbox.evaluating():
            blackbox(images)
    finally:
        for handle in handles:
            handle.remove()
    head = seen.get("head")
    if "map" not in seen or not isinstance(head, torch.Tensor) or head.dim() != 2:
        return False
    pooled = as_map(seen["map"], deepest, size).float().mean(dim=(2, 3))
    return pooled.shape == head.shape and torch.allclose(pooled, head.float(), rtol=1e-4, atol=1e-5)
