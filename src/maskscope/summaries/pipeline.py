"""The visual-summary pipeline for one class: images + crisp masks → summaries.

regions (connected components) → proposals (selective search, cached) → HOG features and
whitening → proposal flow over all image pairs → pruning → affinity propagation → SSIM check.
Each stage is timed and has its own progress bar; every failure that is the input's fault is a
``DataError`` with one clear line.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from threadpoolctl import threadpool_limits
from tqdm.auto import tqdm

from ..errors import DataError
from ..images import grey
from .cluster import affinity_clusters, prune_proposals, ssim_filter
from .flow import ImageProposals, Whitening, correspondence_matrix, crop_patches, proposal_features
from .proposals import cached_proposals, proposal_cache_name
from .regions import Regions, find_regions

SSIM_PATCH = 48


@dataclass
class Part:
    """One member of a summary: a proposal (the part) inside a region of one image."""

    image: int
    region: int  # 1-based region id in that image
    box: list[int]  # [x0, y0, x1, y1) at the working size
    region_box: list[int]
    score: float  # mean correspondence with the other members of its summary


@dataclass
class Summary:
    parts: list[Part]
    median_ssim: float

    @property
    def images(self) -> list[int]:
        return sorted({p.image for p in self.parts})

    def best_parts(self) -> list[Part]:
        """One part per member image, the best-scoring: what the report shows."""
        best: dict[int, Part] = {}
        for p in self.parts:
            if p.image not in best or p.score > best[p.image].score:
                best[p.image] = p
        return [best[i] for i in sorted(best, key=lambda i: -best[i].score)]


@dataclass
class SummaryResult:
    summaries: list[Summary]
    regions: list[Regions]
    proposals: list[np.ndarray]
    kept: list[np.ndarray]  # per image, indices of the proposals kept for clustering
    timings: dict[str, float] = field(default_factory=dict)
    stats: dict[str, Any] = field(default_factory=dict)


@contextlib.contextmanager
def limited_threads(threads: int | None) -> Iterator[None]:
    """Run torch, the NumPy BLAS and OpenCV with ``threads`` threads, then restore the previous
    settings; ``None`` leaves them alone.

    The library never picks a thread count itself: the caller (the CLI's ``--threads``) does. The
    summary stages are many medium-sized tensor operations and small LAPACK calls, which on a busy
    shared CPU can run much faster with one thread; ``benchmarks/speed/speed_summaries.py --threads N``
    measures it on your machine.
    """
    if threads is None:
        yield
        return
    old, old_cv = torch.get_num_threads(), cv2.getNumThreads()
    torch.set_num_threads(threads)
    cv2.setNumThreads(threads)
    try:
        with threadpool_limits(threads):
            yield
    finally:
        torch.set_num_threads(old)
        cv2.setNumThreads(old_cv)


def summarize_class(
    images: list[np.ndarray],
    masks: np.ndarray,
    names: list[str] | None = None,
    cache_dir: str | os.PathLike | None = None,
    proposals: int = 500,
    min_images: int = 3,
    damping: float = 0.9,
    preference_factor: float = 1.3,
    progress: bool = True,
    threads: int | None = None,
    proposal_mode: str = "quality",
    region_closing: float = 5.0,
) -> SummaryResult:
    """Visual summaries of one class from its images (H, W, 3) uint8 and crisp masks (N, H, W).

    ``cache_dir`` keeps the selective-search boxes per image (``proposals/<name>_<mode>_<pixel hash>.npy``)
    and the whitening statistics (``flow_whitening.npz``). ``proposal_mode`` is selective
    search's ``quality`` (≈ 500–600 boxes at 224 × 224) or ``fast`` (≈ 200, several times
    quicker). ``threads`` (see ``limited_threads``; ``None``, the default, leaves the
    settings alone) applies to every stage. ``region_closing`` joins speckled masks into regions (see
    ``regions``; 0 = the paper's plain connected components).
    """
    with limited_threads(threads):
        return _summarize(images, masks, names, cache_dir, proposals, min_images, damping,
                          preference_factor, progress, proposal_mode, region_closing)


def _summarize(images, masks, names, cache_dir, proposals, min_images, damping, preference_factor,
               progress, proposal_mode, region_closing) -> SummaryResult:
    n = len(images)
    if n < 2:
        raise DataError(f"summaries need at least 2 usable images, got {n}")
    if len(masks) != n:
        raise ValueError(f"{n} images but {len(masks)} masks")
    names = names or [f"image_{i:04d}" for i in range(n)]
    cache = Path(cache_dir) if cache_dir is not None else None
    timings: dict[str, float] = {}

    t = time.perf_counter()
    regions = [find_regions(m, closing=region_closing) for m in masks]
    timings["regions"] = time.perf_counter() - t
    with_regions = sum(len(r) > 0 for r in regions)
    if with_regions == 0:
        raise DataError("no salient region survives in any image (every crisp mask is empty)")

    t = time.perf_counter()
    boxes = [
        cached_proposals(img, cache / "proposals" / proposal_cache_name(name, img, proposal_mode)
                         if cache else None, count=proposals, mode=proposal_mode)
        for img, name in tqdm(list(zip(images, names)), desc="proposals", unit="img", disable=not progress)
    ]
    timings["proposals"] = time.perf_counter() - t

    t = time.perf_counter()
    pruned = [prune_proposals(b, r) for b, r in zip(boxes, regions)]
    kept = [k for k, _ in pruned]
    if sum(len(k) > 0 for k in kept) < 2:
        raise DataError(
            f"salient regions survive in fewer than 2 images ({sum(len(k) > 0 for k in kept)} of {n}): "
            "nothing to match across images"
        )
    raw = [proposal_features(img, b) for img, b in
           tqdm(list(zip(images, boxes)), desc="HOG features", unit="img", disable=not progress)]
    whitening = Whitening.fit(np.concatenate(raw))
    if cache is not None:
        cache.mkdir(parents=True, exist_ok=True)
        whitening.save(cache / "flow_whitening.npz")
    flow_inputs = [ImageProposals.build(b, whitening(f)) for b, f in zip(boxes, raw)]
    timings["features"] = time.perf_counter() - t

    t = time.perf_counter()
    corr, owner = correspondence_matrix(flow_inputs, kept, progress=progress)
    timings["flow"] = time.perf_counter() - t

    t = time.perf_counter()
    labels, preference = affinity_clusters(corr, owner, damping=damping, preference_factor=preference_factor)
    owner_np = owner.numpy()
    flat_boxes = np.concatenate([b[k] for b, k in zip(boxes, kept)]).reshape(-1, 4)
    flat_region = np.concatenate([r for _, r in pruned])
    patches = np.concatenate([
        crop_patches(grey(img), b[k], size=SSIM_PATCH, pad=0.0).numpy()
        for img, b, k in zip(images, boxes, kept) if len(k)
    ])
    clusters, class_median = ssim_filter(labels, owner_np, patches, corr, min_images=min_images)
    timings["clustering"] = time.perf_counter() - t

    summaries = []
    for c in clusters:
        if not c.kept:
            continue
        parts = []
        for m, score in zip(c.members, c.cohesion):
            img, reg = int(owner_np[m]), int(flat_region[m])
            parts.append(Part(img, reg, [int(v) for v in flat_boxes[m]],
                              [int(v) for v in regions[img].boxes[reg - 1]], round(float(score), 6)))
        summaries.append(Summary(parts, round(c.median_ssim, 6)))
    summaries.sort(key=lambda s: (-len(s.images), -np.mean([p.score for p in s.parts])))
    stats = {
        "images": n,
        "images_with_regions": with_regions,
        "regions": int(sum(len(r) for r in regions)),
        "proposals": int(sum(len(b) for b in boxes)),
        "kept_proposals": int(sum(len(k) for k in kept)),
        "clusters": int(len(np.unique(labels))),
        "clusters_spanning_min_images": len(clusters),
        "dropped_by_ssim": int(sum(not c.kept for c in clusters)),
        "summaries": len(summaries),
        "class_median_ssim": round(class_median, 6),
        "preference": round(preference, 6),
        "min_images": min_images,
        "proposal_mode": proposal_mode,
        "region_closing": region_closing,
    }
    return SummaryResult(summaries, regions, boxes, kept, timings, stats)


def summarize_images(
    blackbox,
    images,
    targets,
    iterations: int = 300,
    crisp_iterations: int = 150,
    work_size: tuple[int, int] | None = None,
    batch_size: int = 16,
    progress: bool = True,
    crisp_options: dict | None = None,
    **kwargs,
) -> tuple[SummaryResult, np.ndarray]:
    """Crisp masks and summaries for an in-memory batch (N, 3, H, W) in [0, 1] (no cache).

    ``crisp_options`` go to ``crisp_mask`` (e.g. ``game``, ``l1``); other keyword arguments to
    ``summarize_class``.

    ``work_size`` upsamples images (bilinear) and masks (nearest) before the summary stages, for
    small images (64 × 64 synthetic scenes) where selective search and 80 × 80 HOG patches would
    otherwise see only a few pixels per part. Returns (result, masks at the images' own size).
    """
    import torch.nn.functional as F

    from ..methods.crisp import crisp_mask

    t = time.perf_counter()
    targets = torch.as_tensor(targets).view(-1)
    masks = []
    for start in tqdm(range(0, len(images), batch_size), desc="crisp masks", disable=not progress):
        x = images[start : start + batch_size]
        expl = crisp_mask(blackbox, x, target=targets[start : start + batch_size], iterations=iterations,
                          crisp_iterations=crisp_iterations, **(crisp_options or {}))
        masks.append(expl.masks.cpu())
    masks_t = torch.cat(masks)
    mask_time = time.perf_counter() - t
    x, m = images.cpu(), masks_t
    if work_size is not None:
        x = F.interpolate(x, size=work_size, mode="bilinear", align_corners=False).clamp(0, 1)
        m = F.interpolate(m, size=work_size, mode="nearest")
    arrays = [(im.permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8) for im in x]
    result = summarize_class(arrays, m[:, 0].numpy(), progress=progress, **kwargs)
    result.timings = {"masks": mask_time, **result.timings}
    return result, masks_t[:, 0].numpy()
