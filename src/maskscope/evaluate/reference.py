"""Reference rows of an evaluation: the papers' trivial box baselines (``center_box``,
``full_image``) and the annotated boxes as masks (``ground_truth_boxes``), scored by the same
metrics as any method. They have a method's call shape, ``fn(model, images, target=None)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..blackbox import BlackBox, TargetSpec
from ..boxes import box_area, box_to_mask
from ..boxes import center_box as centred_half_box
from ..errors import ConfigError
from ..explanation import Explanation
from ..methods.attribution import finish, setup


def center_box(model, images: torch.Tensor, target: TargetSpec = None) -> Explanation:
    """The "Center" baseline: a binary mask of the centred box spanning half the image area."""
    blackbox, x, targets = setup(model, images, target)
    h, w = x.shape[-2:]
    box = box_to_mask(centred_half_box(h, w), (h, w), x.device)
    masks = box.expand(x.shape[0], 1, h, w).clone()
    return finish(blackbox, images, x, masks, targets, "center", {"box": list(centred_half_box(h, w))})


def full_image(model, images: torch.Tensor, target: TargetSpec = None) -> Explanation:
    """The "Max box" baseline: everything is salient."""
    blackbox, x, targets = setup(model, images, target)
    masks = torch.ones(x.shape[0], 1, *x.shape[-2:], device=x.device)
    return finish(blackbox, images, x, masks, targets, "full", {})


def ground_truth_boxes(
    images: torch.Tensor,
    boxes_list: Sequence[Sequence[Sequence[float]]],
    model: BlackBox | nn.Module | None = None,
    target: TargetSpec = None,
) -> Explanation:
    """Annotated boxes as a reference "method": mask = each image's *largest* box (pixels of ``images``).

    The largest box, not the union of the boxes: the localisation protocols (Fong Table 1,
    Dabkowski §4.1) count a box as correct at IoU > 0.5 with *any* ground-truth box, and the box
    around a union of far-apart objects need not overlap any single one that well, so the
    reference row would fail to localise itself. (The saliency metric's ground-truth row still
    averages over every box, as Dabkowski & Gal do: ``evaluate.runner``.)

    With ``model`` the targets are resolved and the blur scores filled like any method's; without it,
    ``target`` must be class indices (an int, a list or a tensor) or is left as −1 ("unknown"), and no
    probabilities are stored.
    """
    if images.dim() != 4 or len(boxes_list) != images.shape[0]:
        raise ConfigError(
            f"need one list of boxes per image: {len(boxes_list)} lists for shape {tuple(images.shape)}"
        )
    size = (images.shape[-2], images.shape[-1])
    if any(len(boxes) == 0 for boxes in boxes_list):
        raise ConfigError("every image needs at least one ground-truth box")
    masks = torch.stack(
        [box_to_mask(max(boxes, key=box_area), size, images.device) for boxes in boxes_list]
    ).unsqueeze(1)
    if model is not None:
        blackbox, x, targets = setup(model, images, target)
        return finish(blackbox, images, x, masks.to(x.device), targets, "ground-truth", {})
    batch = images.shape[0]
    if target is None:
        targets = torch.full((batch, 1), -1, dtype=torch.long)
    else:
        given = torch.as_tensor(target, dtype=torch.long)
        targets = given.view(1, 1).expand(batch, 1).clone() if given.numel() == 1 else given.view(batch, -1)
    names = ["unknown" if int(t) < 0 else f"class {int(t)}" for t in targets[:, 0]]
    return Explanation(
        masks=masks, images=images.detach(), targets=targets, class_names=names, method="ground-truth"
    )
