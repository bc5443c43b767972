"""Validation of a masker with the paper's two measures (§5.1): localisation error of the tightest
box around mask ≥ 0.5 (IoU > 0.5 with any ground-truth box), and the saliency metric. The class
selector is the ground-truth label, as in the paper's protocol."""

from __future__ import annotations

import torch
from tqdm.auto import tqdm

from ...blackbox import BlackBox
from ...metrics.localisation import LocalisationError
from ...metrics.saliency_metric import SaliencyMetric
from .model import RealTimeMasker


@torch.no_grad()
def predict_masks(
    masker: RealTimeMasker,
    images: torch.Tensor,
    selectors: torch.Tensor,
    batch_size: int = 64,
    progress: bool = False,
) -> torch.Tensor:
    """Masks (B, 1, H, W) for [0, 1] images (or uint8 pixels), in eval mode, batch by batch."""
    was_training = masker.training
    masker.eval()
    device = next(masker.decoder.parameters()).device
    out = []
    try:
        for i in tqdm(range(0, len(images), batch_size), desc="masks", disable=not progress, leave=False):
            x = images[i : i + batch_size].to(device)
            x = x.float() / 255 if x.dtype == torch.uint8 else x.float()
            out.append(masker(x, selectors[i : i + batch_size].to(device))[0].cpu())
    finally:
        masker.train(was_training)
    return torch.cat(out)


def evaluate_masks(
    blackbox: BlackBox,
    images: torch.Tensor,
    labels: torch.Tensor,
    boxes: list,
    masks: torch.Tensor,
) -> dict[str, float]:
    """Localisation error (fraction) and mean saliency metric of given masks; images in [0, 1]."""
    loc = LocalisationError(mode="fixed", alpha=0.5)
    loc.update(masks, boxes)
    sal = SaliencyMetric(blackbox, threshold=0.5)
    for i in range(0, len(images), 64):
        sal.update(images[i : i + 64].float(), labels[i : i + 64], masks=masks[i : i + 64])
    return {"loc_error": loc.compute(), "saliency_metric": sal.compute(), "mean_area": float(masks.mean())}


def evaluate_masker(
    masker: RealTimeMasker,
    blackbox: BlackBox,
    pixels: torch.Tensor,
    labels: torch.Tensor,
    boxes: list,
    progress: bool = False,
) -> dict[str, float]:
    """Validate ``masker`` on uint8 images (N, 3, H, W) with ground-truth labels and boxes (pixels)."""
    masks = predict_masks(masker, pixels, labels, progress=progress)
    images = pixels.cpu().float() / 255
    return evaluate_masks(blackbox, images, labels.cpu(), boxes, masks)
