"""Real-time saliency (Dabkowski & Gal 2017): a trained masking model gives the mask in one pass.

``realtime_saliency(model, images, target=..., masker=...)`` returns the same ``Explanation`` as the
iterative methods. ``masker`` is a loaded ``RealTimeMasker``, a checkpoint path, or ``None`` for the
masker shipped for the default classifier.
"""

from __future__ import annotations

import os

import torch

from ...blackbox import BlackBox, TargetSpec, as_blackbox
from ...errors import ConfigError
from ...explanation import Explanation
from ...images import image_batch
from ...target import class_targets
from ..optimise import build_explanation, final_scores, scoring_perturbation
from .checkpoint import (
    build_masker,
    classifier_fingerprint,
    export_weights,
    load_masker,
    masker_config,
    shipped_masker_path,
)
from .encoders import FrozenBackbone, SmallEncoder, efficientnet_backbone
from .model import MaskDecoder, RealTimeMasker
from .objective import Weights, realtime_loss
from .train import TrainConfig, train_masker


def realtime_saliency(
    model: BlackBox | torch.nn.Module,
    images: torch.Tensor,
    target: TargetSpec = None,
    masker: RealTimeMasker | str | os.PathLike | None = None,
    batch_size: int = 32,
    scores: bool = True,
    progress: bool = False,
    allow_other_classifier: bool = False,
) -> Explanation:
    """Salient masks (1 = salient) from one forward pass of a trained masker per batch.

    Args:
        model: the black box the masker was trained for.
        images: (B, 3, H, W) in [0, 1]; masks come back at this size.
        target: int, class name, per-sample list/tensor or ``"top1"`` (default). The masker takes
            one class selector per image; with ``"topK"`` the first class is used.
        masker: a ``RealTimeMasker``, a checkpoint path, or ``None`` (the shipped masker).
        scores: also compute p_original / p_deleted / p_preserved (3 classifier passes, with
            ``Blur()`` as for every method that optimises against no perturbation: ``Explanation``).
        allow_other_classifier: load a masker checkpoint even if it was trained for a classifier
            with other weights (refused by default: its masks would explain that other model).
    """
    pert = scoring_perturbation()

    blackbox = as_blackbox(model)
    images = image_batch(images)
    blackbox.check_images(images)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"batch size must be at least 1, got {batch_size}")
    if not isinstance(masker, RealTimeMasker):
        masker = load_masker(blackbox, masker, allow_other_classifier=allow_other_classifier)
    device = blackbox.device
    x = images.detach().to(device=device, dtype=torch.float32)
    with blackbox.evaluating():
        targets = class_targets(blackbox, x, target, "the real-time masker").to(device)
        from .validate import predict_masks

        masks = predict_masks(masker, x, targets[:, 0], batch_size, progress).to(device)
        if scores:
            result = final_scores(blackbox, pert.prepare(x), x, masks, targets[:, :1])
        else:
            nan = torch.full((x.shape[0],), float("nan"))
            result = {"p_original": nan, "p_deleted": nan, "p_preserved": nan}
    return build_explanation(
        blackbox,
        images,
        masks,
        targets[:, :1],
        "realtime",
        result,
        None,
        {"masker_classifier": masker.config.get("classifier"), "encoder": masker.config.get("encoder")},
        pert if scores else None,
    )


__all__ = [
    "FrozenBackbone",
    "MaskDecoder",
    "RealTimeMasker",
    "SmallEncoder",
    "TrainConfig",
    "Weights",
    "build_masker",
    "classifier_fingerprint",
    "efficientnet_backbone",
    "export_weights",
    "load_masker",
    "masker_config",
    "realtime_loss",
    "realtime_saliency",
    "shipped_masker_path",
    "train_masker",
]
