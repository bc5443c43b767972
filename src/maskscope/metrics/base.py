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


def check_masks(masks) -> None:
    """NonFiniteError for a mask holding NaN or inf: every metric would score it as a number
    (NaN compares false with every threshold), so it is refused where a metric takes it in."""
    require_finite(torch.as_tensor(masks).detach(), "the masks hold")


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
