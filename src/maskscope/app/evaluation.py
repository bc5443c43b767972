"""Read an ``evaluate`` output folder for the explorer: metrics, plots and per-image outcomes.

A folder holds one evaluation (``details.json``, ``metrics.json``, ``cache/``, plots) or, from
``evaluate --synthetic``, one per variant in sub-folders. Per image and method the page shows the
box the localisation protocol drew (value thresholding at the α tuned on the held-out split) and
the mask's maximum, and whether each hit a ground-truth box: the per-image view of the table.
A cached mask that does not load as a finite 2-D array of the run's size is shown as missing.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..boxes import iou, mask_to_box, scale_box, validate_box
from ..data.folders import load_folder
from ..errors import DataError
from ..evaluate.cache import entry_stem
from ..metrics.localisation import IOU_THRESHOLD
from ..metrics.pointing import distance_to_box, max_point
from ..storage import safe_name
from .columns import metric_tables

DETAILS = "details.json"


def find_runs(root: Path) -> dict[str, Path]:
    """name → folder of every evaluation in ``root`` (itself, or its variants' sub-folders)."""
    if (root / DETAILS).is_file():
        return {root.name or "evaluation": root}
    runs = {p.name: p for p in sorted(root.iterdir()) if (p / DETAILS).is_file()}
    if not runs:
        raise DataError(f"{root}: not an evaluate output folder (no {DETAILS} in it or its sub-folders)")
    return runs


class EvaluationRun:
    """One evaluation: its metrics, its plots and, per image, what each method's mask did."""

    def __init__(self, folder: Path, model_classes: dict[str, list[str]] | None = None) -> None:
        """``model_classes``: model name → class names, for a run whose data names no classes."""
        self.folder = folder
        try:
            details = json.loads((folder / DETAILS).read_text())
            self.metrics: dict[str, dict[str, Any]] = details["metrics"]
            self.info: dict[str, Any] = details["info"]
            flat = folder / "metrics.json"
            self.table: dict[str, dict[str, Any]] = json.loads(flat.read_text()) if flat.is_file() else {}
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise DataError(f"{folder}: unreadable evaluation ({exc})") from None
        names = (model_classes or {}).get(str(self.info.get("model")), [])
        self.class_names: dict[str, str] = {str(i): n.split(",")[0] for i, n in enumerate(names)}
        self.class_names.update(self.info.get("class_names") or {})

    @property
    def methods(self) -> list[str]:
        return list(self.metrics)

    def plots(self) -> list[str]:
        """The PNG files of the run, relative to its folder: the plots, then the example grids."""
        found = sorted(self.folder.glob("*.png")) + sorted((self.folder / "examples").glob("*.png"))
        return [p.relative_to(self.folder).as_posix() for p in found]

    def table_rows(self) -> tuple[list[str], list[dict[str, Any]]]:
        """(column names, one row per method) of ``metrics.json``: numbers only, for sorting."""
        columns: list[str] = []
        for values in self.table.values():
            columns += [k for k, v in values.items() if k not in columns and _is_number_or_none(v)]
        rows = [{"method": m, **{c: values.get(c) for c in columns}} for m, values in self.table.items()]
        return columns, rows

    def tables(self) -> list[dict[str, Any]]:
        """The metrics as the page shows them: grouped, labelled, formatted like ``metrics.md``."""
        return metric_tables(*self.table_rows(), self.class_names)

    @functools.cached_property
    def _dataset(self):
        data = Path(self.info.get("data", ""))
        if not data.is_dir() and (self.folder / "data").is_dir():
            data = self.folder / "data"
        return load_folder(data)

    def image_path(self, key: str) -> Path | None:
        item = self._items().get(key)
        return None if item is None else item.path

    def _items(self):
        return {item.key: item for item in self._dataset.items}

    @functools.cached_property
    def images(self) -> list[dict[str, Any]]:
        """Per image: ground-truth boxes and, per method, predicted box, maximum and the two outcomes
        (``None`` where the image has no boxes). Only images with a cached mask are listed."""
        size = tuple(self.info.get("size") or (224, 224))
        tolerance = float(self.info.get("pointing_tolerance", 15.0))
        names = self.class_names
        out = []
        for item in self._dataset.items:
            boxes = []
            if item.boxes and item.width and item.height:
                boxes = [list(scale_box(b, (item.height, item.width), size)) for b in item.boxes]
            methods = {}
            for method in self.methods:
                result = self._outcome(method, item.key, boxes, size, tolerance)
                if result is not None:
                    methods[method] = result
            if methods:
                label = item.label
                out.append({"key": item.key, "name": item.name, "label": label,
                            "class_name": names.get(str(label), "" if label is None else f"class {label}"),
                            "boxes": boxes, "methods": methods})
        return out

    def _outcome(self, method: str, key: str, boxes: list, size: tuple[int, int],
                 tolerance: float) -> dict[str, Any] | None:
        path = self.folder / "cache" / safe_name(method) / f"{entry_stem(key)}.npy"
        array = _cached_mask(path, size)
        if array is None:
            return None
        mask = torch.from_numpy(array)
        alpha = (self.metrics[method].get("localisation") or {}).get("value", {}).get("alpha", 0.5)
        box = mask_to_box(mask, "value", alpha)
        point = max_point(mask)
        gts = [validate_box(b, size) for b in boxes]
        located = pointed = None
        if gts:
            located = box is not None and any(iou(box, g) > IOU_THRESHOLD for g in gts)
            pointed = any(distance_to_box(point, g) <= tolerance for g in gts)
        return {"box": None if box is None else list(box), "point": list(point), "alpha": alpha,
                "localised": located, "pointed": pointed}


def _cached_mask(path: Path, size: tuple[int, int]) -> np.ndarray | None:
    """The cached mask as float32 (H, W); None when missing, unreadable or not a finite mask of ``size``."""
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError):
        return None
    if array.shape != tuple(size) or not (np.issubdtype(array.dtype, np.floating)
                                          or np.issubdtype(array.dtype, np.integer)):
        return None
    array = array.astype(np.float32)
    return array if np.isfinite(array).all() else None


def _is_number_or_none(value: Any) -> bool:
    return value is None or (isinstance(value, (int, float)) and not isinstance(value, bool))


def read_summaries(folder: Path) -> dict[str, Any]:
    """A ``summarize`` output folder: ``summaries.json`` plus each summary's tile files."""
    try:
        report = json.loads((folder / "summaries.json").read_text())
    except (OSError, ValueError) as exc:
        raise DataError(f"{folder}: not a summarize output folder ({exc})") from None
    for summary in report.get("summaries", []):
        k = summary.get("id", 0)
        tiles = sorted((folder / "summaries").glob(f"s{k:02d}_*.png"))
        summary["tiles"] = [t.relative_to(folder).as_posix() for t in tiles]
    return report
