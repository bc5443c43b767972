"""Adversarial examples seen through masks (Fong & Vedaldi 2017, §5.5 and Fig. 10).

Three steps, each usable on its own:

1. ``iterative_fgsm``: Kurakin et al.'s iterative fast-gradient-sign attack (the "basic iterative
   method"), the one the paper uses: ε = 8 and step 1 on the 0–255 scale, min(ε + 4, 1.25 ε)
   iterations, each step clipped to the ε-ball around the clean image and to [0, 1]. It moves away
   from the clean top-1 class. Gradients are taken w.r.t. the input only (``torch.autograd.grad``),
   in eval mode, so the model's parameters, flags and mode are left as they were.
2. ``detection_accuracy``: can a classifier tell a clean image's mask from an adversarial one's?
   The paper trains an AlexNet on 4000 masks; with the tens to hundreds of images a CPU affords,
   a CNN would memorise them, so we fit an L2-regularised logistic regression on the masks
   average-pooled to 14 × 14 (196 features, standardised) and report grouped k-fold held-out
   accuracy: an image's clean and adversarial masks are always in the same fold, so the detector
   can never recognise the image instead of the attack.
3. ``label_recovery``: delete the adversarial image's mask region (with the perturbation the mask
   was scored with: meaningful's own blur, ``Blur()`` for the others) and check whether the
   clean top-1 and the ground truth come back as top-1. Blurring the *whole* image is reported
   beside it, because blur alone undoes much of an ε = 8 attack.

``analyse`` runs all three on a batch of images; ``adversarial_report.write_report`` writes what it
found as ``adversarial.json``, ``adversarial.md`` and ``adversarial.png`` (Fig. 10 left).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..blackbox import BlackBox, as_blackbox
from ..errors import ConfigError, DataError
from ..methods.optimise import MAX_ITERATIONS, whole_number
from ..perturb import Blur, Perturbation

EPSILON = 8.0  # L∞ radius on the 0–255 scale (Kurakin et al.; Fong & Vedaldi §5.5)
STEP = 1.0  # per-iteration step on the 0–255 scale
DETECTOR_SIZE = 14  # masks are average-pooled to 14 × 14 before the logistic regression
FOLDS = 5
MIN_IMAGES = 4  # fewest attacked images the grouped cross-validation can split


def attack_iterations(epsilon: float) -> int:
    """Kurakin et al.'s schedule: min(ε + 4, 1.25 ε) steps, ε on the 0–255 scale (10 for ε = 8)."""
    return max(1, math.ceil(min(epsilon + 4.0, 1.25 * epsilon)))


@dataclass
class Attack:
    """Adversarial images and the labels before and after (``changed``: the top-1 moved)."""

    adversarial: torch.Tensor  # (B, 3, H, W) in [0, 1]
    clean_labels: torch.Tensor  # (B,) the model's top-1 on the clean images (the attacked class)
    adversarial_labels: torch.Tensor  # (B,) top-1 on the adversarial images
    epsilon: float  # 0–255 scale
    step: float
    iterations: int

    @property
    def changed(self) -> torch.Tensor:
        return self.adversarial_labels != self.clean_labels


def check_epsilon(epsilon: float, step: float = STEP) -> None:
    """ε on the 0–255 scale: above 255 every image is within reach, and the schedule's step count
    (which grows with ε) would pass the iteration cap."""
    if not (math.isfinite(epsilon) and 0 < epsilon <= 255):
        raise ConfigError(f"epsilon must lie in (0, 255] (0-255 scale, the paper uses 8), got {epsilon:g}")
    if not (math.isfinite(step) and step > 0):
        raise ConfigError(f"the attack step must be positive (0-255 scale), got {step}")


