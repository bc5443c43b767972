"""The evaluation page's tables: ``metrics.json``'s flat keys as readable columns with units, in
groups like ``metrics.md``'s sections, and every number formatted as ``metrics.md`` formats it
(the formatters of ``maskscope.evaluate.tables``)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..evaluate.protocols.base import cell, pct
from ..evaluate.tables import ROW_NAMES

Format = Callable[[Any], str]


def _count(value: Any) -> str:
    return "—" if value is None else f"{round(value):d}"


def _alpha(value: Any) -> str:
    return "—" if value is None else f"{value:g}"


def _fixed(digits: int) -> Format:
    return lambda value: cell(value, f".{digits}f")


@dataclass(frozen=True)
class Column:
    group: str
    label: str
    unit: str
    text: Format
    order: int = 100
    over: str = ""  # a heading shared with its neighbours, in a row above


GROUPS = {  # id → (title, note); the page shows them in this order
    "metrics": ("Localisation and scores", "Localisation error and pointing in % of the reported "
                "images; ↓ lower is better, ↑ higher is better."),
    "thresholds": ("Thresholds tuned on the held-out split", "α* of each thresholding, chosen on the "
                   "tuning images and used on the reported ones."),
    "suppression": ("Smallest box reaching each suppression", "Mean area in pixels² of the smallest "
                    "box whose blurring lowers the normalised score by the given %."),
    "background": ("Mask off the object", "% of images whose mask maximum lies off the object, and "
                   "mean % of mask mass off it, per class."),
    "representativeness": ("Deletion region representativeness", "Normalised score after deleting "
                           "the smoothed, binarised mask with each perturbation; ↓ lower is better."),
    "cross": ("Cross-perturbation drop", "% of the target probability lost when the soft salient "
              "region is deleted with each perturbation."),
    "other": ("Other columns", ""),
}
MODES = {"value": "value α*", "energy": "energy α*", "mean": "mean α*", "fixed@0.5": "fixed α = 0.5"}
FIXED = {
    "saliency_metric": Column("metrics", "saliency metric ↓", "log ratio", _fixed(3), 20),
    "drop_percent": Column("metrics", "drop ↑", "%", _fixed(1), 21),
    "mask_area": Column("metrics", "mask area", "fraction", _fixed(3), 22),
    "deletion_auc": Column("metrics", "deletion AUC ↓", "", _fixed(3), 23),
    "insertion_auc": Column("metrics", "insertion AUC ↑", "", _fixed(3), 24),
    "pointing": Column("metrics", "pointing ↑", "% hits", pct, 10),
    "n_report": Column("metrics", "images reported", "count", _count, 30),
    "n_tune": Column("metrics", "images tuning α", "count", _count, 31),
    "repr_area_at_0.5": Column("representativeness", "area deleted @α = 0.5", "fraction", _fixed(3), 90),
}


def _name(class_names: dict[str, str], index: str) -> str:
    return class_names.get(index, f"class {index}")


def column(key: str, class_names: dict[str, str]) -> Column:
    """How the page shows the ``metrics.json`` column ``key``."""
    if key in FIXED:
        return FIXED[key]
    patterns: list[tuple[str, Callable[[re.Match], Column]]] = [
        (r"loc_error_(.+)", lambda m: Column("metrics", MODES.get(m[1], m[1]), "%", pct,
                                             list(MODES).index(m[1]) if m[1] in MODES else 5,
                                             "loc. error ↓")),
        (r"loc_alpha_(.+)", lambda m: Column("thresholds", m[1], "mask value", _alpha, over="α*")),
        (r"min_box_area_(.+)", lambda m: Column("suppression", f"{m[1]}%", "px²", _fixed(0),
                                                over="smallest box at suppression")),
        (r"background_argmax_class_(.+)", lambda m: Column("background", "maximum off object", "%", pct,
                                                           over=_name(class_names, m[1]))),
        (r"background_mass_class_(.+)", lambda m: Column("background", "mass off object", "%", pct,
                                                         over=_name(class_names, m[1]))),
        (r"repr_auc_(.+)", lambda m: Column("representativeness", m[1], "", _fixed(3), 70, "AUC ↓")),
        (r"repr_at_0\.5_(.+)", lambda m: Column("representativeness", m[1], "", _fixed(3), 80,
                                                 "@α = 0.5 ↓")),
        (r"cross_drop_(.+)", lambda m: Column("cross", m[1], "%", _fixed(1), over="drop ↑")),
    ]
    for pattern, make in patterns:
        match = re.fullmatch(pattern, key)
        if match:
            return make(match)
    return Column("other", key.replace("_", " "), "", _fixed(3))


def _head(keys: list[str], described: dict[str, Column]) -> list[list[dict[str, Any]]]:
    """The header rows: one, or two where neighbouring columns share a heading above them. A cell
    of a column has its key and its index ``col`` among the body's cells (the method is 0)."""
    rows = 2 if any(described[k].over for k in keys) else 1
    top: list[dict[str, Any]] = [{"key": "method", "col": 0, "label": "method", "unit": "", "rowspan": rows}]
    below: list[dict[str, Any]] = []
    for col, key in enumerate(keys, start=1):
        c = described[key]
        cell = {"key": key, "col": col, "label": c.label, "unit": c.unit, "rowspan": 1}
        if not c.over:
            top.append({**cell, "rowspan": rows})
            continue
        if below and described[below[-1]["key"]].over == c.over and top[-1].get("over"):
            top[-1]["colspan"] += 1
        else:
            top.append({"over": True, "label": c.over, "colspan": 1})
        below.append(cell)
    return [top, below] if below else [top]


def metric_tables(columns: list[str], rows: list[dict[str, Any]],
                  class_names: dict[str, str]) -> list[dict[str, Any]]:
    """The page's tables: per group its title, note, header rows (see ``_head``) and rows (method,
    what a reference row is, and per column the raw value for sorting and its text)."""
    described = {key: column(key, class_names) for key in columns}
    tables = []
    for group, (title, note) in GROUPS.items():
        keys = [k for k in columns if described[k].group == group]
        keys.sort(key=lambda k: described[k].order)  # stable: the file's order within a rank
        if not keys:
            continue
        body = [{"method": row["method"], "reference": ROW_NAMES.get(row["method"]),
                 "cells": [{"value": row.get(k), "text": described[k].text(row.get(k))} for k in keys]}
                for row in rows if any(row.get(k) is not None for k in keys)]
        tables.append({"id": group, "title": title, "note": note, "rows": body,
                       "head": _head(keys, described),
                       "columns": [{"key": k, "label": described[k].label, "unit": described[k].unit}
                                   for k in keys]})
    return tables
