"""Pictures of explanations: mask PNGs, heat-map overlays and the paper-style three-panel figure
(Fong & Vedaldi Figure 1, with the mask on its own scale and a colour bar)."""

from __future__ import annotations

import os

import matplotlib
import numpy as np
import torch
from matplotlib.figure import Figure
from PIL import Image

from .images import load_image, to_numpy_image
from .masks import combine_areas


def new_figure(**kwargs) -> Figure:
    """A figure outside pyplot: figures written to files neither switch the user's backend nor
    join pyplot's list of open figures (a notebook keeps its inline backend; nothing to close)."""
    return Figure(**kwargs)


def save_mask_png(mask: np.ndarray, path: str | os.PathLike) -> None:
    """Greyscale 8-bit PNG of a mask in [0, 1] (white = salient)."""
    Image.fromarray((np.clip(mask, 0, 1) * 255 + 0.5).astype(np.uint8), mode="L").save(path)


def overlay(image: np.ndarray, mask: np.ndarray, alpha: float = 0.55) -> np.ndarray:
    """Blend a jet-coloured mask over an (H, W, 3) uint8 image; returns uint8.

    Blended a band of rows at a time: the colour map returns float64 RGBA, 32 bytes a pixel, which
    for a 64-megapixel photo would be 2 GB at once instead of a few MB per band."""
    out = np.empty(image.shape[:2] + (3,), np.uint8)
    cmap = matplotlib.colormaps["jet"]
    rows = max(1, OVERLAY_BAND_PIXELS // max(1, image.shape[1]))
    for top in range(0, image.shape[0], rows):
        band = slice(top, top + rows)
        m = mask[band]
        colours = cmap(np.clip(m, 0, 1))[..., :3]
        weight = alpha * np.clip(m, 0.15, 1)[..., None]
        blend = image[band].astype(np.float32) / 255 * (1 - weight) + colours * weight
        out[band] = (blend * 255 + 0.5).astype(np.uint8)
    return out


OVERLAY_BAND_PIXELS = 1 << 20


def save_overlay(image: np.ndarray, mask: np.ndarray, path: str | os.PathLike) -> None:
    Image.fromarray(overlay(image, mask)).save(path)


def source_image(explanation, i: int) -> np.ndarray:
    """Image i at the size of its mask: the source file when there is one, else the tensor."""
    src = explanation.sources[i] if explanation.sources else None
    if src is not None and os.path.exists(src):
        return load_image(src, max_pixels=None)  # it passed the caller's limit when explained
    return to_numpy_image(explanation.images[i])


def perturbed_images(explanation) -> tuple[torch.Tensor, str]:
    """The image with the game's perturbation applied: salient region deleted or kept alone, by the
    very perturbation object the scores were measured with (``Explanation.perturbation``)."""
    from .perturb import Blur

    game = explanation.params.get("game", "delete")
    pert = explanation.perturbation if explanation.perturbation is not None else Blur()
    s = explanation.masks
    keep = 1 - s if game == "delete" else s
    return pert(explanation.images, keep), game


MASK_CMAP = "magma"  # perceptually uniform and sequential: equal mask steps look equally different


def mask_range(mask: np.ndarray) -> tuple[float, float]:
    """The colour scale of a mask panel: its own [min, max], so that a faint mask (peak 0.3) still
    spans the whole colour map; [0, 1] for a constant mask (nothing to stretch)."""
    lo, hi = float(np.min(mask)), float(np.max(mask))
    if hi - lo < 1e-6:
        return min(lo, 0.0), max(hi, 1.0)
    return lo, hi


def _score(p, i: int) -> str:
    return "" if p is None else f"p = {float(p[i]):.4f}"


def explanation_figure(explanation, i: int, fig: Figure | None = None) -> Figure:
    """Fong & Vedaldi's Figure 1 layout as a matplotlib figure: the image with its class and p, the
    image with the salient region deleted (or, for the preservation game, alone kept) with its p, and
    the mask on its own [min, max] scale with a colour bar (a faint mask is then still readable; the
    dashed contour marks 0.5, the fixed threshold of the localisation protocol). Drawn on ``fig`` (its size
    is set) or on a new figure outside pyplot."""
    perturbed, game = perturbed_images(explanation[[i]])
    pert = getattr(explanation.perturbation, "name", None) or explanation.params.get("perturbation", "blur")
    pert = pert if isinstance(pert, str) else getattr(pert, "name", "blur")
    p0 = explanation.p_original
    p1 = explanation.p_deleted if game == "delete" else explanation.p_preserved
    what = f"salient region deleted ({pert})" if game == "delete" else f"salient region kept alone ({pert})"
    mask = explanation.masks[i, 0].detach().float().cpu().numpy()
    lo, hi = mask_range(mask)
    fig = fig if fig is not None else new_figure()
    fig.set_size_inches(10.8, 3.9)
    axes = fig.subplots(1, 3, gridspec_kw={"width_ratios": [1, 1, 1.1]})
    axes[0].imshow(to_numpy_image(explanation.images[i]))
    axes[0].set_title(f"{explanation.class_names[i]}\n{_score(p0, i)}", fontsize=9)
    axes[1].imshow(to_numpy_image(perturbed[0]))
    axes[1].set_title(f"{what}\n{_score(p1, i) or 'p not stored by this method'}", fontsize=9)
    image = axes[2].imshow(mask, cmap=MASK_CMAP, vmin=lo, vmax=hi, interpolation="nearest")
    if lo < 0.5 < hi:
        axes[2].contour(mask, levels=[0.5], colors="white", linewidths=0.8, linestyles="--")
    axes[2].set_title(f"{explanation.method} mask (1 = salient)\nshown on its range [{lo:.3g}, {hi:.3g}]",
                      fontsize=9)
    bar = fig.colorbar(image, ax=axes[2], fraction=0.046, pad=0.03)
    bar.ax.tick_params(labelsize=7)
    for ax in axes:
        ax.axis("off")
    fig.tight_layout()
    return fig


def save_figure(explanation, i: int, path: str | os.PathLike) -> None:
    """Write ``explanation_figure`` (the paper's Figure 1 layout) as a PNG."""
    explanation_figure(explanation, i).savefig(path, dpi=100)


def save_area_figure(explanation, path: str | os.PathLike) -> None:
    """The rows of ONE image explained at several areas (extremal perturbations): a column for
    the image (and, below it, the areas combined as for the metrics), then one column per area
    with the perturbed image above and the mask below, each mask with its own colour bar.

    The perturbed images are recomputed with the blur the masks were optimised with."""
    from .perturb import named_operator

    params = explanation.params
    game = params.get("game", "preserve")
    # an explanation read back from disk has no operator object: rebuild the one its params name
    pert = explanation.perturbation
    if pert is None:
        pert = named_operator(params.get("perturbation", "blur"), params.get("blur_sigma", 20.0),
                              params.get("blur_levels", 8))
    masks = explanation.masks.detach().cpu()
    images = explanation.images.detach().cpu()
    keep = 1 - masks if game == "delete" else masks
    perturbed = pert(images, keep)
    shown = explanation.p_deleted if game == "delete" else explanation.p_preserved
    verb = "deleted" if game == "delete" else "kept"
    count = len(explanation)
    fig = new_figure(figsize=(2.9 * (count + 1), 5.6))
    axes = fig.subplots(2, count + 1, squeeze=False)
    p0 = explanation.p_original
    title = explanation.class_names[0] + (f": {float(p0[0]):.3f}" if p0 is not None else "")
    axes[0, 0].imshow(to_numpy_image(images[0]))
    axes[0, 0].set_title(title, fontsize=9)
    combined = combine_areas(explanation[list(range(count))])[0, 0].cpu().numpy()
    im = axes[1, 0].imshow(combined, cmap=MASK_CMAP, vmin=0, vmax=max(float(combined.max()), 1e-6))
    axes[1, 0].set_title("areas combined", fontsize=9)
    fig.colorbar(im, ax=axes[1, 0], fraction=0.046, pad=0.04)
    for j in range(count):
        a = explanation.requested_area[j] if explanation.requested_area is not None else float("nan")
        mask = masks[j, 0].numpy()
        axes[0, j + 1].imshow(to_numpy_image(perturbed[j]))
        score = f": p={float(shown[j]):.3f}" if shown is not None else ""
        axes[0, j + 1].set_title(f"{verb}, area {float(a):g}{score}", fontsize=9)
        im = axes[1, j + 1].imshow(mask, cmap=MASK_CMAP, vmin=0, vmax=max(float(mask.max()), 1e-6))
        axes[1, j + 1].set_title(f"mask, mean {mask.mean():.3f}", fontsize=9)
        fig.colorbar(im, ax=axes[1, j + 1], fraction=0.046, pad=0.04)
    for ax in axes.flat:
        ax.axis("off")
    fig.suptitle(f"extremal perturbation ({game})", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
