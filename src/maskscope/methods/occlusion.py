"""Occlusion (Zeiler & Fergus 2014) through Captum's ``Occlusion``."""

from __future__ import annotations

import torch
from captum.attr import Occlusion

from ..blackbox import TargetSpec
from ..errors import ConfigError
from ..explanation import Explanation
from ..masks import normalise_saliency
from ..perturb import fill_perturbation, pixel_scale
from .attribution import TargetScore, finish, quiet, setup


def occlusion(
    model,
    images: torch.Tensor,
    target: TargetSpec = None,
    window: int | None = None,
    stride: int | None = None,
    baseline: str = "mean",
    score: str = "prob",
    perturbations_per_eval: int = 16,
) -> Explanation:
    """Zeiler & Fergus (2014) occlusion: slide a ``window``² patch of ``baseline`` (per-image mean
    colour by default; ``zero``, ``blur``) with ``stride`` and record the score drop per pixel.

    Cost: ((H − window)/stride + 1)² forwards per image (169 at 224 px with 32/16), in batches of
    ``perturbations_per_eval`` per image. Window and stride default to 32 and 16 px at 224 px,
    scaled with the image's short side (9 and 5 at 64 px), like the mask blur of meaningful.
    """
    blackbox, x, targets = setup(model, images, target, "occlusion")
    scale = pixel_scale(x.shape)
    window = window if window is not None else max(1, round(32 * scale))
    stride = stride if stride is not None else max(1, round(16 * scale))
    if not (1 <= stride <= window <= min(x.shape[-2:])):
        raise ConfigError(f"occlusion needs 1 <= stride <= window <= image side, got {stride}, {window}")
    with torch.no_grad(), blackbox.evaluating():
        raw = quiet(
            Occlusion(TargetScore(blackbox, score)).attribute,
            x,
            sliding_window_shapes=(x.shape[1], window, window),
            strides=(x.shape[1], stride, stride),
            baselines=fill_perturbation(baseline, what="occlusion baseline").reference(x),
            target=0,
            additional_forward_args=(targets,),
            perturbations_per_eval=perturbations_per_eval,
        )
    masks = normalise_saliency(raw, "positive")
    return finish(
        blackbox,
        images,
        x,
        masks,
        targets,
        "occlusion",
        {"window": window, "stride": stride, "baseline": baseline, "score": score, "sign": "positive"},
    )
