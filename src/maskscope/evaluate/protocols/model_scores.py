"""The protocols that run the classifier on the masked images, once per image and method, in the
compute phase: their per-image scores are cached beside the mask, computed from the stored values.

Dabkowski & Gal's saliency metric, Godi's % drop, the mask area, RISE's deletion / insertion AUC and
Fong & Vedaldi's minimal suppressive boxes (Fig. 8).
"""

from __future__ import annotations

import math
from typing import Any

from ...metrics import LEVELS, deletion_insertion_auc, mask_box_suppression, probability_drop, saliency_metric
from ...metrics.saliency_metric import salient_boxes
from ...metrics.suppression import FONG_THRESHOLDS
from ..config import GROUND_TRUTH
from ..markdown import pipe_table
from .base import MODEL, Protocol, Rows, Split, cell, mean, stderr

CURVE_STEPS = 32  # RISE's pixel increments: steps + 1 points per curve


class Saliency(Protocol):
    """Dabkowski & Gal's saliency metric of the tightest crop of mask ≥ 0.5 (the ground-truth row:
    averaged over its boxes, as the paper does)."""

    name = "saliency"
    needs = frozenset({MODEL})
    passes = "1 (ground-truth row: 1 per box)"
    record_keys = ("saliency",)
    head = ("saliency metric ↓",)
    summary_keys = ("saliency",)

    def image_scores(self, rows: Rows) -> list[dict[str, Any]]:
        crops = salient_boxes(rows.masks.detach().cpu())
        boxes = [s.boxes if m == GROUND_TRUTH else [b] for s, m, b in zip(rows.samples, rows.methods, crops)]
        values = saliency_metric(rows.model, rows.images, rows.targets, boxes=boxes)
        return [{"saliency": float(v)} for v in values]

    def summarise(self, split: Split) -> dict[str, Any]:
        return {"saliency": mean([r["saliency"] for r in split.report_records()])}

    def columns(self, summary: dict[str, Any]) -> dict[str, Any]:
        return {"saliency_metric": summary.get("saliency")}

    def cells(self, summary: dict[str, Any]) -> list[str]:
        return [cell(summary.get("saliency"), ".3f")]


class Drop(Protocol):
    """Godi et al.'s % drop of the class probability when the mask is blurred away."""

    name = "drop"
    needs = frozenset({MODEL})
    passes = "2"
    record_keys = ("drop",)
    head = ("% drop ↑",)
    summary_keys = ("drop",)

    def image_scores(self, rows: Rows) -> list[dict[str, Any]]:
        drop = probability_drop(rows.model, rows.images, rows.masks, rows.targets)
        return [{"drop": float(v)} for v in drop]

    def summarise(self, split: Split) -> dict[str, Any]:
        return {"drop": mean([r["drop"] for r in split.report_records()])}

    def columns(self, summary: dict[str, Any]) -> dict[str, Any]:
        return {"drop_percent": summary.get("drop")}

    def cells(self, summary: dict[str, Any]) -> list[str]:
        return [cell(summary.get("drop"), ".1f")]


class Area(Protocol):
    """The mean mask value: read the % drop and the curves with it (larger masks delete more)."""

    name = "area"
    record_keys = ("area",)
    head = ("mask area",)
    summary_keys = ("area",)

    def image_scores(self, rows: Rows) -> list[dict[str, Any]]:
        return [{"area": float(m.mean())} for m in rows.masks]

    def summarise(self, split: Split) -> dict[str, Any]:
        return {"area": mean([r["area"] for r in split.report_records()])}

    def columns(self, summary: dict[str, Any]) -> dict[str, Any]:
        return {"mask_area": summary.get("area")}

    def cells(self, summary: dict[str, Any]) -> list[str]:
        return [cell(summary.get("area"), ".3f")]


class DeletionInsertion(Protocol):
    """RISE's deletion and insertion curves, integrated."""

    name = "deletion-insertion"
    needs = frozenset({MODEL})
    passes = str(2 * (CURVE_STEPS + 1))
    record_keys = ("deletion_auc", "insertion_auc")
    head = ("deletion AUC ↓", "insertion AUC ↑")
    summary_keys = record_keys

    def image_scores(self, rows: Rows) -> list[dict[str, Any]]:
        curves = deletion_insertion_auc(rows.model, rows.images, rows.masks, rows.targets, steps=CURVE_STEPS,
                                        batch_size=rows.batch_size)
        return [{"deletion_auc": float(d), "insertion_auc": float(i)}
                for d, i in zip(curves.deletion, curves.insertion)]

    def summarise(self, split: Split) -> dict[str, Any]:
        records = split.report_records()
        return {k: mean([r.get(k) for r in records]) for k in self.summary_keys}

    def columns(self, summary: dict[str, Any]) -> dict[str, Any]:
        return {k: summary.get(k) for k in self.summary_keys}

    def cells(self, summary: dict[str, Any]) -> list[str]:
        return [cell(summary.get(k), ".3f") for k in self.summary_keys]


class Suppression(Protocol):
    """Fong & Vedaldi's minimal suppressive boxes (Fig. 8): per suppression level the smallest box,
    from the mask thresholded at 0, 0.1, …, 1, whose blurring reaches it."""

    name = "suppression"
    needs = frozenset({MODEL})
    passes = f"≤ {2 + len(FONG_THRESHOLDS)}"
    record_keys = ("p_original", "p_blurred", "suppression_areas")
    summary_keys = ("suppression",)

    def image_scores(self, rows: Rows) -> list[dict[str, Any]]:
        result = mask_box_suppression(rows.model, rows.images, rows.masks, rows.targets, levels=LEVELS,
                                      batch_size=rows.batch_size)
        return [{"p_original": float(result.p_original[i]), "p_blurred": float(result.p_blurred[i]),
                 "suppression_areas": [None if math.isnan(a) else a for a in result.areas[i].tolist()]}
                for i in range(len(rows.samples))]

    def summarise(self, split: Split) -> dict[str, Any]:
        areas = [r["suppression_areas"] for r in split.report_records()]
        return {"suppression": {
            f"{round(100 * lv)}": {
                "mean_area": mean([a[i] for a in areas]),
                "stderr": stderr([a[i] for a in areas]),
                "n": sum(a[i] is not None for a in areas),
            }
            for i, lv in enumerate(LEVELS)
        }}

    def columns(self, summary: dict[str, Any]) -> dict[str, Any]:
        return {f"min_box_area_{lv}": e["mean_area"] for lv, e in summary.get("suppression", {}).items()}

    def sections(self, metrics: dict[str, dict[str, Any]], row_names: dict[str, str]) -> list[str]:
        names = [n for n, m in metrics.items() if m.get("suppression")]
        if not names:
            return []
        levels = list(metrics[names[0]]["suppression"])
        rows = [[name] + [cell(metrics[name]["suppression"][lv]["mean_area"], ".0f") for lv in levels]
                for name in names]
        table = "\n".join(pipe_table(["method"] + [f"{lv}%" for lv in levels], rows))
        return ["Mean smallest box (pixels²) whose blurring reaches each normalised suppression "
                "(Fong & Vedaldi Fig. 8; boxes from the mask thresholded at 0, 0.1, …, 1):", "", table]


