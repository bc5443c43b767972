"""Image folders to evaluate on: annotated folders (labels + boxes) and plain folders of images.

Annotated folder layout (the one of ``imagenet-val-sample``)::

    DIR/annotations.json     {"<file name>": {"class_index": int, "boxes": [[xmin, ymin, xmax, ymax], ...],
                                              "width": int, "height": int, "wnid": str, "name": str}, ...}
    DIR/images/<file name>   the images, listed by annotations.json (unlisted files are ignored)
    DIR/class_index.json     optional: {"<index>": [wnid, names]}
    DIR/masks/<stem>.png     optional: per-image object masks (the synthetic benchmark writes them)

An entry may also name keypoints, ``"keypoints": {"eye": [[x, y], ...], "foot": [...]}``, in the
stored pixels (0-based, like boxes); the part-saliency test (``maskscope parts``) reads them.

Boxes are in the stored pixels, 0-based and inclusive, so a valid coordinate lies in
[0, width − 1]. The shared ImageNet sample stores them as floats after resizing, which can round a
coordinate a fraction past either edge; we accept anything within one pixel of the image
(−1 ≤ xmin, xmax ≤ width) and clip it, and reject boxes further out, which mean the annotation
belongs to another image size.

Subsets and the held-out split are drawn from a hash of ``(seed, file name)``, not from the
folder's order or the subset size, so they are reproducible and nested: ``--limit 300`` holds the
300 images of smallest hash, and ``--limit 600`` holds those same 300 plus 300 more. Each image's
split (threshold *tuning* vs *report*) depends only on its own name and the seed, so it is the same
whatever the limit (only when a tiny subset would leave one side empty is one image moved over).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import DataError
from ..images import IMAGE_EXTENSIONS, list_images

ANNOTATIONS = "annotations.json"
CLASS_INDEX = "class_index.json"
BOX_TOLERANCE = 1.0  # pixels a box may reach past the image edge (rounding of resized boxes)
DEFAULT_TUNE_FRACTION = 0.3


@dataclass(frozen=True)
class Item:
    """One image of a dataset, with its ground truth when the folder is annotated."""

    path: Path
    key: str  # unique within the dataset; names cache files (the file stem unless two files share it)
    label: int | None = None
    boxes: tuple[tuple[float, float, float, float], ...] = ()
    width: int | None = None
    height: int | None = None
    object_mask: Path | None = None
    # ((part, ((x, y), ...)), ...): named keypoints in the stored pixels (a tuple, so Item stays hashable)
    keypoints: tuple[tuple[str, tuple[tuple[float, float], ...]], ...] = ()

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def size(self) -> tuple[int, int]:
        """(H, W) as annotated; DataError for an image without annotations."""
        if self.height is None or self.width is None:
            raise DataError(f"{self.path}: no annotated width and height")
        return self.height, self.width

    @property
    def parts(self) -> dict[str, list[tuple[float, float]]]:
        """The keypoints by part name."""
        return {part: list(points) for part, points in self.keypoints}


@dataclass
class Dataset:
    root: Path
    items: list[Item]
    annotated: bool
    class_names: dict[int, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.items)

    @property
    def has_boxes(self) -> bool:
        return self.annotated and all(item.boxes for item in self.items)

    @property
    def has_object_masks(self) -> bool:
        return bool(self.items) and all(item.object_mask is not None for item in self.items)


def load_folder(root: str | os.PathLike, require_boxes: bool = False) -> Dataset:
    """An annotated folder when ``annotations.json`` is present, else a plain folder of images."""
    root = Path(root)
    if not root.exists():
        raise DataError(f"{root}: no such folder")
    if not root.is_dir():
        raise DataError(f"{root}: is not a folder")
    if (root / ANNOTATIONS).exists():
        return load_annotated_folder(root, require_boxes=require_boxes)
    if require_boxes:
        raise DataError(f"{root}: no {ANNOTATIONS}; boxes are needed for localisation metrics")
    return load_plain_folder(root)


def load_plain_folder(root: str | os.PathLike) -> Dataset:
    """Every image file directly in ``root`` (or in ``root/images`` when that exists), sorted by name."""
    root = Path(root)
    folder = root / "images" if (root / "images").is_dir() else root
    if not folder.is_dir():
        raise DataError(f"{folder}: no such folder")
    paths = list_images(folder)
    if not paths:
        raise DataError(f"{folder}: no images found (extensions {', '.join(sorted(IMAGE_EXTENSIONS))})")
    keys = _unique_keys([p.name for p in paths])
    return Dataset(root, [Item(path=p, key=k) for p, k in zip(paths, keys)], annotated=False)


def read_annotations_json(path: Path) -> Any:
    """The parsed ``annotations.json``; a key that appears twice in one object is a DataError
    naming it (the standard reader would silently keep the last entry and drop the first)."""

    def unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in pairs:
            if key in out:
                raise DataError(f"{path}: key {key!r} appears twice (only one entry per key)")
            out[key] = value
        return out

    return json.loads(path.read_text(encoding="utf-8"), object_pairs_hook=unique)


def load_annotated_folder(root: str | os.PathLike, require_boxes: bool = True) -> Dataset:
    """Read and validate ``annotations.json``; every problem is one DataError naming the file and entry."""
    root = Path(root)
    ann_path = root / ANNOTATIONS
    if not ann_path.is_file():
        raise DataError(f"{ann_path}: missing annotation file")
    try:
        raw = read_annotations_json(ann_path)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{ann_path}: not valid JSON ({exc})") from None
    except OSError as exc:
        raise DataError(f"{ann_path}: cannot read ({exc.strerror or exc})") from None
    if not isinstance(raw, dict):
        raise DataError(f"{ann_path}: expected an object mapping file names to annotations")
    if not raw:
        raise DataError(f"{ann_path}: no images are annotated")
    image_dir = root / "images"
    if not image_dir.is_dir():
        raise DataError(f"{image_dir}: missing images folder")
    mask_dir = root / "masks"

    names = sorted(raw)
    keys = _unique_keys(names)
    items = []
    for name, key in zip(names, keys):
        entry = raw[name]
        where = f"{ann_path}: entry {name!r}"
        if not isinstance(entry, dict):
            raise DataError(f"{where}: expected an object, got {type(entry).__name__}")
        if Path(name).is_absolute() or ".." in Path(name.replace("\\", "/")).parts:
            raise DataError(f"{where}: the image must lie inside {image_dir} (no absolute paths or '..')")
        path = image_dir / name
        if not path.is_file():
            raise DataError(f"{where}: listed image {path} does not exist")
        label = _integer(entry, "class_index", where, minimum=0)
        width = _integer(entry, "width", where, minimum=1)
        height = _integer(entry, "height", where, minimum=1)
        boxes = _boxes(entry, where, width, height, required=require_boxes)
        keypoints = _keypoints(entry, where, width, height)
        mask = mask_dir / f"{Path(name).stem}.png"
        items.append(
            Item(path=path, key=key, label=label, boxes=boxes, width=width, height=height,
                 object_mask=mask if mask.is_file() else None, keypoints=keypoints)
        )
    return Dataset(root, items, annotated=True, class_names=_class_names(root / CLASS_INDEX))


def _unique_keys(names: list[str]) -> list[str]:
    """File stems, except where two files share a stem (a.jpg, a.png): those keep their full name."""
    stems = [Path(n).stem for n in names]
    counts = Counter(stems)
    return [s if counts[s] == 1 else n for s, n in zip(stems, names)]


def _integer(entry: dict[str, Any], key: str, where: str, minimum: int) -> int:
    if key not in entry:
        raise DataError(f"{where}: missing key {key!r}")
    value = entry[key]
    if isinstance(value, bool) or not isinstance(value, int):
        raise DataError(f"{where}: {key!r} must be an integer, got {value!r}")
    if value < minimum:
        raise DataError(f"{where}: {key!r} must be at least {minimum}, got {value}")
    return value


def _boxes(entry: dict[str, Any], where: str, width: int, height: int, required: bool):
    if "boxes" not in entry:
        if required:
            raise DataError(f"{where}: missing key 'boxes' (boxes are needed for localisation metrics)")
        return ()
    raw = entry["boxes"]
    if not isinstance(raw, list):
        raise DataError(f"{where}: 'boxes' must be a list of [xmin, ymin, xmax, ymax], got {raw!r}")
    if required and not raw:
        raise DataError(f"{where}: 'boxes' is empty (boxes are needed for localisation metrics)")
    out = []
    for box in raw:
        if not isinstance(box, list) or len(box) != 4 or not all(_is_number(c) for c in box):
            raise DataError(f"{where}: a box must be 4 numbers [xmin, ymin, xmax, ymax], got {box!r}")
        x0, y0, x1, y1 = (float(c) for c in box)
        if x0 > x1 or y0 > y1:
            raise DataError(f"{where}: box {box} has xmin > xmax or ymin > ymax")
        tol = BOX_TOLERANCE
        if x0 < -tol or y0 < -tol or x1 > width - 1 + tol or y1 > height - 1 + tol:
            raise DataError(f"{where}: box {box} lies outside the {width}x{height} image")
        out.append((max(x0, 0.0), max(y0, 0.0), min(x1, width - 1.0), min(y1, height - 1.0)))
    return tuple(out)


def _keypoints(entry: dict[str, Any], where: str, width: int, height: int):
    """``{"eye": [[x, y], ...]}`` → ``(("eye", ((x, y), ...)), ...)``; a point further than the box
    tolerance outside the image is an error (it belongs to another image size)."""
    raw = entry.get("keypoints", {})
    if not isinstance(raw, dict):
        raise DataError(f"{where}: 'keypoints' must map part names to lists of [x, y], got {raw!r}")
    out = []
    for part, points in sorted(raw.items()):
        if not isinstance(points, list):
            raise DataError(f"{where}: keypoints of {part!r} must be a list of [x, y], got {points!r}")
        kept = []
        for point in points:
            if not isinstance(point, list) or len(point) != 2 or not all(_is_number(c) for c in point):
                raise DataError(f"{where}: a keypoint of {part!r} must be [x, y], got {point!r}")
            x, y = (float(c) for c in point)
            tol = BOX_TOLERANCE
            if not (-tol <= x <= width - 1 + tol and -tol <= y <= height - 1 + tol):
                raise DataError(
                    f"{where}: keypoint {point} of {part!r} lies outside the {width}x{height} image")
            kept.append((min(max(x, 0.0), width - 1.0), min(max(y, 0.0), height - 1.0)))
        out.append((str(part), tuple(kept)))
    return tuple(out)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _class_names(path: Path) -> dict[int, str]:
    """Optional ``class_index.json`` ({"3": [wnid, "names, ..."]}); first synonym per class."""
    if not path.is_file():
        return {}
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return {int(k): str(v[1] if isinstance(v, list) else v).split(",")[0].strip() for k, v in raw.items()}
    except (ValueError, TypeError, IndexError, AttributeError, OSError) as exc:
        raise DataError(f"{path}: malformed class index ({exc})") from None


# -- subsets and the held-out split ---------------------------------------------------------------
def _unit_hash(text: str) -> float:
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def select(items: list[Item], limit: int | None, seed: int = 0) -> list[Item]:
    """A deterministic random subset of ``limit`` items (all when None), in name order.

    Items are ranked by sha256(seed, file name): the same seed and limit always give the same
    images, and a larger limit gives a superset of a smaller one.
    """
    if limit is not None and limit < 1:
        raise DataError(f"--limit must be at least 1, got {limit}")
    if limit is None or limit >= len(items):
        return list(items)
    ranked = sorted(items, key=lambda it: _unit_hash(f"subset:{seed}:{it.name}"))
    chosen = {it.key for it in ranked[:limit]}
    return [it for it in items if it.key in chosen]


def split(items: list[Item], tune_fraction: float = DEFAULT_TUNE_FRACTION, seed: int = 0) -> dict[str, str]:
    """Assign each item to ``"tune"`` (held-out: thresholds are chosen here) or ``"report"``.

    An item goes to ``tune`` when sha256(seed, file name) mapped to [0, 1) is below
    ``tune_fraction``. With two or more items both sides are kept non-empty by moving the item
    nearest the cut; a single item is reported (the caller then tunes on it too and says so).
    Returns {item key: split}.
    """
    if not 0.0 < tune_fraction < 1.0:
        raise DataError(f"tune fraction must be in (0, 1), got {tune_fraction}")
    scores = {it.key: _unit_hash(f"split:{seed}:{it.name}") for it in items}
    out = {k: ("tune" if s < tune_fraction else "report") for k, s in scores.items()}
    if len(items) == 1:
        out = dict.fromkeys(out, "report")
    elif len(items) >= 2:
        if "tune" not in out.values():
            out[min(scores, key=scores.__getitem__)] = "tune"
        elif "report" not in out.values():
            out[max(scores, key=scores.__getitem__)] = "report"
    return out
