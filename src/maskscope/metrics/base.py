"""What every protocol module shares: the accumulator base and the batched class probability.

An accumulator collects per-image values with ``update`` (one call per batch) and reduces them with
``compute`` at the end, as torchmetrics and pytorch-grad-cam do; ``compute`` before any ``update``
is an error rather than a silent 0 or NaN, since a table row over no images means nothing.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import torch

from ..blackbox import BlackBox, as_blackbox, require_finite
from ..errors import ConfigError
from ..objectives import class_score
from ..target import class_targets

NO_IMAGES = "no images were evaluated"


class Accumulator:
    """Per-image values collected by ``update`` and averaged by ``compute``."""

    def __init__(self) -> None:
        self.values: list[float] = []

    def add(self, values: Iterable[float]) -> None:
        self.values.extend(float(v) for v in values)

    def mean(self, values: list[float] | None = None) -> float:
        values = self.values if values is None else values
        if not values:
            raise ValueError(NO_IMAGES)
        return math.fsum(values) / len(values)

    def update(self, *args, **kwargs):  # pragma: no cover - each protocol defines its own
        raise NotImplementedError

    def compute(self):
        return self.mean()

    def __len__(self) -> int:
        return len(self.values)


class BoxAccumulator(Accumulator):
    """An accumulator of one 0/1 outcome per image from its mask and ground-truth boxes."""

    def outcome(self, mask: torch.Tensor, boxes: Sequence[Sequence[float]]) -> bool:  # pragma: no cover
        raise NotImplementedError

    def update(
        self, masks: torch.Tensor | Sequence[torch.Tensor], boxes_list: Sequence[Sequence[Sequence[float]]]
    ) -> None:
        """masks: (B, 1, H, W) or a list of (H, W) / (1, H, W) masks; boxes_list: the boxes of each image."""
        if len(masks) != len(boxes_list):
            raise ValueError(f"got {len(masks)} masks but {len(boxes_list)} box lists")
        for mask, boxes in zip(masks, boxes_list):
            self.values.append(float(self.outcome(mask, boxes)))


def check_masks(masks, batched: bool = True) -> None:
    """Refuse, in one line, what a metric cannot score as a mask: NaN or inf (NonFiniteError: NaN
    compares false with every threshold), a batch not shaped (B, 1, H, W) or (B, H, W) (one mask
    (H, W) or (1, H, W) where ``batched`` is False), or values outside [0, 1] (ConfigError). Raw
    attributions (Captum's, with signs, channels and any scale) are not masks: the metrics would
    turn them into meaningless "% drops"; ``maskscope.masks.normalise_saliency`` maps them to
    [0, 1] explicitly, as the gradient baselines do."""
    m = torch.as_tensor(masks).detach()
    require_finite(m, "the masks hold")
    shapes = "(B, 1, H, W) or (B, H, W)" if batched else "(H, W) or (1, H, W)"
    ok = (m.dim() == 4 and m.shape[1] == 1) or m.dim() == 3 if batched else (
        m.dim() == 2 or (m.dim() == 3 and m.shape[0] == 1))
    if not ok:
        raise ConfigError(f"masks must be shaped {shapes}, got {tuple(m.shape)}; attributions with "
                          "channels: maskscope.masks.normalise_saliency(a) first")
    if m.numel() and (float(m.min()) < -1e-6 or float(m.max()) > 1 + 1e-6):
        low, high = float(m.min()), float(m.max())
        raise ConfigError(f"masks must hold values in [0, 1] (1 = salient), got [{low:.3g}, {high:.3g}]; "
                          "scale attributions with maskscope.masks.normalise_saliency")


def setup_batch(blackbox, images: torch.Tensor, target) -> tuple[BlackBox, torch.Tensor, torch.Tensor]:
    """The black box, the images on its device as float, and the resolved targets (B, K)."""
    bb = as_blackbox(blackbox)
    bb.check_images(images)
    x = images.detach().to(bb.device, torch.float32)
    with torch.no_grad(), bb.evaluating():
        targets = class_targets(bb, x, target, "a metric").to(x.device)
    return bb, x, targets


@torch.no_grad()
def class_probs(bb: BlackBox, x: torch.Tensor, targets: torch.Tensor, batch_size: int) -> torch.Tensor:
    """Class probability (summed over K targets) of each image in x (N,), evaluated in chunks."""
    with bb.evaluating():
        return torch.cat(
            [
                class_score(bb(x[i : i + batch_size]), targets[i : i + batch_size], "prob")
                for i in range(0, x.shape[0], batch_size)
            ]
        )
