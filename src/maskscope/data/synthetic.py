"""The synthetic benchmark with known ground truth: scenes, their classifiers, and export to disk.

The generator lives in ``synthetic_scenes``, the small CNN in ``synthetic_models``; this module
gathers the public API and writes a scene set as an annotated folder in the layout of the shared
ImageNet sample, so every folder-based tool (``maskscope evaluate --data``, training, summaries)
runs on synthetic data unchanged.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ..errors import OutputError
from .synthetic_models import (
    Reliance,
    SmallCNN,
    accuracy,
    as_synthetic_blackbox,
    background_reliance,
    load_synthetic_classifier,
    predict,
    train_classifier,
)
from .synthetic_scenes import (
    BACKGROUNDS,
    PART_NAMES,
    POLAR_BEAR,
    POLAR_BEAR_LOOKALIKE,
    VARIANTS,
    SyntheticSet,
    class_names,
    make_scenes,
)


def wnid(index: int) -> str:
    """Stand-in WordNet id of a synthetic class, so annotation files keep the ImageNet fields."""
    return f"syn{index}"


def write_annotated_folder(
    dataset: SyntheticSet, out_dir: str | os.PathLike, prefix: str | None = None
) -> Path:
    """Write ``images/<stem>.png``, ``masks/<stem>.png`` (object mask, 0/255), ``annotations.json``
    and ``class_index.json`` in the format of ``imagenet-val-sample``.

    Each annotation has the sample's fields (class_index, wnid, name, boxes, width, height) plus
    ``background`` (its name) and, for the parts variant, ``part_boxes`` ({part: [box]}) with part
    masks under ``parts/<stem>_<part>.png`` and ``keypoints`` ({part: [[x, y]]}, each part's
    centre). Returns the folder.
    """
    out = Path(out_dir)
    prefix = prefix or f"syn_{dataset.variant}_{dataset.split}"
    annotations, height, width = {}, dataset.images.shape[2], dataset.images.shape[3]
    pixels = (dataset.images.permute(0, 2, 3, 1).numpy() * 255.0).round().clip(0, 255).astype(np.uint8)
    try:
        for sub in ("images", "masks") + (("parts",) if dataset.part_masks is not None else ()):
            (out / sub).mkdir(parents=True, exist_ok=True)
        for i in range(len(dataset)):
            stem = f"{prefix}_{i:05d}"
            label = int(dataset.labels[i])
            Image.fromarray(pixels[i]).save(out / "images" / f"{stem}.png")
            _save_mask(dataset.object_masks[i, 0].numpy(), out / "masks" / f"{stem}.png")
            entry: dict[str, Any] = {
                "class_index": label,
                "wnid": wnid(label),
                "name": dataset.class_names[label],
                "boxes": [[int(c) for c in dataset.boxes[i]]],
                "width": width,
                "height": height,
                "background": dataset.background_names[int(dataset.backgrounds[i])],
            }
            if dataset.part_masks is not None:
                assert dataset.part_names is not None and dataset.part_boxes is not None  # set with the masks
                entry["part_boxes"] = {}
                for p, part in enumerate(dataset.part_names):
                    _save_mask(dataset.part_masks[i, p].numpy(), out / "parts" / f"{stem}_{part}.png")
                    entry["part_boxes"][part] = [[int(c) for c in dataset.part_boxes[i, p]]]
                if dataset.part_centres is not None:
                    entry["keypoints"] = {part: [[round(float(c), 2) for c in dataset.part_centres[i, p]]]
                                          for p, part in enumerate(dataset.part_names)}
            annotations[f"{stem}.png"] = entry
        (out / "annotations.json").write_text(json.dumps(annotations, indent=1))
        index = {str(k): [wnid(k), name] for k, name in enumerate(dataset.class_names)}
        (out / "class_index.json").write_text(json.dumps(index, indent=1))
    except OSError as exc:
        raise OutputError(f"cannot write the synthetic set to {out}: {exc.strerror or exc}") from None
    return out


def _save_mask(mask: np.ndarray, path: Path) -> None:
    Image.fromarray(mask.astype(np.uint8) * 255).save(path)


__all__ = [
    "BACKGROUNDS",
    "PART_NAMES",
    "POLAR_BEAR",
    "POLAR_BEAR_LOOKALIKE",
    "VARIANTS",
    "Reliance",
    "SmallCNN",
    "SyntheticSet",
    "accuracy",
    "as_synthetic_blackbox",
    "background_reliance",
    "class_names",
    "load_synthetic_classifier",
    "make_scenes",
    "predict",
    "train_classifier",
    "wnid",
    "write_annotated_folder",
]
