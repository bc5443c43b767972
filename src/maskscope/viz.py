"""Pictures of explanations: mask PNGs, heat-map overlays and the paper-style three-panel figure."""

from __future__ import annotations

import os

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from .images import load_image, to_numpy_image  # noqa: E402


def save_mask_png(mask: np.ndarray, path: str | os.PathLike) -> None:
    """Greyscale 8-bit PNG of a mask in [0, 1] (white = salient)."""
    Image.fromarray((np.clip(mask, 0, 1) * 255 + 0.5).astype(np.uint8), mode="L").save(path)


def overlay(image: np.ndarray, mask: np.ndarray, alpha: float = 0.55) -> np.ndarray:
    """Blend a jet-coloured mask over an (H, W, 3) uint8 image; returns uint8."""
    colours = plt.get_cmap("jet")(np.clip(mask, 0, 1))[..., :3]
    weight = alpha * np.clip(mask, 0.15, 1)[..., None]
    out = image.astype(np.float32) / 255 * (1 - weight) + colours * weight
    return (out * 255 + 0.5).astype(np.uint8)


def save_overlay(image: np.ndarray, mask: np.ndarray, path: str | os.PathLike) -> None:
    Image.fromarray(overlay(image, mask)).save(path)


def source_image(explanation, i: int) -> np.ndarray:
    """Image i at the size of its mask: the source file when there is one, else the tensor."""
    src = explanation.sources[i] if explanation.sources else None
    if src is not None and os.path.exists(src):
        return load_image(src)
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


def save_figure(explanation, i: int, path: str | os.PathLike) -> None:
    """Three panels like Fong & Vedaldi's Figure 1: original + score, perturbed + score, mask."""
    perturbed, game = perturbed_images(explanation[[i]])
    name = explanation.class_names[i]
    p0 = explanation.p_original
    p1 = explanation.p_deleted if game == "delete" else explanation.p_preserved
    fig, axes = plt.subplots(1, 3, figsize=(9.6, 3.6))
    panels = [
        (to_numpy_image(explanation.images[i]), f"{name}: {float(p0[i]):.4f}" if p0 is not None else name),
        (to_numpy_image(perturbed[0]), f"{game}d: {float(p1[i]):.4f}" if p1 is not None else f"{game}d"),
        (explanation.masks[i, 0].detach().cpu().numpy(), f"learned mask ({explanation.method})"),
    ]
    for ax, (img, title) in zip(axes, panels):
        ax.imshow(img, cmap="jet" if img.ndim == 2 else None, vmin=0, vmax=1 if img.ndim == 2 else None)
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
