"""The adversarial analysis's report: ``adversarial.md``'s tables, Fig. 10 (left) and the files.

Kept apart from ``adversarial`` so the analysis itself needs neither matplotlib nor the file system.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..storage import atomic_path
from .adversarial import AdversarialResult

PAPER = "Fong & Vedaldi 2017 (GoogLeNet, 5000 images): detection 93.6 % with their masks; " \
        "recovery 40.64 % clean top-1, 37.32 % ground truth"


def markdown(report: dict[str, Any]) -> str:
    """The two tables of ``adversarial.md`` (detection accuracy, label recovery)."""
    s, a = report["settings"], report["attack"]

    def pct(v):
        return "–" if v is None else f"{100 * v:.1f}"

    lines = [
        f"# Adversarial examples ({s['model']})",
        "",
        f"Iterative FGSM, ε = {s['epsilon_255']:g}/255, step {s['step_255']:g}/255, "
        f"{s['attack_iterations']} iterations: top-1 changed on {a['changed']} of {a['images']} images "
        f"({pct(a['success_rate'])} %; max |δ| = {a['max_linf_255']:.2f}/255). "
        f"Top-1 accuracy {pct(a['clean_accuracy'])} % clean, {pct(a['adversarial_accuracy'])} % adversarial.",
        "",
        f"Detector: {s['detector']}. Chance = 50 %.",
        "",
        "| method | detection accuracy % | ± fold std | images (clean + adversarial each) |",
        "|---|---|---|---|",
    ]
    for m, d in report["detection"].items():
        lines.append(f"| {m} | {pct(d['accuracy'])} | {pct(d['fold_std'])} | {d['images']} |")
    lines += [
        "",
        "Label recovery: the adversarial image with its mask's region deleted (for the adversarial "
        "top-1); how often the top-1 is then the clean image's top-1, or the ground truth.",
        "",
        "| deletion | perturbation | mean deleted area % | clean top-1 back % | clean label in top-5 % "
        "| ground truth top-1 % |",
        "|---|---|---|---|---|---|",
    ]
    for m, r in report["recovery"].items():
        lines.append(f"| {m} | {r['perturbation']} | {pct(r['mean_area'])} | {pct(r['clean_top1'])} | "
                     f"{pct(r['clean_top5'])} | {pct(r['truth_top1'])} |")
    lines += ["", f"Paper: {PAPER}.", ""]
    return "\n".join(lines)


def figure(result: AdversarialResult, path: str | Path, examples: int = 6) -> None:
    """Fig. 10 (left): per column one attacked image; rows: clean image, adversarial image, then each
    method's mask on the clean and on the adversarial image (masks on a fixed 0–1 scale)."""
    from ..viz import new_figure

    images = result.report["images"][:examples]
    methods = list(result.clean_masks)
    rows = 2 + 2 * len(methods)
    cols = len(images)
    fig = new_figure(figsize=(1.9 * cols, 1.9 * rows))
    axes = fig.subplots(rows, cols, squeeze=False)
    for j, info in enumerate(images):
        panels = [(result.clean[j], f"{info['clean_name'][:18]}"),
                  (result.adversarial[j], f"→ {info['adversarial_name'][:16]}")]
        for r, (img, title) in enumerate(panels):
            axes[r, j].imshow(img.permute(1, 2, 0).clamp(0, 1).numpy())
            axes[r, j].set_title(title, fontsize=7)
        for i, m in enumerate(methods):
            for r, masks in enumerate((result.clean_masks[m], result.adversarial_masks[m])):
                axes[2 + 2 * i + r, j].imshow(masks[j, 0].numpy(), cmap="jet", vmin=0, vmax=1)
    labels = ["clean", "adversarial"] + [f"{m}\n{w}" for m in methods for w in ("clean", "adv.")]
    for r, label in enumerate(labels):
        axes[r, 0].set_ylabel(label, fontsize=8)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=80)


def write_report(result: AdversarialResult, out: str | Path) -> list[Path]:
    """``adversarial.json``, ``adversarial.md`` and ``adversarial.png`` in ``out`` (atomic writes)."""
    out = Path(out)
    paths = [out / "adversarial.json", out / "adversarial.md", out / "adversarial.png"]
    with atomic_path(paths[0]) as tmp:
        tmp.write_text(json.dumps(result.report, indent=1))
    with atomic_path(paths[1]) as tmp:
        tmp.write_text(markdown(result.report))
    figure(result, paths[2])
    return paths