def iterative_fgsm(
    model: BlackBox | torch.nn.Module,
    images: torch.Tensor,
    epsilon: float = EPSILON,
    step: float = STEP,
    iterations: int | None = None,
    batch_size: int = 16,
) -> Attack:
    """Iterative FGSM away from each image's clean top-1 class; ``epsilon`` and ``step`` on the
    0–255 scale, ``images`` in [0, 1]. Every image gets all the iterations (no early stop), as in
    Kurakin et al."""
    check_epsilon(epsilon, step)
    if iterations is None:
        iterations = attack_iterations(epsilon)
    whole_number("attack iterations", iterations, 1, MAX_ITERATIONS)
    if batch_size < 1:
        raise ConfigError(f"need iterations >= 1 and batch size >= 1, got {iterations}, {batch_size}")
    blackbox = as_blackbox(model)
    device = blackbox.device
    eps, alpha = epsilon / 255.0, step / 255.0
    adversarial, clean_labels, adversarial_labels = [], [], []
    with blackbox.evaluating():
        for start in range(0, images.shape[0], batch_size):
            x0 = images[start : start + batch_size].detach().to(device=device, dtype=torch.float32)
            with torch.no_grad():
                y = blackbox(x0).argmax(1)
            x = x0.clone()
            for _ in range(iterations):
                x.requires_grad_(True)  # our own tensor: the only leaf we differentiate w.r.t.
                loss = F.cross_entropy(blackbox(x), y, reduction="sum")
                (grad,) = torch.autograd.grad(loss, x)
                x = x.detach() + alpha * grad.sign()
                x = torch.min(torch.max(x, x0 - eps), x0 + eps).clamp(0.0, 1.0)
            with torch.no_grad():
                adversarial_labels.append(blackbox(x).argmax(1).cpu())
            adversarial.append(x.detach().cpu())
            clean_labels.append(y.cpu())
    return Attack(torch.cat(adversarial), torch.cat(clean_labels), torch.cat(adversarial_labels),
                  float(epsilon), float(step), int(iterations))


# -- masks -------------------------------------------------------------------------------------------
def method_options(name: str, iterations: int | None, extra: dict[str, dict[str, Any]] | None = None) -> dict:
    """Keyword options of one method: ``iterations`` for the iterative ones, then the user's own."""
    from ..methods import get_spec

    options: dict[str, Any] = {}
    if iterations is not None and get_spec(name).iterative:
        options["iterations"] = iterations
    options.update((extra or {}).get(name, {}))
    return options


def explain(name: str, model: BlackBox, images: torch.Tensor, targets: torch.Tensor,
            options: dict[str, Any] | None = None, batch_size: int = 8,
            tick: Callable[[int], None] | None = None) -> tuple[torch.Tensor, Perturbation]:
    """Salient masks (B, 1, H, W) of ``name`` for one class per image, and the perturbation the
    method scores its masks with (``Explanation.perturbation``; ``Blur()`` when it names none).
    Extremal's masks of several areas are combined per image, as for pointing and localisation."""
    from ..methods.registry import call_method, per_image_masks

    kwargs = dict(options or {})
    progress = kwargs.pop("progress", False)
    chunks, perturbation = [], None
    for start in range(0, images.shape[0], batch_size):
        x = images[start : start + batch_size]
        e = call_method(name, model, x, targets[start : start + batch_size], kwargs, progress)
        chunks.append(per_image_masks(e, x.shape[-2:]))
        perturbation = perturbation or e.perturbation
        if tick is not None:
            tick(x.shape[0])
    return torch.cat(chunks), perturbation or Blur()


# -- detection ---------------------------------------------------------------------------------------
def mask_features(masks: torch.Tensor, size: int = DETECTOR_SIZE) -> np.ndarray:
    """(B, 1, H, W) masks → (B, size²) average-pooled features."""
    return F.adaptive_avg_pool2d(masks.float(), size).flatten(1).numpy().astype(np.float64)


