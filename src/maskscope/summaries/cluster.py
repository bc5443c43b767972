"""From the correspondence matrix to summaries: pruning, affinity propagation, SSIM check.

Godi et al. § 3.2: keep the proposals that lie inside a salient region (≥ 75 % of the box
covered by one region), merge near-duplicates, cluster what is left with affinity propagation on
the proposal-flow similarities, and drop clusters whose members do not even look alike (median
pairwise SSIM below 0.9 × the class-wide median). Each surviving cluster is a summary: one part
that the classifier relies on across many images.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import torch
from skimage.metrics import structural_similarity
from sklearn.cluster import AffinityPropagation
from sklearn.exceptions import ConvergenceWarning

from ..boxes import box_iou_exclusive
from .regions import Regions, region_coverage

COVERAGE = 0.75  # a proposal belongs to a region when that region covers ≥ 75 % of its box
DUPLICATE_IOU = 0.5
DUPLICATE_AREA_RATIO = 2.0
SSIM_FRACTION = 0.9


def prune_proposals(boxes: np.ndarray, regions: Regions) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the proposals kept for clustering and the (1-based) region each belongs to.

    Duplicates — boxes overlapping by IoU ≥ 0.5 whose areas differ by less than 2× — are merged
    into the one best covered by its region (the larger on ties): they would otherwise form
    clusters of their own image's near-copies.
    """
    if len(regions) == 0 or len(boxes) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    cover = region_coverage(regions, boxes)  # (P, R)
    best_region, best_cover = cover.argmax(1), cover.max(1)
    cand = np.flatnonzero(best_cover >= COVERAGE)
    if len(cand) == 0:
        return cand, cand
    area = (boxes[cand, 2] - boxes[cand, 0]) * (boxes[cand, 3] - boxes[cand, 1])
    order = np.lexsort((-area, -best_cover[cand]))  # best covered first, then larger
    cand, area = cand[order], area[order]
    iou = box_iou_exclusive(boxes[cand], boxes[cand])
    ratio = np.maximum(area[:, None], area[None]) / np.maximum(np.minimum(area[:, None], area[None]), 1)
    duplicate = (iou >= DUPLICATE_IOU) & (ratio < DUPLICATE_AREA_RATIO)
    alive = np.ones(len(cand), dtype=bool)
    for i in range(len(cand)):  # greedy suppression over the few candidates of one image
        if alive[i]:
            alive[i + 1 :] &= ~duplicate[i, i + 1 :]
    kept = np.sort(cand[alive])
    return kept, best_region[kept] + 1


def affinity_clusters(corr: torch.Tensor, owner: torch.Tensor, damping: float = 0.9,
                      preference_factor: float = 1.3, seed: int = 0) -> tuple[np.ndarray, float]:
    """Affinity propagation (scikit-learn) on the correspondence matrix; returns labels (K,) and
    the preference used.

    The preference is 1.3 × the median of the *non-zero* cross-image similarities: Corr is
    mostly zeros (no match), and the median over all entries would be 0.
    """
    s = corr.numpy().astype(np.float64)
    cross = owner.numpy()[:, None] != owner.numpy()[None]
    positive = s[cross & (s > 0)]
    median = float(np.median(positive)) if positive.size else 1e-6
    preference = preference_factor * median
    if len(s) < 2:
        return np.zeros(len(s), dtype=np.int64), preference
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ap = AffinityPropagation(affinity="precomputed", damping=damping, preference=preference,
                                 max_iter=1000, convergence_iter=30, random_state=seed).fit(s)
    labels = ap.labels_
    if (labels < 0).all():  # did not converge: every point on its own
        labels = np.arange(len(s))
    return labels.astype(np.int64), preference


def pairwise_ssim(patches: np.ndarray, owners: np.ndarray) -> np.ndarray:
    """SSIM (scikit-image) of every pair of patches from different images: a flat array."""
    values = []
    for a in range(len(patches)):
        for b in range(a + 1, len(patches)):
            if owners[a] != owners[b]:
                values.append(structural_similarity(patches[a], patches[b], data_range=1.0, win_size=7))
    return np.asarray(values, dtype=np.float64)


@dataclass
class Cluster:
    members: np.ndarray  # indices into the kept proposals
    median_ssim: float
    kept: bool = True
    cohesion: np.ndarray = field(default_factory=lambda: np.zeros(0))  # mean Corr to the other members


def ssim_filter(labels: np.ndarray, owner: np.ndarray, patches: np.ndarray, corr: torch.Tensor,
                min_images: int = 3) -> tuple[list[Cluster], float]:
    """Clusters spanning at least ``min_images`` images, each marked kept or dropped by the SSIM
    rule; also returns the class-wide median SSIM (pooled over the pairs of every such cluster)."""
    clusters = []
    for lab in np.unique(labels):
        members = np.flatnonzero(labels == lab)
        if len(np.unique(owner[members])) < min_images:
            continue
        values = pairwise_ssim(patches[members], owner[members])
        sub = corr[members][:, members].numpy()
        cohesion = sub.sum(1) / max(len(members) - 1, 1)
        clusters.append((members, values, cohesion))
    pooled = np.concatenate([v for _, v, _ in clusters]) if clusters else np.zeros(0)
    class_median = float(np.median(pooled)) if pooled.size else 0.0
    out = []
    for members, values, cohesion in clusters:
        med = float(np.median(values)) if values.size else 0.0
        # 0.9 × the median when it is positive; the same 10 % margin below it if it is not
        threshold = class_median - (1 - SSIM_FRACTION) * abs(class_median)
        out.append(Cluster(members, med, kept=med >= threshold, cohesion=cohesion))
    return out, class_median
