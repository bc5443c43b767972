"""Stage 0 of the summaries: crisp masks for a set of image files, cached one file per image.

Crisp masks are by far the most expensive stage (≈ 450 forward+backward passes per image), so each
finished batch is written to ``<cache>/<stem>.npy`` at once: an interrupted or failing run keeps
everything computed so far, and a rerun only computes what is missing.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from ..blackbox import BlackBox
from ..errors import DataError, ImageError, OutputError
from ..images import load_batch, load_image, resize_image, to_tensor
from ..methods.crisp import CRISP_PRESET, crisp_mask
from ..methods.optimise import PRESETS

WORK_SIZE = (224, 224)  # every stage (masks, proposals, flow, report) works on images of this size


def load_work_images(paths: Sequence[Path], size: tuple[int, int] = WORK_SIZE) -> torch.Tensor:
    """The images as the summaries see them: whole image resized (no crop) to ``size``."""
    return load_batch(paths, size)


def usable_images(paths: Sequence[Path]) -> tuple[list[Path], list[str]]:
    """Split files into readable images and one-line reasons for the others (skipped, not fatal)."""
    good, skipped = [], []
    for p in paths:
        try:
            load_image(p)
        except ImageError as exc:
            skipped.append(str(exc))
        else:
            good.append(Path(p))
    return good, skipped


def read_annotations(folder: Path) -> dict[str, int] | None:
    """``annotations.json`` in the image folder or its parent (file name → {class_index, ...})."""
    for candidate in (folder / "annotations.json", folder.parent / "annotations.json"):
        if candidate.is_file():
            try:
                raw = json.loads(candidate.read_text())
                return {name: int(rec["class_index"]) for name, rec in raw.items()}
            except (ValueError, KeyError, TypeError) as exc:
                raise DataError(f"{candidate}: malformed annotations ({exc})") from None
    return None


def resolve_file_targets(blackbox: BlackBox, paths: Sequence[Path], target: str) -> list[int]:
    """One class per image: ``label`` (from annotations.json), ``top1`` (the model's own guess),
    or a class name / index shared by every image."""
    if target == "label":
        labels = read_annotations(paths[0].parent) if paths else None
        if labels is None:
            raise DataError("--target label needs an annotations.json beside or above the images")
        missing = [p.name for p in paths if p.name not in labels]
        if missing:
            raise DataError(f"{missing[0]} has no label in annotations.json")
        out = [labels[p.name] for p in paths]
        for label in set(out):
            blackbox.check_target(label)
        return out
    if target == "top1":
        out = []
        with torch.no_grad(), blackbox.evaluating():
            for start in range(0, len(paths), 16):
                x = load_work_images(paths[start : start + 16]).to(blackbox.device)
                out += blackbox(x).argmax(1).tolist()
        return out
    return [blackbox.check_target(blackbox.class_index(target))] * len(paths)


def mask_cache_key(model: str, iterations: int, crisp_iterations: int, target: int) -> dict:
    """What a cached crisp mask was made with: model, target, schedule and the crisp preset."""
    settings = {k: v for k, v in asdict(PRESETS[CRISP_PRESET]).items() if k != "iterations"}
    key = {"iterations": iterations, "crisp_iterations": crisp_iterations, "model": model,
           "settings": settings, "target": int(target)}
    return json.loads(json.dumps(key))  # as read back from the sidecar (tuples become lists)


def cached_crisp_masks(
    blackbox: BlackBox,
    paths: Sequence[Path],
    targets: Sequence[int],
    cache_dir: str | os.PathLike,
    batch_size: int = 8,
    iterations: int = 300,
    crisp_iterations: int = 150,
    progress: bool = True,
) -> np.ndarray:
    """Crisp masks (N, H, W) float32 in [0, 1] (1 = salient) at ``WORK_SIZE``, reusing the cache.

    The cache key is the file stem plus the target, the iteration counts and the crisp preset's
    settings (stored in a sidecar JSON), so changing any of them recomputes rather than silently
    reusing masks made another way.
    """
    cache = Path(cache_dir)
    try:
        cache.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create {cache}: {exc.strerror or exc}") from None

    def valid(p: Path, t: int) -> bool:
        meta = cache / f"{p.stem}.json"
        if not (cache / f"{p.stem}.npy").is_file() or not meta.is_file():
            return False
        try:
            stored = json.loads(meta.read_text())
        except ValueError:
            return False
        return stored == mask_cache_key(blackbox.name, iterations, crisp_iterations, t)

    todo = [i for i, (p, t) in enumerate(zip(paths, targets)) if not valid(p, t)]
    bar = tqdm(total=len(paths), initial=len(paths) - len(todo), desc="crisp masks", unit="img",
               disable=not progress)
    for start in range(0, len(todo), batch_size):
        chunk = todo[start : start + batch_size]
        x = load_work_images([paths[i] for i in chunk]).to(blackbox.device)
        t = torch.tensor([int(targets[i]) for i in chunk])
        expl = crisp_mask(blackbox, x, target=t, iterations=iterations, crisp_iterations=crisp_iterations)
        for j, i in enumerate(chunk):
            np.save(cache / f"{paths[i].stem}.npy", expl.masks[j, 0].cpu().numpy().astype(np.float32))
            key = mask_cache_key(blackbox.name, iterations, crisp_iterations, targets[i])
            (cache / f"{paths[i].stem}.json").write_text(json.dumps(key))
        bar.update(len(chunk))
    bar.close()
    return np.stack([np.load(cache / f"{p.stem}.npy") for p in paths])


def to_work_image(array: np.ndarray, size: tuple[int, int] = WORK_SIZE) -> np.ndarray:
    """(H, W, 3) uint8 → the working-size uint8 image used by proposals, flow and the report."""
    t = resize_image(to_tensor(array), size)
    return (t.permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)
