"""The masking model of Dabkowski & Gal (2017, §4): a U-Net that maps (image, class selector) → mask.

Encoder (``encoders.py``): multi-scale feature maps at strides 4, 8, 16 and 32 (deepest last).
Either a *frozen* pretrained backbone — the black box's own EfficientNet-Lite0 or the user's own
model, used read-only under ``no_grad`` — or, for small images, a small encoder trained from
scratch (the paper's CIFAR-10 variant: 3 down-sampling blocks of 5 convolutions, 1 bottleneck per
upsampler).

Decoder: the feature filter Y = X·σ(Xᵀ C_s) on the deepest map (C_s = learned embedding of the
selected class) does the coarse localisation; upsampler blocks (transposed convolution ×2, concat
the encoder's skip map, bottleneck blocks) refine it up to 1/4 of the input resolution; a 1×1
convolution gives two channels and M = |C0| / (|C0| + |C1|), bilinearly upsampled ×4.

Normalisation is GroupNorm rather than BatchNorm: no running statistics means a mask never depends
on what else is in the batch, and data-parallel replicas hold identical state after every step.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ...errors import ConfigError
from .encoders import (  # SmallEncoder, efficientnet_backbone: imported from here before encoders.py
    Encoder,
    Features,
    FrozenBackbone,
    SmallEncoder,  # noqa: F401
    efficientnet_backbone,  # noqa: F401
    group_norm,
)


class Bottleneck(nn.Module):
    """ResNet bottleneck (1×1 reduce, 3×3, 1×1 expand) with a residual connection."""

    def __init__(self, in_channels: int, out_channels: int, reduction: int = 4) -> None:
        super().__init__()
        mid = max(8, out_channels // reduction)
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, mid, 1, bias=False),
            group_norm(mid),
            nn.ReLU(inplace=True),
            nn.Conv2d(mid, mid, 3, padding=1, bias=False),
            group_norm(mid),
            nn.ReLU(inplace=True),
            nn.Conv2d(mid, out_channels, 1, bias=False),
            group_norm(out_channels),
        )
        self.shortcut = (
            nn.Identity()
            if in_channels == out_channels
            else nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, bias=False), group_norm(out_channels))
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.body(x) + self.shortcut(x))


class Upsampler(nn.Module):
    """×2 transposed convolution, concatenation with the encoder's skip map, bottleneck blocks."""

    def __init__(self, in_channels: int, skip_channels: int, out_channels: int, blocks: int) -> None:
        super().__init__()
        self.up = nn.Sequential(
            nn.ConvTranspose2d(in_channels, out_channels, 2, stride=2, bias=False),
            group_norm(out_channels),
            nn.ReLU(inplace=True),
        )
        layers = [Bottleneck(out_channels + skip_channels, out_channels)]
        layers += [Bottleneck(out_channels, out_channels) for _ in range(blocks - 1)]
        self.blocks = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = self.up(x)
        if x.shape[-2:] != skip.shape[-2:]:  # odd input sizes: align to the skip map
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return self.blocks(torch.cat([x, skip], dim=1))


SELECTORS = ("learned", "classifier-init", "classifier-tied")


