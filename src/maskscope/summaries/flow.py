"""Proposal flow, local offset matching (LOM; Ham et al. 2016), written from its description.

Two proposals match when they look alike (HOG appearance) *and* their displacement agrees with
the displacement their overlapping neighbours vote for. That geometric vote is what lets a dog's
head in one image match the dog's head, not the dog's paw, in another: appearance alone is noisy.

For a pair of images A → B, with appearance similarity S(i, j) = max(0, <a_i, b_j>) (zero when
the aspect ratios differ by more than 2×):
  1. every proposal k of A votes the offset (dx, dy, log-scale) to its best match in B;
  2. the consensus m(i) of proposal i is the per-dimension median of the votes of its neighbours
     N(i) = the proposals of A that overlap i most (i included, at most ``MAX_NEIGHBOURS``);
  3. Q(i, j) = S(i, j) · exp(−0.05·‖Δxy(i, j) − m_xy(i)‖ − 0.3·|Δs(i, j) − m_s(i)|),
     and i's match confidence is max_j Q(i, j).

Everything is tensor algebra over all proposals of A against all proposals of several B images
at once; the only Python loops are over images.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from skimage.feature import hog
from tqdm.auto import tqdm

from ..boxes import box_iou_exclusive
from ..images import grey
from ..storage import write_atomic

PATCH = 80  # each padded proposal is resized to PATCH × PATCH before HOG
CELL = 8
PAD = 1.0 / 8.0  # context added around a box on every side, as a fraction of its size
TILES_PER_ROW = 32
HOG_DIMS = (PATCH // CELL - 1) ** 2 * 4 * 9
XY_WEIGHT = 0.05  # per pixel at the 224 × 224 working size
SCALE_WEIGHT = 0.3  # per unit of natural-log scale ratio
MAX_ASPECT_RATIO = 2.0
MAX_NEIGHBOURS = 32


def crop_patches(grey: np.ndarray, boxes: np.ndarray, size: int = PATCH, pad: float = PAD) -> torch.Tensor:
    """All padded boxes of one (H, W) image, resized to (P, size, size) in a single grid_sample.

    Padding that falls outside the image replicates the border (``padding_mode='border'``).
    """
    h, w = grey.shape
    b = torch.as_tensor(boxes, dtype=torch.float32).reshape(-1, 4)
    bw, bh = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
    x0, x1 = b[:, 0] - pad * bw, b[:, 2] + pad * bw
    y0, y1 = b[:, 1] - pad * bh, b[:, 3] + pad * bh
    steps = (torch.arange(size, dtype=torch.float32) + 0.5) / size  # pixel centres of the patch
    gx = (x0[:, None] + steps[None] * (x1 - x0)[:, None]) / w * 2 - 1  # (P, size)
    gy = (y0[:, None] + steps[None] * (y1 - y0)[:, None]) / h * 2 - 1
    grid = torch.stack(torch.broadcast_tensors(gx[:, None, :], gy[:, :, None]), dim=-1)  # (P, size, size, 2)
    src = torch.as_tensor(grey, dtype=torch.float32)[None, None].expand(len(b), 1, h, w)
    return F.grid_sample(src, grid, mode="bilinear", padding_mode="border", align_corners=False)[:, 0]


def hog_features(patches: torch.Tensor) -> np.ndarray:
    """scikit-image HOG (9 orientations, 8-px cells, 2×2-cell L2-Hys blocks) of every patch: (P, D).

    Equal to ``skimage.feature.hog`` run on each patch, but computed for all patches of an image
    at once: gradients per patch (zero at each patch's rim, as skimage does), one call of
    skimage's compiled cell-histogram kernel on the mosaic of gradient tiles (cells never straddle
    tiles), and the block normalisation vectorised in NumPy. skimage's own ``hog`` normalises its
    blocks in a Python loop, which costs seconds per image at 500 proposals.
    """
    x = patches.detach().cpu().numpy().astype(np.float64)
    p, size = x.shape[0], x.shape[-1]
    if p == 0:
        return np.zeros((0, HOG_DIMS), dtype=np.float32)
    try:
        from skimage.feature._hoghistogram import hog_histograms  # compiled, no stub
    except ImportError:  # pragma: no cover - private kernel moved: fall back to the public, slower API
        return np.stack([hog(t, orientations=9, pixels_per_cell=(CELL, CELL), cells_per_block=(2, 2),
                             block_norm="L2-Hys") for t in x]).astype(np.float32)
    g_row = np.zeros_like(x)
    g_col = np.zeros_like(x)
    g_row[:, 1:-1, :] = x[:, 2:, :] - x[:, :-2, :]
    g_col[:, :, 1:-1] = x[:, :, 2:] - x[:, :, :-2]
    cells = size // CELL
    cols = min(TILES_PER_ROW, p)
    rows = -(-p // cols)

    def mosaic(g: np.ndarray) -> np.ndarray:
        tiles = np.zeros((rows * cols, size, size))
        tiles[:p] = g
        tiles = tiles.reshape(rows, cols, size, size).transpose(0, 2, 1, 3)
        return np.ascontiguousarray(tiles.reshape(rows * size, cols * size))

    hist = np.zeros((rows * cells, cols * cells, 9))
    hog_histograms(mosaic(g_col), mosaic(g_row), CELL, CELL, cols * size, rows * size,
                   cols * cells, rows * cells, 9, hist)
    hist = hist.reshape(rows, cells, cols, cells, 9).transpose(0, 2, 1, 3, 4).reshape(-1, cells, cells, 9)[:p]
    blocks = np.stack([np.stack([hist[:, :-1, :-1], hist[:, :-1, 1:]], 3),
                       np.stack([hist[:, 1:, :-1], hist[:, 1:, 1:]], 3)], 3)  # (P, c-1, c-1, 2, 2, 9)
    eps = 1e-5
    norm = np.sqrt((blocks**2).sum(axis=(3, 4, 5), keepdims=True) + eps**2)
    blocks = np.minimum(blocks / norm, 0.2)
    blocks = blocks / np.sqrt((blocks**2).sum(axis=(3, 4, 5), keepdims=True) + eps**2)
    return blocks.reshape(p, -1).astype(np.float32)


def proposal_features(image: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """HOG of each padded, resized proposal of an (H, W, 3) uint8 image."""
    return hog_features(crop_patches(grey(image), boxes))


@dataclass
class Whitening:
    """Centre, project on the top principal directions, rescale, L2-normalise.

    Raw HOG vectors are all positive, so their dot products are all high; centring on the
    statistics of *this* class's proposals (the idea of whitened HOG) makes the similarity
    contrast parts against the typical proposal. The statistics are estimated from our own data
    and saved beside the other caches, so a report can be reproduced.
    """

    mean: np.ndarray  # (D,)
    components: np.ndarray  # (D, K)
    scale: np.ndarray  # (K,)

    @classmethod
    def fit(cls, features: np.ndarray, dims: int = 96, max_rows: int = 1500, seed: int = 0) -> Whitening:
        rng = np.random.default_rng(seed)
        rows = features if len(features) <= max_rows else features[rng.choice(len(features), max_rows, False)]
        x = torch.as_tensor(rows, dtype=torch.float32)
        mean = x.mean(0)
        k = int(min(dims, x.shape[0] - 1, x.shape[1]))
        with torch.random.fork_rng():  # svd_lowrank draws from the global RNG: seed it, then restore it
            torch.manual_seed(seed)
            _, s, v = torch.svd_lowrank(x - mean, q=k, niter=2)
        var = s**2 / max(len(x) - 1, 1)
        scale = 1.0 / torch.sqrt(var + var.mean())  # partial whitening: regularised by the mean variance
        return cls(mean.numpy(), v.numpy(), scale.numpy())

    def __call__(self, features: np.ndarray) -> torch.Tensor:
        x = (torch.as_tensor(features, dtype=torch.float32) - torch.as_tensor(self.mean)) @ torch.as_tensor(
            self.components
        )
        return F.normalize(x * torch.as_tensor(self.scale), dim=1)

    def save(self, path: str | os.PathLike) -> None:
        """Written through a temporary file, so a killed run leaves no truncated statistics behind."""
        write_atomic(
            Path(path),
            lambda handle: np.savez(handle, mean=self.mean, components=self.components, scale=self.scale),
        )


@dataclass
class ImageProposals:
    """What the flow needs of one image: boxes, whitened features and the neighbour relation.

    N(i) is the proposals overlapping i, capped at the ``MAX_NEIGHBOURS`` with the highest IoU
    (i itself first): selective search nests boxes, so a large box overlaps hundreds of others,
    and the closest ones are the local context whose vote the consensus should reflect.
    """

    boxes: torch.Tensor  # (P, 4) float
    features: torch.Tensor  # (P, K) unit vectors
    neighbours: torch.Tensor  # (P, MAX_NEIGHBOURS) indices into the same image's proposals
    neighbour_ok: torch.Tensor  # (P, MAX_NEIGHBOURS) bool: the index is a real overlapping box

    @classmethod
    def build(cls, boxes: np.ndarray, features: torch.Tensor) -> ImageProposals:
        iou = torch.as_tensor(box_iou_exclusive(boxes, boxes), dtype=torch.float32)
        k = min(MAX_NEIGHBOURS, iou.shape[0])
        top, idx = iou.topk(k, dim=1)
        return cls(torch.as_tensor(boxes, dtype=torch.float32).reshape(-1, 4), features, idx, top > 0)


def _geometry(boxes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Centres (P, 2), log of sqrt(area) (P,), aspect ratio w/h (P,)."""
    w = (boxes[:, 2] - boxes[:, 0]).clamp(min=1)
    h = (boxes[:, 3] - boxes[:, 1]).clamp(min=1)
    centre = torch.stack([(boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2], 1)
    return centre, 0.5 * torch.log(w * h), w / h


def neighbour_median(votes: torch.Tensor, valid: torch.Tensor, neighbours: torch.Tensor,
                     neighbour_ok: torch.Tensor) -> torch.Tensor:
    """Per-dimension (lower) median of the valid votes of each proposal's neighbours.

    votes (P, n, D), valid (P, n) bool, neighbours (P, K) indices with neighbour_ok (P, K) bool
    → (P, n, D), 0 where no neighbour votes. One gather and one ``nanmedian`` for all proposals.
    """
    gathered = votes[neighbours]  # (P, K, n, D)
    ok = neighbour_ok[:, :, None] & valid[neighbours]  # (P, K, n)
    gathered = gathered.masked_fill_(~ok[..., None], float("nan"))
    return gathered.nanmedian(dim=1).values.nan_to_num_(0.0)


def lom(a: ImageProposals, bs: list[ImageProposals], rows: torch.Tensor | None = None) -> torch.Tensor:
    """LOM compatibilities of image A's proposals against several images B at once.

    Every proposal of A votes, but the reweighted matrix is only formed for ``rows`` (default:
    all), because the clustering only ever reads the rows of salient proposals.
    Returns Q of shape (R, n_B, P_B), every B image padded to the largest P_B with zeros.
    """
    pa, nb = a.boxes.shape[0], len(bs)
    pb = max(b.boxes.shape[0] for b in bs)
    fb = torch.zeros(nb, pb, a.features.shape[1])
    boxes_b = torch.zeros(nb, pb, 4)
    boxes_b[..., 2:] = 1.0
    real = torch.zeros(nb, pb, dtype=torch.bool)
    for n, b in enumerate(bs):
        m = b.boxes.shape[0]
        fb[n, :m], boxes_b[n, :m], real[n, :m] = b.features, b.boxes, True

    ca, sa, ara = _geometry(a.boxes)
    cb, sb, arb = _geometry(boxes_b.view(-1, 4))
    cb, sb, arb = cb.view(nb, pb, 2), sb.view(nb, pb), arb.view(nb, pb)

    # appearance with the aspect-ratio gate: (P_A, n_B, P_B)
    sim = torch.einsum("pd,nqd->pnq", a.features, fb).clamp_(min=0)
    gate = (ara.log()[:, None, None] - arb.log()[None]).abs_() <= float(np.log(MAX_ASPECT_RATIO))
    sim.mul_(gate & real[None])

    # 1. each proposal k of A votes the offset (dx, dy, log-scale) to its best match in each B
    best_val, best = sim.max(dim=2)  # (P_A, n_B)
    n_idx = torch.arange(nb)[None].expand(pa, nb)
    vote = torch.cat([cb[n_idx, best] - ca[:, None], (sb[n_idx, best] - sa[:, None])[..., None]], dim=2)
    # 2. consensus of i: per-dimension median of its neighbours' votes
    consensus = neighbour_median(vote, best_val > 0, a.neighbours, a.neighbour_ok)  # (P_A, n_B, 3)
    # 3. reweight each candidate by its distance from the consensus offset
    if rows is not None:
        sim, consensus, ca, sa = sim[rows], consensus[rows], ca[rows], sa[rows]
    ux = cb[None, :, :, 0] - (ca[:, None, 0] + consensus[..., 0])[..., None]
    uy = cb[None, :, :, 1] - (ca[:, None, 1] + consensus[..., 1])[..., None]
    us = sb[None] - (sa[:, None] + consensus[..., 2])[..., None]
    penalty = torch.sqrt_(ux.square_().add_(uy.square_())).mul_(XY_WEIGHT).add_(us.abs_().mul_(SCALE_WEIGHT))
    return sim.mul_(penalty.neg_().exp_())


def correspondence_matrix(
    images: list[ImageProposals],
    keep: list[np.ndarray] | None = None,
    chunk: int = 8,
    progress: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The class-wide correspondence matrix ``Corr`` restricted to the kept proposals.

    As in Godi et al., each unordered image pair <x_i, x_j> (i < j) is matched once, giving
    Q_ij; Corr holds Q_ij and its transpose. Votes use all proposals of the image (the context
    matters), but only the rows and columns of kept proposals are stored: the full N_P × N_P
    matrix would not fit in memory. Entries within one image are 0.
    Returns (Corr (K, K), owner image index of each kept proposal (K,)).
    """
    keep = [np.arange(len(im.boxes)) for im in images] if keep is None else keep
    offsets = np.concatenate([[0], np.cumsum([len(k) for k in keep])])
    total = int(offsets[-1])
    corr = torch.zeros(total, total)
    owner = torch.as_tensor(np.repeat(np.arange(len(images)), [len(k) for k in keep]))
    keep_t = [torch.as_tensor(k, dtype=torch.long) for k in keep]
    n = len(images)
    bar = tqdm(total=n * (n - 1) // 2, desc="proposal flow (LOM)", unit="pair", disable=not progress)
    for i, a in enumerate(images):
        others = [j for j in range(i + 1, n) if len(keep[j])]
        bar.update(n - 1 - i - len(others))
        if len(keep[i]) == 0:
            bar.update(len(others))
            continue
        for start in range(0, len(others), chunk):
            group = others[start : start + chunk]
            q = lom(a, [images[j] for j in group], rows=keep_t[i])  # (K_i, g, P_B)
            for g, j in enumerate(group):
                corr[offsets[i] : offsets[i + 1], offsets[j] : offsets[j + 1]] = q[:, g, keep_t[j]]
            bar.update(len(group))
    bar.close()
    return corr + corr.T, owner


def match_confidences(images: list[ImageProposals], chunk: int = 8, progress: bool = True) -> torch.Tensor:
    """Full LOM over every pair i < j and every proposal: the best match confidence of each
    proposal of image i in each later image j, (N, N, P_max). Used to time the whole flow."""
    n = len(images)
    pmax = max(len(im.boxes) for im in images)
    conf = torch.zeros(n, n, pmax)
    bar = tqdm(total=n * (n - 1) // 2, desc="proposal flow (LOM, all)", unit="pair", disable=not progress)
    for i, a in enumerate(images):
        others = list(range(i + 1, n))
        for start in range(0, len(others), chunk):
            group = others[start : start + chunk]
            q = lom(a, [images[j] for j in group])
            conf[i, group, : len(a.boxes)] = q.amax(dim=2).T
            bar.update(len(group))
    bar.close()
    return conf
