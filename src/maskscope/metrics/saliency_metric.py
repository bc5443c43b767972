"""The saliency metric of Dabkowski & Gal (2017, §3.2): how well does the tightest crop explain the class?

    s = log(max(a, 0.05)) − log p

a is the area of the tightest rectangular crop around the salient region as a fraction of the image,
p the class probability when the classifier sees only that crop, resized to its input size without
keeping the aspect ratio (the paper's choice). Cropping instead of masking keeps adversarial mask
artefacts out of the score. Lower is better; the "max box" (whole image) gives s = −log p.

Salient region = mask ≥ 0.5 (the paper's localisation threshold). Decision for an *empty* salient
region (no pixel ≥ threshold): the crop is the whole image. The paper does not define this case; a
detector that marks nothing has not narrowed the evidence down, so it gets the "max box" score
rather than a small arbitrary crop that the 0.05 area floor would reward.

Boxes can be given instead of masks (centre / full-image / ground-truth baselines); with several
boxes for one image the metric is averaged over them, as the paper does for ground-truth boxes.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from ..blackbox import BlackBox, TargetSpec, as_blackbox
from ..boxes import Box, mask_to_box, pixel_box
from ..objectives import class_score
from ..target import class_targets
from .base import Accumulator, check_masks

MIN_AREA = 0.05


def _box_groups(boxes: Sequence, batch: int) -> list[list[Sequence[float]]]:
    """Per image a list of boxes: accepts one box per image or a list of boxes per image."""
    if len(boxes) != batch:
        raise ValueError(f"got boxes for {len(boxes)} images, expected {batch}")
    groups = []
    for item in boxes:
        item = item.tolist() if isinstance(item, torch.Tensor) else item
        if len(item) == 4 and all(isinstance(v, (int, float)) for v in item):
            groups.append([item])
        elif len(item) == 0:
            raise ValueError("an image has an empty list of boxes")
        else:
            groups.append(list(item))
    return groups


def salient_boxes(masks: torch.Tensor, threshold: float = 0.5) -> list[Box]:
    """Tightest box of ``masks`` (B, 1, H, W) ≥ ``threshold`` per image; whole image when empty."""
    h, w = masks.shape[-2:]
    whole = (0.0, 0.0, float(w - 1), float(h - 1))
    return [mask_to_box(m, "fixed", threshold) or whole for m in masks]


@torch.no_grad()
def crop_scores(
    blackbox: BlackBox | torch.nn.Module,
    images: torch.Tensor,
    boxes: Sequence[Sequence[float]],
    target: TargetSpec | torch.Tensor = None,
    batch_size: int = 32,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Area fraction a (B,) and class probability p (B,) of one crop per image.

    Each crop is resized (bilinear, aspect ratio not kept) to the black box's input size, or to the
    image's own size when the black box has none. Probabilities of K > 1 targets are summed.
    """
    blackbox = as_blackbox(blackbox)
    x = images.detach().to(blackbox.device, torch.float32)
    h, w = x.shape[-2:]
    out_size = tuple(blackbox.input_size) if blackbox.input_size is not None else (h, w)
    if len(boxes) != x.shape[0]:
        raise ValueError(f"got {len(boxes)} boxes for {x.shape[0]} images")
    with blackbox.evaluating():
        targets = class_targets(blackbox, x, target, "a metric").to(x.device)
        crops, areas = [], []
        for image, box in zip(x, boxes):
            x0, y0, x1, y1 = pixel_box(box, (h, w))
            crop = image[None, :, y0 : y1 + 1, x0 : x1 + 1]
            crops.append(F.interpolate(crop, size=out_size, mode="bilinear", align_corners=False))
            areas.append((x1 - x0 + 1) * (y1 - y0 + 1) / (h * w))
        crops_t = torch.cat(crops)
        probs = torch.cat(
            [
                class_score(blackbox(crops_t[i : i + batch_size]), targets[i : i + batch_size], "prob")
                for i in range(0, len(crops_t), batch_size)
            ]
        )
    return torch.tensor(areas, dtype=torch.float32), probs.cpu()


def metric_from_parts(areas: torch.Tensor, probs: torch.Tensor, min_area: float = MIN_AREA) -> torch.Tensor:
    """s = log(max(a, min_area)) − log p, elementwise (p is floored at 1e-12 to stay finite)."""
    return torch.log(areas.clamp(min=min_area)) - torch.log(probs.clamp(min=1e-12))


def saliency_metric(
    blackbox: BlackBox | torch.nn.Module,
    images: torch.Tensor,
    target: TargetSpec | torch.Tensor = None,
    masks: torch.Tensor | None = None,
    boxes: Sequence | None = None,
    threshold: float = 0.5,
    min_area: float = MIN_AREA,
) -> torch.Tensor:
    """Dabkowski's saliency metric per image (B,), from salient ``masks`` (B, 1, H, W) or ``boxes``.

    ``boxes``: per image one box or a list of boxes ([xmin, ymin, xmax, ymax], inclusive pixels of
    ``images``); with several boxes the image's metric is the mean over them. Give exactly one of
    ``masks`` and ``boxes``. ``target`` as for methods (default: the model's top-1 class).
    """
    if (masks is None) == (boxes is None):
        raise ValueError("give either masks or boxes")
    blackbox = as_blackbox(blackbox)
    batch = images.shape[0]
    groups: list[list[Sequence[float]]]
    if masks is not None:
        if masks.shape[0] != batch or masks.shape[-2:] != images.shape[-2:]:
            raise ValueError(f"masks {tuple(masks.shape)} do not match images {tuple(images.shape)}")
        check_masks(masks)
        groups = [[b] for b in salient_boxes(masks.detach().cpu(), threshold)]
    else:
        assert boxes is not None  # exactly one of masks and boxes, checked above
        groups = _box_groups(boxes, batch)
    with torch.no_grad(), blackbox.evaluating():
        targets = class_targets(blackbox, images.to(blackbox.device), target, "a metric")
    flat_index = [i for i, group in enumerate(groups) for _ in group]
    flat_boxes = [b for group in groups for b in group]
    areas, probs = crop_scores(blackbox, images[flat_index], flat_boxes, targets[flat_index])
    values = metric_from_parts(areas, probs, min_area)
    index = torch.tensor(flat_index)
    sums = torch.zeros(batch).index_add_(0, index, values)
    counts = torch.zeros(batch).index_add_(0, index, torch.ones_like(values))
    return sums / counts


class SaliencyMetric(Accumulator):
    """Accumulates the saliency metric over a dataset; ``compute`` returns the mean (lower is better)."""

    def __init__(
        self, blackbox: BlackBox | torch.nn.Module, threshold: float = 0.5, min_area: float = MIN_AREA
    ) -> None:
        self.blackbox = as_blackbox(blackbox)
        self.threshold = threshold
        self.min_area = min_area
        super().__init__()

    def update(
        self,
        images: torch.Tensor,
        target: TargetSpec | torch.Tensor = None,
        masks: torch.Tensor | None = None,
        boxes: Sequence | None = None,
    ) -> torch.Tensor:
        values = saliency_metric(self.blackbox, images, target, masks, boxes, self.threshold, self.min_area)
        self.add(values)
        return values
