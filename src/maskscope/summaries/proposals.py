"""Object proposals: selective search (Uijlings et al., OpenCV contrib), cached per image.

Godi et al. match *proposals*, not pixels: boxes that selective search finds by grouping
superpixels tend to cover object parts (a head, a wheel), which is what a summary is made of.

The border rule. Neither Godi et al. nor our notes define it, so we state ours: boxes are clipped
to the image; boxes covering more than ``max_area`` of the image are dropped (they contain
everything and match everything) as are boxes with a side under ``min_side`` pixels (too small for
an 80×80 HOG to describe); the padding that the flow stage adds around a box is filled by
replicating the image border, never by zeros, so a part at the edge is not matched by its edge.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import cv2
import numpy as np

from ..errors import OutputError
from ..storage import safe_name, write_atomic


def selective_search(image: np.ndarray, count: int = 500, min_side: int = 8, max_area: float = 0.9,
                     mode: str = "quality", seed: int = 0) -> np.ndarray:
    """Up to ``count`` boxes [x0, y0, x1, y1) (exclusive ends) for an (H, W, 3) uint8 RGB image.

    OpenCV returns the same *set* of boxes every time but in a random order (its ranking is
    hierarchy level × a random number, as in Uijlings et al., and seeding OpenCV's RNG does not
    fix it), so we never rely on that order: after removing duplicates and applying the border
    rule, the boxes are sorted and, when there are more than ``count``, a seeded uniform subset
    is kept. The "quality" strategy is used because "fast" finds only about 200 boxes in a
    224 × 224 image.
    """
    from cv2.ximgproc.segmentation import createSelectiveSearchSegmentation

    h, w = image.shape[:2]
    search = createSelectiveSearchSegmentation()
    search.setBaseImage(cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2BGR))
    if mode == "fast":
        search.switchToSelectiveSearchFast()
    elif mode == "quality":
        search.switchToSelectiveSearchQuality()
    else:
        raise ValueError(f"unknown selective search mode {mode!r}")
    rects = np.asarray(search.process(), dtype=np.int64).reshape(-1, 4)
    boxes = np.stack([rects[:, 0], rects[:, 1], rects[:, 0] + rects[:, 2], rects[:, 1] + rects[:, 3]], 1)
    boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, w)
    boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, h)
    bw, bh = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    ok = (bw >= min_side) & (bh >= min_side) & (bw * bh <= max_area * h * w)
    boxes = np.unique(boxes[ok], axis=0)  # sorted: independent of OpenCV's random ranking
    if len(boxes) > count:
        pick = np.random.default_rng(seed).choice(len(boxes), count, replace=False)
        boxes = boxes[np.sort(pick)]
    return boxes


def cached_proposals(image: np.ndarray, cache_file: str | os.PathLike | None, count: int = 500,
                     mode: str = "quality") -> np.ndarray:
    """Selective search for one image, read from / written to ``cache_file`` (.npy) when given."""
    path = Path(cache_file) if cache_file is not None else None
    if path is not None and path.is_file():
        try:
            boxes = np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError):  # garbage or a pickle: recomputed
            boxes = np.zeros((0,))
        if boxes.ndim == 2 and boxes.shape[1] == 4 and 0 < len(boxes) <= count:
            return boxes
    boxes = selective_search(image, count=count, mode=mode)
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(path, lambda handle: np.save(handle, boxes))
        except OSError as exc:
            raise OutputError(f"cannot write the proposal cache {path}: {exc.strerror or exc}") from None
    return boxes


def proposal_cache_name(name: str, image: np.ndarray, mode: str) -> str:
    """``<name>_<mode>_<hash of the pixels>.npy``: proposals are keyed by the image they were
    computed from, so an edited image or another image of the same name never reuses them."""
    digest = hashlib.sha256(np.ascontiguousarray(image).tobytes()).hexdigest()[:16]
    return f"{safe_name(name)}_{mode}_{digest}.npy"


