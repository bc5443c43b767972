"""What every attribution method shares: targets resolved the same way, raw attributions made
masks by one rule, and the masks scored and packaged as our own methods' are.

Every raw attribution goes through ``normalise_saliency`` before it becomes a mask, so thresholds
(localisation, saliency metric, pointing) treat every method alike. Each Explanation also carries
p_original / p_deleted / p_preserved under the blur perturbation (σ0 = 10), computed as for our own
methods, so the deletion % drop is comparable across methods.

Captum is driven through ``TargetScore``, a module returning one score per image (the target logit,
or its probability, summed over K targets for top-k, or a callable target's score), so that
per-sample, top-k and callable targets work uniformly; Captum then always attributes output column 0.
"""

from __future__ import annotations

import warnings

import torch
from torch import nn

from ..blackbox import BlackBox, TargetSpec, as_blackbox
from ..explanation import Explanation
from ..images import image_batch
from ..objectives import class_score
from ..target import class_targets, resolve
from .optimise import Targets, build_explanation, final_scores, scoring_perturbation


class TargetScore(nn.Module):
    """One score per image (B, 1): target logit or probability, summed over the K targets given
    (a callable target: its own score)."""

    def __init__(self, blackbox: BlackBox, kind: str = "logit") -> None:
        super().__init__()
        self.blackbox = blackbox
        self.kind = kind

    def forward(self, images: torch.Tensor, targets: Targets) -> torch.Tensor:
        return class_score(self.blackbox(images), targets, self.kind).unsqueeze(1)


def setup(
    model, images: torch.Tensor, target: TargetSpec, what: str | None = None
) -> tuple[BlackBox, torch.Tensor, Targets]:
    """The black box, the images on its device as float32, and the resolved targets: class indices
    (B, K), or a callable target's ``ScoreTarget`` unless ``what`` (the method's name) needs classes."""
    blackbox = as_blackbox(model)
    x = image_batch(images).detach().to(blackbox.device, torch.float32)
    blackbox.check_images(x)
    with blackbox.evaluating():
        targets = resolve(blackbox, x, target) if what is None else class_targets(blackbox, x, target, what)
    targets = targets.to(x.device)
    return blackbox, x, targets


def finish(blackbox, images, x, masks, targets, method: str, params: dict) -> Explanation:
    """Score the masks with ``scoring_perturbation()`` (the rule: ``Explanation``) and package them."""
    pert = scoring_perturbation()
    with blackbox.evaluating():
        scores = final_scores(blackbox, pert.prepare(x), x, masks, targets)
    images = image_batch(images, check_values=False)  # a numpy batch is kept as the tensor it became
    return build_explanation(blackbox, images, masks, targets, method, scores, None, params, pert)


def quiet(fn, *args, **kwargs):
    """Call a Captum routine without its per-call "setting hooks" UserWarnings."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=UserWarning, module=r"captum\..*")
        return fn(*args, **kwargs)