class FeatureFilter(nn.Module):
    """Y_ij = X_ij · σ(X_ijᵀ C_s) (paper eq. 7): attenuates locations unrelated to class s.

    Also returns the per-image maximum of the attention logit X_ijᵀ C_s, which the auxiliary loss
    pushes up for a true class and down for a fake one (paper §4.1) to train the embedding faster.

    Where C_s comes from (``selector``):

    - ``learned``: a free embedding, randomly initialised (the paper). With ~2 training images per
      class it barely learns, and the masks then ignore the class asked for.
    - ``classifier-init``: the embedding starts from the classifier's last-layer rows w_s (scaled),
      plus a shared learned bias, and is trained from there.
    - ``classifier-tied``: the logit is a_s·(X_ijᵀ w_s) + b_s with w_s the classifier's own row, kept
      fixed, and only a scale and bias learned (shared, plus a per-class offset). X_ijᵀ w_s is the
      class activation map: it already says where class s is, for every class, trained or not.

    The classifier rows are not stored in checkpoints (a non-persistent buffer): they are read
    from the classifier when the masker is built, like the frozen encoder.
    """

    # σ(0.5·CAM − 3): on EfficientNet-Lite0 the true class's CAM averages ~9 over a 7×7 map (peak
    # ~33) and a wrong class's peaks near 2, so the gate starts open on the object and shut elsewhere.
    INIT_SCALE, INIT_BIAS = 0.5, -3.0
    class_weights: torch.Tensor  # a buffer, "classifier-tied" only

    def __init__(
        self,
        channels: int,
        num_classes: int,
        selector: str = "learned",
        class_weights: torch.Tensor | None = None,
    ) -> None:
        super().__init__()
        if selector not in SELECTORS:
            raise ConfigError(f"unknown class selector {selector!r}; choose one of {', '.join(SELECTORS)}")
        self.selector = selector
        if selector == "learned":
            self.embedding = nn.Embedding(num_classes, channels)
            nn.init.normal_(self.embedding.weight, std=channels**-0.5)
            return
        if class_weights is None or tuple(class_weights.shape) != (num_classes, channels):
            raise ConfigError(
                f"selector {selector!r} needs the classifier's last linear layer over the "
                f"{channels}-channel deepest map ({num_classes} × {channels} weights)"
            )
        if selector == "classifier-tied":
            self.register_buffer("class_weights", class_weights.detach().clone().float(), persistent=False)
            self.scale = nn.Parameter(torch.tensor(self.INIT_SCALE))
            self.bias = nn.Parameter(torch.tensor(self.INIT_BIAS))
            self.class_scale = nn.Embedding(num_classes, 1)
            self.class_bias = nn.Embedding(num_classes, 1)
            nn.init.zeros_(self.class_scale.weight)
            nn.init.zeros_(self.class_bias.weight)
            return
        self.embedding = nn.Embedding(num_classes, channels)
        with torch.no_grad():
            self.embedding.weight.copy_(class_weights.detach().float() * self.INIT_SCALE)
        self.bias = nn.Parameter(torch.tensor(self.INIT_BIAS))

    def attention_logits(self, x: torch.Tensor, selectors: torch.Tensor) -> torch.Tensor:
        """(B, 1, h, w) logits of the gate σ(·) for class ``selectors`` at every location."""
        if self.selector == "classifier-tied":
            cam = torch.einsum("bchw,bc->bhw", x, self.class_weights[selectors].to(x.dtype))
            scale = self.scale * (1 + self.class_scale(selectors)[:, 0])
            bias = self.bias + self.class_bias(selectors)[:, 0]
            logits = scale.view(-1, 1, 1) * cam + bias.view(-1, 1, 1)
        else:
            c = self.embedding(selectors)  # (B, C)
            logits = torch.einsum("bchw,bc->bhw", x, c.to(x.dtype))
            if self.selector == "classifier-init":
                logits = logits + self.bias
        return logits.unsqueeze(1)

    def forward(
        self, x: torch.Tensor, selectors: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(filtered map Y, attention maxima (B,), gate σ(logits) (B, 1, h, w))."""
        logits = self.attention_logits(x, selectors)
        gate = torch.sigmoid(logits)
        return x * gate.to(x.dtype), logits.flatten(1).amax(dim=1), gate


def classifier_head(model: object, channels: int, num_classes: int) -> torch.Tensor | None:
    """The weights (num_classes, channels) of the classifier's last linear layer when it reads a
    ``channels``-wide feature (as after global pooling of the deepest map), else None."""
    if not isinstance(model, nn.Module):  # a plain callable has no layers to read
        return None
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not linears:
        return None
    last = linears[-1]
    if (last.in_features, last.out_features) != (channels, num_classes):
        return None
    return last.weight.detach()


class MaskDecoder(nn.Module):
    """Feature filter + upsamplers + two-channel head: everything trained on a frozen encoder."""

    def __init__(
        self,
        channels: Sequence[int],
        num_classes: int,
        widths: Sequence[int],
        blocks: int,
        selector: str = "learned",
        class_weights: torch.Tensor | None = None,
        output_gate: bool = False,
    ) -> None:
        super().__init__()
        if len(widths) != len(channels) - 1:
            raise ConfigError(f"need {len(channels) - 1} upsampler widths for {len(channels)} encoder maps")
        self.filter = FeatureFilter(channels[-1], num_classes, selector, class_weights)
        self.output_gate = output_gate
        ups, previous = [], channels[-1]
        for skip, width in zip(reversed(channels[:-1]), widths):
            ups.append(Upsampler(previous, skip, width, blocks))
            previous = width
        self.upsamplers = nn.ModuleList(ups)
        self.head = nn.Conv2d(previous, 2, 1)

    def forward(self, features: Features, selectors: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Low-resolution masks (B, 1, h, w) at the shallowest map's resolution, attention maxima (B,).

        With ``output_gate`` the mask is also multiplied by the filter's gate σ(·), upsampled: the
        decoder's GroupNorm layers undo any *uniform* attenuation of the deepest map, so a wrong
        class (gate low everywhere) would otherwise get the same mask as the right one — only the
        gate's spatial pattern would reach the output, and the skip maps carry class-free saliency.
        """
        x, attention, gate = self.filter(features[-1], selectors)
        for up, skip in zip(self.upsamplers, reversed(features[:-1])):
            x = up(x, skip)
        c = self.head(x).float().abs()
        masks = c[:, :1] / (c[:, :1] + c[:, 1:] + 1e-6)
        if self.output_gate:
            gate = F.interpolate(gate.float(), size=masks.shape[-2:], mode="bilinear", align_corners=False)
            masks = masks * gate
        return masks, attention.float()


class RealTimeMasker(nn.Module):
    """Encoder + decoder: ``masker(images, selectors)`` → salient masks (B, 1, H, W) in [0, 1].

    Args:
        encoder: ``FrozenBackbone`` (pretrained, read-only) or a trainable module such as
            ``SmallEncoder``; it must expose ``channels`` and ``strides`` (4, 8, ... doubling).
        num_classes: size of the class-selector embedding (the black box's class count).
        widths: output channels of the upsamplers, deepest first (paper: 768, 384, 192 on ResNet-50).
        blocks: bottleneck blocks per upsampler (paper: 3 on ImageNet, 1 on CIFAR-10).
        input_size: (H, W) at which the encoder sees images; ``None`` = the images' own size.
        config: JSON-able description stored in checkpoints to rebuild the model.
        selector, class_weights: where the class embedding comes from (see ``FeatureFilter``).
        output_gate: multiply the mask by the class gate (see ``MaskDecoder.forward``).
    """

    def __init__(
        self,
        encoder: Encoder,
        num_classes: int,
        widths: Sequence[int],
        blocks: int,
        input_size: tuple[int, int] | None,
        config: dict | None = None,
        selector: str = "learned",
        class_weights: torch.Tensor | None = None,
        output_gate: bool = False,
    ) -> None:
        super().__init__()
        strides = list(encoder.strides)
        if strides[0] != 4 or any(b != 2 * a for a, b in zip(strides, strides[1:])):
            raise ConfigError(f"encoder strides must be 4, 8, 16, ... (doubling), got {strides}")
        self.encoder = encoder
        self.decoder = MaskDecoder(
            encoder.channels, num_classes, widths, blocks, selector, class_weights, output_gate
        )
        self.num_classes = num_classes
        self.input_size = tuple(input_size) if input_size is not None else None
        self.config = dict(config or {})

    @property
    def frozen_encoder(self) -> bool:
        return isinstance(self.encoder, FrozenBackbone)

    def prepare(self, images: torch.Tensor) -> torch.Tensor:
        """Resize [0, 1] images to the masker's working size."""
        if self.input_size is not None and tuple(images.shape[-2:]) != self.input_size:
            images = F.interpolate(images, size=self.input_size, mode="bilinear", align_corners=False)
        return images

    def encode(self, images: torch.Tensor) -> Features:
        return self.encoder(self.prepare(images))

    def forward(
        self,
        images: torch.Tensor,
        selectors: torch.Tensor,
        features: Features | None = None,
        size: tuple[int, int] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Masks (B, 1, H, W) at ``size`` (default: the images' size) and attention maxima (B,).

        ``features`` may be given precomputed (cached) for a frozen encoder.
        """
        if features is None:
            features = self.encode(images)
        low, attention = self.decoder(features, selectors.view(-1).long())
        wanted = tuple(size) if size is not None else tuple(images.shape[-2:])
        work = self.input_size or tuple(images.shape[-2:])
        # bilinear ×4 to the working resolution (paper), then to the requested size if different
        masks = F.interpolate(low, size=work, mode="bilinear", align_corners=False)
        if work != wanted:
            masks = F.interpolate(masks, size=wanted, mode="bilinear", align_corners=False)
        return masks.clamp(0, 1), attention
