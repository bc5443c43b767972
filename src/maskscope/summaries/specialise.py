"""Summary-driven specialisation (Godi et al. § 4.4): one linear SVM per summary.

A summary is a part the network relies on for a class. An SVM trained on the network's own
penultimate features to recognise *that part's images* is a specialist; the class score of the
specialists (the best SVM of each class, softmax-normalised) is blended with the network's softmax
by a convex weight chosen on a validation split, and the accuracy before and after is measured on
held-out images. With weight 0 the network is unchanged, so validation can only pick a blend that
helped there; whether it helps on the test split is the honest question.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC
from torch import nn

from ..blackbox import BlackBox
from ..errors import ConfigError, DataError


@torch.no_grad()
def penultimate_features(blackbox: BlackBox, images: torch.Tensor, batch_size: int = 32
                         ) -> tuple[np.ndarray, np.ndarray]:
    """(features (N, D), softmax (N, C)): the input of the model's last ``nn.Linear`` layer, read
    with a forward pre-hook that is removed afterwards, and the class probabilities."""
    linears = [m for m in blackbox.model.modules() if isinstance(m, nn.Linear)] \
        if isinstance(blackbox.model, nn.Module) else []
    if not linears:
        raise ConfigError("specialisation needs a model whose last layer is an nn.Linear")
    captured: list[torch.Tensor] = []
    handle = linears[-1].register_forward_pre_hook(lambda _m, inputs: captured.append(inputs[0].flatten(1)))
    probs = []
    try:
        with blackbox.evaluating():
            for start in range(0, len(images), batch_size):
                x = images[start : start + batch_size].to(blackbox.device)
                probs.append(blackbox(x).softmax(1).cpu())
    finally:
        handle.remove()
    return torch.cat(captured).cpu().numpy(), torch.cat(probs).numpy()


@dataclass
class SpecialisationResult:
    accuracy_before: float  # test accuracy of the network alone
    accuracy_after: float  # test accuracy of the blend
    weight: float  # convex weight of the SVM scores, chosen on validation
    val_before: float
    val_after: float
    n_test: int
    summary_classes: list[int] = field(default_factory=list)

    @property
    def change(self) -> float:
        return self.accuracy_after - self.accuracy_before


def svm_class_scores(svms: list, svm_classes: list[int], features: np.ndarray,
                     num_classes: int) -> np.ndarray:
    """(N, C): softmax over the classes that have summaries of each class's best SVM score; 0 for
    the other classes (they have no specialist)."""
    decision = np.stack([s.decision_function(features) for s in svms], 1)  # (N, K)
    classes = sorted(set(svm_classes))
    owned = [[k for k, c in enumerate(svm_classes) if c == cls] for cls in classes]
    best = np.stack([decision[:, ks].max(1) for ks in owned], 1)
    best = np.exp(best - best.max(1, keepdims=True))
    out = np.zeros((len(features), num_classes))
    out[:, classes] = best / best.sum(1, keepdims=True)
    return out


def specialise(
    blackbox: BlackBox,
    train_images: torch.Tensor,
    train_labels: Sequence[int],
    summaries: Sequence[Sequence[int]],
    val_images: torch.Tensor,
    val_labels: Sequence[int],
    test_images: torch.Tensor,
    test_labels: Sequence[int],
    weights: Sequence[float] = tuple(np.linspace(0.0, 1.0, 21)),
    C: float = 0.1,
) -> SpecialisationResult:
    """Train one linear SVM per summary and blend their class scores with the softmax.

    ``summaries`` are lists of indices into ``train_images`` (the member images of each
    summary); a summary's class is the most common label of its members. Positives are the
    summary's images; negatives are the other training images of other classes and the images of
    the same class's other summaries (same-class images in no summary are left out: they are
    neither this part nor clearly not it).
    """
    if not summaries:
        raise DataError("specialisation needs at least one summary")
    train_y = np.asarray(train_labels)
    f_train, _ = penultimate_features(blackbox, train_images)
    f_val, p_val = penultimate_features(blackbox, val_images)
    f_test, p_test = penultimate_features(blackbox, test_images)
    in_summary = np.zeros(len(train_y), dtype=bool)
    for members in summaries:
        in_summary[list(members)] = True
    svms, svm_classes = [], []
    for members in summaries:
        rows = np.asarray(sorted(set(members)))
        cls = int(np.bincount(train_y[rows]).argmax())
        positive = np.zeros(len(train_y), dtype=bool)
        positive[rows] = True
        negative = ~positive & ((train_y != cls) | in_summary)
        x = np.concatenate([f_train[positive], f_train[negative]])
        y = np.concatenate([np.ones(positive.sum()), np.zeros(negative.sum())])
        if y.min() == y.max():
            continue
        svm = make_pipeline(StandardScaler(), LinearSVC(C=C, class_weight="balanced", max_iter=5000))
        svms.append(svm.fit(x, y))
        svm_classes.append(cls)
    if not svms:
        raise DataError("no summary had both positive and negative training images")
    num_classes = p_val.shape[1]
    s_val = svm_class_scores(svms, svm_classes, f_val, num_classes)
    s_test = svm_class_scores(svms, svm_classes, f_test, num_classes)
    val_y, test_y = np.asarray(val_labels), np.asarray(test_labels)

    def accuracy(p: np.ndarray, s: np.ndarray, w: float, labels: np.ndarray) -> float:
        return float((((1 - w) * p + w * s).argmax(1) == labels).mean())

    scores = [accuracy(p_val, s_val, w, val_y) for w in weights]
    best = int(np.argmax(scores))  # first maximum: the smallest weight among equals
    w = float(weights[best])
    return SpecialisationResult(
        accuracy_before=accuracy(p_test, s_test, 0.0, test_y),
        accuracy_after=accuracy(p_test, s_test, w, test_y),
        weight=w,
        val_before=accuracy(p_val, s_val, 0.0, val_y),
        val_after=scores[best],
        n_test=len(test_y),
        summary_classes=svm_classes,
    )