def detection_accuracy(clean_masks: torch.Tensor, adversarial_masks: torch.Tensor,
                       size: int = DETECTOR_SIZE, folds: int = FOLDS, c: float = 1.0) -> dict[str, Any]:
    """Held-out accuracy of a logistic regression telling clean masks (0) from adversarial ones (1).

    Row i of both tensors is the same image; the k folds group by image (``GroupKFold``), so each
    accuracy is on images the detector never saw in either form. Chance is 50 %.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GroupKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    n = clean_masks.shape[0]
    if adversarial_masks.shape[0] != n:
        raise ConfigError(f"{n} clean masks but {adversarial_masks.shape[0]} adversarial ones")
    if n < MIN_IMAGES:
        raise DataError(f"the detector needs at least {MIN_IMAGES} attacked images, got {n}")
    features = np.concatenate([mask_features(clean_masks, size), mask_features(adversarial_masks, size)])
    labels = np.r_[np.zeros(n, int), np.ones(n, int)]
    groups = np.r_[np.arange(n), np.arange(n)]
    k = min(folds, n)
    detector = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=5000))
    scores = cross_val_score(detector, features, labels, groups=groups, cv=GroupKFold(n_splits=k))
    return {"accuracy": float(scores.mean()), "fold_std": float(scores.std()), "folds": k,
            "images": n, "features": int(features.shape[1])}


# -- label recovery ---------------------------------------------------------------------------------
@torch.no_grad()
def predictions(model: BlackBox, images: torch.Tensor, batch_size: int = 16, k: int = 5) -> torch.Tensor:
    """(B, k) top-k classes, best first."""
    out = []
    with model.evaluating():
        for start in range(0, images.shape[0], batch_size):
            logits = model(images[start : start + batch_size].to(model.device))
            out.append(logits.topk(min(k, logits.shape[1]), dim=1).indices.cpu())
    return torch.cat(out)


def label_recovery(model: BlackBox, adversarial: torch.Tensor, masks: torch.Tensor | None,
                   perturbation: Perturbation, clean_labels: torch.Tensor,
                   truth: torch.Tensor | None = None, batch_size: int = 16) -> dict[str, Any]:
    """Delete each mask's region (1 = salient = deleted) from the adversarial images and classify.

    ``masks=None`` perturbs the whole image (the reference). ``truth`` holds −1 for unlabelled
    images, which are left out of the ground-truth rate. Returns rates in [0, 1] and the top-1s.
    """
    keep = torch.zeros_like(adversarial[:, :1]) if masks is None else 1.0 - masks
    deleted = torch.cat([perturbation(adversarial[i : i + batch_size], keep[i : i + batch_size])
                         for i in range(0, adversarial.shape[0], batch_size)])
    top = predictions(model, deleted, batch_size)
    clean = clean_labels.view(-1)
    out = {
        "clean_top1": float((top[:, 0] == clean).float().mean()),
        "clean_top5": float((top == clean[:, None]).any(1).float().mean()),
        "truth_top1": None,
        "images": int(clean.numel()),
        "labelled": 0,
        "top1": top[:, 0].tolist(),
        "perturbation": perturbation.name,
    }
    if truth is not None and bool((truth >= 0).any()):
        has = truth >= 0
        out["truth_top1"] = float((top[has, 0] == truth[has]).float().mean())
        out["labelled"] = int(has.sum())
    return out


# -- the whole analysis -----------------------------------------------------------------------------
@dataclass
class AdversarialResult:
    """What ``analyse`` found: the JSON-ready report, and the tensors the figure needs."""

    report: dict[str, Any]
    clean: torch.Tensor  # the attacked images whose top-1 changed
    adversarial: torch.Tensor
    clean_masks: dict[str, torch.Tensor] = field(default_factory=dict)
    adversarial_masks: dict[str, torch.Tensor] = field(default_factory=dict)


def analyse(
    model: BlackBox,
    images: torch.Tensor,
    methods: Sequence[str],
    truth: torch.Tensor | None = None,
    names: Sequence[str] | None = None,
    epsilon: float = EPSILON,
    iterations_per_mask: int | None = None,
    options: dict[str, dict[str, Any]] | None = None,
    batch_size: int = 8,
    progress: Callable[[str, int, int], None] | None = None,
) -> AdversarialResult:
    """Attack ``images``, keep those whose top-1 changed, mask clean and adversarial images for
    their own top-1 with every method, then detect and recover (see the module docstring).

    ``truth``: ground-truth class per image (−1 where unknown); ``progress(stage, done, total)``
    is told how far each stage got.
    """
    from ..methods import get_method

    if not methods:
        raise ConfigError("no methods given")
    for name in methods:
        get_method(name)
    images = images.detach().cpu()
    n = images.shape[0]
    if n < MIN_IMAGES:
        raise DataError(f"need at least {MIN_IMAGES} images for a cross-validated detector, got {n}")
    names = list(names) if names is not None else [f"image {i}" for i in range(n)]
    truth = truth if truth is not None else torch.full((n,), -1, dtype=torch.long)
    check_epsilon(epsilon)

    attack = iterative_fgsm(model, images, epsilon=epsilon, batch_size=batch_size)
    changed = attack.changed
    k = int(changed.sum())
    if progress:
        progress("attack", n, n)
    if k < MIN_IMAGES:
        raise DataError(f"the attack changed the top-1 of only {k} of {n} images; the detector needs at "
                        f"least {MIN_IMAGES} (use more images or a larger --epsilon)")
    clean, adv = images[changed], attack.adversarial[changed]
    clean_y, adv_y = attack.clean_labels[changed], attack.adversarial_labels[changed]
    kept_truth = truth[changed]
    result = AdversarialResult({}, clean, adv)
    detection, recovery = {}, {}
    total = 2 * k * len(methods)
    done = 0

    def tick(count: int) -> None:
        nonlocal done
        done += count
        if progress:
            progress("masks", done, total)

    for name in methods:
        opts = method_options(name, iterations_per_mask, options)
        clean_m, _ = explain(name, model, clean, clean_y, opts, batch_size, tick)
        adv_m, perturbation = explain(name, model, adv, adv_y, opts, batch_size, tick)
        result.clean_masks[name], result.adversarial_masks[name] = clean_m, adv_m
        detection[name] = detection_accuracy(clean_m, adv_m)
        recovery[name] = label_recovery(model, adv, adv_m, perturbation, clean_y, kept_truth, batch_size)
        recovery[name]["mean_area"] = float(adv_m.mean())
    whole = label_recovery(model, adv, None, Blur(), clean_y, kept_truth, batch_size)
    whole["mean_area"] = 1.0
    recovery[WHOLE_IMAGE] = whole

    labelled = truth >= 0
    clean_top1 = attack.clean_labels
    class_name = model.class_name if isinstance(model, BlackBox) else (lambda i: f"class {i}")
    kept_names = [nm for nm, c in zip(names, changed.tolist()) if c]
    result.report = {
        "settings": {
            "epsilon_255": attack.epsilon, "step_255": attack.step, "attack_iterations": attack.iterations,
            "methods": list(methods), "iterations_per_mask": iterations_per_mask,
            "options": {m: method_options(m, iterations_per_mask, options) for m in methods},
            "detector": f"logistic regression (L2, C=1) on {DETECTOR_SIZE}x{DETECTOR_SIZE} average-pooled "
                        f"masks, standardised; grouped {FOLDS}-fold cross-validation by image",
            "model": getattr(model, "name", "model"),
            "image_size": list(images.shape[-2:]),
        },
        "attack": {
            "images": n,
            "changed": k,
            "success_rate": k / n,
            "max_linf_255": float((attack.adversarial - images).abs().max() * 255.0),
            "clean_accuracy": _accuracy(clean_top1, truth, labelled),
            "adversarial_accuracy": _accuracy(attack.adversarial_labels, truth, labelled),
        },
        "detection": detection,
        "recovery": {m: {key: v for key, v in r.items() if key != "top1"} for m, r in recovery.items()},
        "images": [
            {"name": nm, "truth": int(t), "clean_top1": int(c), "clean_name": class_name(int(c)),
             "adversarial_top1": int(a), "adversarial_name": class_name(int(a)),
             "recovered_top1": {m: int(r["top1"][i]) for m, r in recovery.items()}}
            for i, (nm, t, c, a) in enumerate(zip(kept_names, kept_truth, clean_y, adv_y))
        ],
    }
    return result


WHOLE_IMAGE = "(whole image blurred)"


def _accuracy(pred: torch.Tensor, truth: torch.Tensor, labelled: torch.Tensor) -> float | None:
    if not bool(labelled.any()):
        return None
    return float((pred[labelled] == truth[labelled]).float().mean())
