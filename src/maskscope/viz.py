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
    """The image with the game's perturbation applied: salient region deleted or kept alone."""
    from .perturb import get_perturbation

    name = explanation.params.get("perturbation", "blur")
    game = explanation.params.get("game", "delete")
    pert = get_perturbation(name if isinstance(name, str) else "blur")
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


def save_area_figure(explanation, path: str | os.PathLike) -> None:
    """The rows of ONE image explained at several areas (extremal perturbations): a column for
    the image (and, below it, the areas combined as for the metrics), then one column per area
    with the perturbed image above and the mask below, each mask with its own colour bar.

    The perturbed images are recomputed with the blur the masks were optimised with."""
    from .methods.extremal import combine_areas
    from .perturb import Blur

    params = explanation.params
    game = params.get("game", "preserve")
    pert = Blur(params.get("blur_sigma", 20.0), params.get("blur_levels", 8))
    masks = explanation.masks.detach().cpu()
    images = explanation.images.detach().cpu()
    keep = 1 - masks if game == "delete" else masks
    perturbed = pert(images, keep)
    shown = explanation.p_deleted if game == "delete" else explanation.p_preserved
    verb = "deleted" if game == "delete" else "kept"
    count = len(explanation)
    fig, axes = plt.subplots(2, count + 1, figsize=(2.9 * (count + 1), 5.6), squeeze=False)
    p0 = explanation.p_original
    title = explanation.class_names[0] + (f": {float(p0[0]):.3f}" if p0 is not None else "")
    axes[0, 0].imshow(to_numpy_image(images[0]))
    axes[0, 0].set_title(title, fontsize=9)
    combined = combine_areas(explanation[list(range(count))])[0, 0].cpu().numpy()
    im = axes[1, 0].imshow(combined, cmap="viridis", vmin=0, vmax=max(float(combined.max()), 1e-6))
    axes[1, 0].set_title("areas combined", fontsize=9)
    fig.colorbar(im, ax=axes[1, 0], fraction=0.046, pad=0.04)
    for j in range(count):
        a = explanation.requested_area[j] if explanation.requested_area is not None else float("nan")
        mask = masks[j, 0].numpy()
        axes[0, j + 1].imshow(to_numpy_image(perturbed[j]))
        score = f": p={float(shown[j]):.3f}" if shown is not None else ""
        axes[0, j + 1].set_title(f"{verb}, area {float(a):g}{score}", fontsize=9)
        im = axes[1, j + 1].imshow(mask, cmap="viridis", vmin=0, vmax=max(float(mask.max()), 1e-6))
        axes[1, j + 1].set_title(f"mask, mean {mask.mean():.3f}", fontsize=9)
        fig.colorbar(im, ax=axes[1, j + 1], fraction=0.046, pad=0.04)
    for ax in axes.flat:
        ax.axis("off")
    fig.suptitle(f"extremal perturbation ({game})", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
