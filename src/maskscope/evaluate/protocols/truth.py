"""The protocols that compare masks with the ground truth, in the score phase: they need no
classifier (zero forward passes) and are recomputed from the cached masks on every run.

Localisation error (Fong & Vedaldi Table 1, Dabkowski & Gal), Zhang et al.'s pointing game, and
the synthetic benchmark's mass off the object. Thresholds for localisation are tuned on the
held-out *tune* split and reported on the *report* split.
"""

from __future__ import annotations

from typing import Any

from ...metrics import LocalisationError, PointingGame, background_by_class, tune_threshold
from ..markdown import pipe_table
from ..samples import object_mask
from .base import BOXES, OBJECT_MASKS, Protocol, Split, pct

TUNED_MODES = ("value", "energy", "mean")
TABLE_MODES = (*TUNED_MODES, "fixed@0.5")


class Localisation(Protocol):
    """The tightest box around the thresholded mask must have IoU > 0.5 with a ground-truth box."""

    name = "localisation"
    needs = frozenset({BOXES})
    head = ("loc. err. % value*", "energy*", "mean*", "@0.5")
    summary_keys = ("localisation",)

    def summarise(self, split: Split) -> dict[str, Any]:
        tune_masks = [split.masks[s.item.key] for s in split.tune]
        tune_boxes = [s.boxes for s in split.tune]
        report_masks = [split.masks[s.item.key] for s in split.report]
        report_boxes = [s.boxes for s in split.report]
        out = {}
        for mode in TUNED_MODES:
            alpha, _ = tune_threshold(tune_masks, tune_boxes, mode)
            acc = LocalisationError(mode, alpha)
            acc.update(report_masks, report_boxes)
            out[mode] = {"alpha": alpha, "error": acc.compute()}
        fixed = LocalisationError("fixed", 0.5)
        fixed.update(report_masks, report_boxes)
        out["fixed@0.5"] = {"alpha": 0.5, "error": fixed.compute()}
        return {"localisation": out}

    def columns(self, summary: dict[str, Any]) -> dict[str, Any]:
        row = {}
        for mode, entry in summary.get("localisation", {}).items():
            row[f"loc_error_{mode}"] = entry["error"]
            row[f"loc_alpha_{mode}"] = entry["alpha"]
        return row

    def cells(self, summary: dict[str, Any]) -> list[str]:
        loc = summary.get("localisation", {})
        return ["—" if loc.get(mode) is None else pct(loc[mode]["error"]) for mode in TABLE_MODES]

    def sections(self, metrics: dict[str, dict[str, Any]], row_names: dict[str, str]) -> list[str]:
        """The thresholds chosen on the held-out split, per method and mode (Fong's Val-α*)."""
        rows = [[name] + [f"{m['localisation'][mode]['alpha']:g}" for mode in TUNED_MODES]
                for name, m in metrics.items() if "localisation" in m]
        if not rows:
            return []
        table = "\n".join(pipe_table(["method", "α* value", "α* energy", "α* mean"], rows))
        return ["Thresholds chosen on the held-out split:", "", table]


class Pointing(Protocol):
    """Zhang et al.'s pointing game: the mask maximum lies within the tolerance of a box."""

    name = "pointing"
    needs = frozenset({BOXES})
    head = ("pointing %",)
    summary_keys = ("pointing",)

    def summarise(self, split: Split) -> dict[str, Any]:
        pointing = PointingGame(split.tolerance)
        pointing.update([split.masks[s.item.key] for s in split.report], [s.boxes for s in split.report])
        return {"pointing": pointing.compute()}

    def columns(self, summary: dict[str, Any]) -> dict[str, Any]:
        return {"pointing": summary["pointing"]} if "pointing" in summary else {}

    def cells(self, summary: dict[str, Any]) -> list[str]:
        return [pct(summary.get("pointing"))]


class Background(Protocol):
    """``metrics.background_by_class`` over the report images that have an object mask."""

    name = "background"
    needs = frozenset({OBJECT_MASKS})
    summary_keys = ("background",)

    def summarise(self, split: Split) -> dict[str, Any]:
        pairs = [(s, object_mask(s.item, split.size)) for s in split.report]
        kept = [(s, obj) for s, obj in pairs if obj is not None]
        return {"background": background_by_class([split.masks[s.item.key] for s, _ in kept],
                                                   [obj for _, obj in kept], [s.target for s, _ in kept])}

    def columns(self, summary: dict[str, Any]) -> dict[str, Any]:
        row = {}
        for cls, entry in summary.get("background", {}).items():
            row[f"background_argmax_class_{cls}"] = entry["argmax_off_object"]
            row[f"background_mass_class_{cls}"] = entry["mass_off_object"]
        return row
