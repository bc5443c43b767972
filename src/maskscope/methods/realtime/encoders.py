"""The masker's encoders: what gives the decoder its maps at strides 4, 8, 16, ... (deepest last).

``SmallEncoder`` is trained from scratch with the masker (small images); ``FrozenBackbone`` reads a
pretrained classifier's features read-only, either the embedded EfficientNet's
(``efficientnet_backbone``) or any user model's (``backbone.model_backbone``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from ...blackbox import eval_mode
from ...errors import ConfigError

Features = list[torch.Tensor]


def group_norm(channels: int) -> nn.GroupNorm:
    """GroupNorm with up to 16 groups of at least 2 channels."""
    groups = next((g for g in (16, 8, 4, 2) if channels % g == 0 and channels // g >= 2), 1)
    return nn.GroupNorm(groups, channels)


class Encoder(nn.Module):
    """What the masker reads of an encoder: its maps' ``channels`` and ``strides``, deepest last."""

    channels: list[int]
    strides: list[int]


class SmallEncoder(Encoder):
    """The paper's from-scratch encoder for small images: 3 blocks of 5 convolutions, each halving
    the resolution once; returns the maps at strides 4 and 8 (the stride-2 map is not used)."""

    def __init__(self, widths: Sequence[int] = (32, 64, 128), convs: int = 5) -> None:
        super().__init__()
        blocks, previous = [], 3
        for width in widths:
            layers: list[nn.Module] = []
            for i in range(convs):
                first = i == 0
                conv_in = previous if first else width
                layers += [
                    nn.Conv2d(conv_in, width, 3, stride=2 if first else 1, padding=1, bias=False),
                    group_norm(width),
                    nn.ReLU(inplace=True),
                ]
            blocks.append(nn.Sequential(*layers))
            previous = width
        self.blocks = nn.ModuleList(blocks)
        self.channels = list(widths[1:])
        self.strides = [4, 8]

    def forward(self, images: torch.Tensor) -> Features:
        x = (images - 0.5) / 0.25
        out = []
        for block in self.blocks:
            x = block(x)
            out.append(x)
        return out[1:]


class FrozenBackbone(Encoder):
    """A pretrained feature extractor used read-only: never trained, never registered as a submodule.

    The wrapped model is kept out of ``_modules`` on purpose: the masker's ``state_dict`` then holds
    only what was learned (decoder + embedding), an optimiser or DDP never sees the backbone's
    parameters, and ``masker.train()`` cannot switch the user's model to training mode. Features are
    computed under ``no_grad`` in eval mode and every submodule's mode is restored afterwards.

    Args:
        model: the module whose parameters the features depend on (for device and mode handling).
        extract: function (normalised images) → list of maps at strides 4, 8, 16, 32.
        preprocess: [0, 1] images → the backbone's input (resize, normalise).
        channels: channels of each map, in order.

    ``layers`` names the classifier's layers it reads (the user's own model only), ``head_pools``
    whether the classifier's head reads the deepest map's average (see ``backbone.head_pools``).
    """

    layers: list[str] | None = None
    head_pools: bool = True

    def __init__(
        self,
        model: nn.Module,
        extract: Callable[[torch.Tensor], Features],
        preprocess: Callable[[torch.Tensor], torch.Tensor],
        channels: Sequence[int],
        strides: Sequence[int] = (4, 8, 16, 32),
    ) -> None:
        super().__init__()
        self.__dict__["backbone"] = model  # deliberately not a submodule (see class docstring)
        self._extract = extract
        self._preprocess = preprocess
        self.channels = list(channels)
        self.strides = list(strides)

    def forward(self, images: torch.Tensor) -> Features:
        with eval_mode(self.backbone), torch.no_grad():
            return [f.detach() for f in self._extract(self._preprocess(images))]


def efficientnet_backbone(blackbox) -> FrozenBackbone:
    """The EfficientNet (``efficientnet_lite_pytorch``) inside a BlackBox as a frozen 4-scale encoder.

    Taps the last block before each stride-2 block (strides 4, 8, 16) and, as the stride-32 map,
    the head convolution's output: the 1280 features the classifier's linear layer reads, so the
    class embedding of the feature filter starts from linearly class-separable features.
    """
    model = blackbox.model
    if not (hasattr(model, "_conv_stem") and hasattr(model, "_blocks") and hasattr(model, "_conv_head")):
        raise ConfigError("the classifier is not an EfficientNet; give the masker an encoder")

    def stride_of(block) -> int:
        s = block._block_args.stride
        return int(s[0] if isinstance(s, (list, tuple)) else s)

    blocks = list(model._blocks)
    taps = [i for i in range(len(blocks) - 1) if stride_of(blocks[i + 1]) == 2]
    if len(taps) < 3:
        raise ConfigError("the EfficientNet has fewer than 4 scales")
    taps = taps[-3:]  # strides 4, 8, 16

    def extract(x: torch.Tensor) -> Features:
        x = model._swish(model._bn0(model._conv_stem(x)))
        out = []
        for i, block in enumerate(blocks):
            x = block(x)  # eval mode: no drop-connect
            if i in taps:
                out.append(x)
        out.append(model._swish(model._bn1(model._conv_head(x))))
        return out

    channels = [int(blocks[i]._bn2.num_features) for i in taps] + [int(model._bn1.num_features)]
    return FrozenBackbone(model, extract, blackbox.preprocess, channels)
