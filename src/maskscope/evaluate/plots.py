"""Figures of an evaluation: Fong & Vedaldi's Fig. 8 suppression curve, their Fig. 7
representativeness curves and per-method example grids."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib.patches as patches
import numpy as np
import torch

from ..errors import OutputError
from ..images import to_numpy_image
from ..metrics import mask_to_box
from ..storage import safe_name
from ..viz import new_figure, overlay
from .cache import MaskCache
from .samples import load_images


def _save(fig, path: Path) -> None:
    try:
        fig.savefig(path, dpi=90)
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None


def suppression_plot(metrics: dict[str, dict[str, Any]], path: str | Path) -> None:
    """Mean smallest box area (± standard error) reaching 80/90/95/99 % suppression, per method."""
    fig = new_figure(figsize=(8.5, 4.2))
    ax = fig.subplots()
    names = [n for n, m in metrics.items() if m.get("suppression")]
    levels = list(metrics[names[0]]["suppression"]) if names else []
    width = 0.8 / max(1, len(names))
    for k, name in enumerate(names):
        entries = [metrics[name]["suppression"][lv] for lv in levels]
        means = [np.nan if e["mean_area"] is None else e["mean_area"] for e in entries]
        errs = [0.0 if e["stderr"] is None else e["stderr"] for e in entries]
        xs = np.arange(len(levels)) + (k - (len(names) - 1) / 2) * width
        ax.bar(xs, means, width, yerr=errs, capsize=2, label=name)
    ax.set_xticks(np.arange(len(levels)), [f"{lv}%" for lv in levels])
    ax.set_xlabel("normalised softmax score suppression")
    ax.set_ylabel("mean minimal bounding box size (pixels²)")
    ax.set_title("Smallest blurred box reaching the suppression (Fong & Vedaldi Fig. 8)", fontsize=10)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    _save(fig, Path(path))


def representativeness_plot(metrics: dict[str, dict[str, Any]], path: str | Path) -> bool:
    """Fong & Vedaldi Fig. 7 (bottom): mean normalised score vs α, one panel per perturbation, one
    line per method (report images). Returns False (and writes nothing) without §5.2 scores."""
    names = [n for n, m in metrics.items() if m.get("representativeness")]
    if not names:
        return False
    perts = list(metrics[names[0]]["representativeness"]["curves"])
    fig = new_figure(figsize=(3.6 * len(perts) + 1.0, 3.8))
    axes = fig.subplots(1, len(perts), sharey=True, squeeze=False)
    styles = ["-", "--", "-.", ":"]
    for ax, pert in zip(axes[0], perts):
        for k, name in enumerate(names):
            rep = metrics[name]["representativeness"]
            curve = [np.nan if v is None else v for v in rep["curves"][pert]]
            ax.plot(rep["alphas"], curve, styles[(k // 10) % len(styles)], marker=".", markersize=4,
                    label=f"{name} (AUC {rep['auc'][pert]:.2f})" if rep["auc"][pert] is not None else name)
        ax.set_title(f"deleted with {pert}", fontsize=10)
        ax.set_xlabel("α (delete smoothed mask > 1 − α)")
        ax.set_xlim(0, 0.95)
        ax.axhline(0, color="grey", linewidth=0.6)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6, loc="best")
    axes[0, 0].set_ylabel("mean (p − p_full) / (p0 − p_full)")
    fig.suptitle("Deletion region representativeness (Fong & Vedaldi §5.2, Fig. 7)", fontsize=10)
    fig.tight_layout()
    _save(fig, Path(path))
    return True


def example_grid(
    name: str,
    samples: Sequence[Any],
    images: torch.Tensor,
    cache: MaskCache,
    metrics: dict[str, Any],
    class_names: dict[str, str],
    path: str | Path,
    columns: int = 4,
) -> None:
    """Mask overlays of a few report images: ground-truth boxes green, the method's box (its tuned
    value threshold, or 0.5 without boxes) red."""
    loc = metrics.get("localisation", {})
    alpha = loc.get("value", {}).get("alpha", 0.5)
    rows = max(1, (len(samples) + columns - 1) // columns)
    fig = new_figure(figsize=(2.6 * columns, 2.8 * rows))
    axes = fig.subplots(rows, columns, squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, sample, image in zip(axes.flat, samples, images):
        mask, record = cache.get(sample.item.key)
        ax.imshow(overlay(to_numpy_image(image), mask))
        for x0, y0, x1, y1 in sample.boxes:
            ax.add_patch(patches.Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0 + 1, y1 - y0 + 1,
                                           fill=False, edgecolor="lime", linewidth=1.2))
        box = mask_to_box(torch.from_numpy(mask), "value", alpha)
        if box is not None:
            x0, y0, x1, y1 = box
            ax.add_patch(patches.Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0 + 1, y1 - y0 + 1,
                                           fill=False, edgecolor="red", linewidth=1.2, linestyle="--"))
        label = class_names.get(str(record["target"]), f"class {record['target']}")
        scores = [f"drop {record['drop']:.0f}%" if "drop" in record else "",
                  f"sal {record['saliency']:.2f}" if "saliency" in record else ""]
        ax.set_title(f"{label[:22]}\n" + "  ".join(scores).strip(), fontsize=7)
    fig.suptitle(f"{name} (green: ground truth, red: value-threshold box α={alpha:g})", fontsize=9)
    fig.tight_layout()
    _save(fig, Path(path))


def write_plots(out: str | Path, results, examples: int = 8) -> list[Path]:
    """``suppression.png`` and ``representativeness.png`` (when their protocols ran) and
    ``examples/<method>.png`` under ``out``;
    returns the paths written."""
    out = Path(out)
    (out / "examples").mkdir(parents=True, exist_ok=True)
    written = []
    if any(m.get("suppression") for m in results.metrics.values()):
        written.append(out / "suppression.png")
        suppression_plot(results.metrics, written[0])
    if representativeness_plot(results.metrics, out / "representativeness.png"):
        written.append(out / "representativeness.png")
    shown = [s for s in results.samples if s.split == "report"][: max(0, examples)]
    if not shown:
        return written
    images = load_images(shown, results.size)
    names = dict(results.info.get("class_names", {}))
    for name, cache in results.caches.items():
        path = out / "examples" / f"{safe_name(name)}.png"
        example_grid(name, shown, images, cache, results.metrics[name], names, path)
        written.append(path)
    return written
