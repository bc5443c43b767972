"""Stage 0 of the summaries: crisp masks for a set of image files, cached one file per image.

Crisp masks are by far the most expensive stage (≈ 450 forward+backward passes per image), so each
finished batch is written to ``<cache>/<stem>-<content hash>-<target>.npy`` at once: an
interrupted or failing run keeps everything computed so far, and a rerun only computes what is
missing (or stale: another file content, target or setting).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from ..blackbox import BlackBox
from ..data.folders import read_annotations_json
from ..distributed import Distributed
from ..errors import DataError, ImageError, MaskscopeError, OutputError
from ..fingerprint import model_fingerprint
from ..images import load_batch, load_image, resize_image, to_tensor
from ..methods.crisp import CRISP_PRESET, crisp_mask
from ..methods.optimise import PRESETS
from ..storage import content_hash, safe_name, write_atomic, write_bytes_atomic

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
                raw = read_annotations_json(candidate)
                return {name: int(rec["class_index"]) for name, rec in raw.items()}
            except (ValueError, KeyError, TypeError) as exc:
                raise DataError(f"{candidate}: malformed annotations ({exc})") from None
    return None


def resolve_file_targets(blackbox: BlackBox, paths: Sequence[Path], target: str | int) -> list[int]:
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
    index = blackbox.class_index(target)
    blackbox.check_target(index)
    return [index] * len(paths)


def mask_cache_key(model: str, iterations: int, crisp_iterations: int, target: int,
                   sha256: str | None = None, fingerprint: str | None = None) -> dict:
    """What a cached crisp mask was made with: the image file's content hash, model (its name and
    ``fingerprint.model_fingerprint``: its weights and settings), target, schedule and the crisp
    preset."""
    settings = {k: v for k, v in asdict(PRESETS[CRISP_PRESET]).items() if k != "iterations"}
    settings["default_target"] = "top1"  # once a field of Settings: kept, so earlier caches still match
    key = {"iterations": iterations, "crisp_iterations": crisp_iterations, "model": model,
           "settings": settings, "target": int(target), "schedule": "early-stop"}
    if fingerprint is not None:
        key["model_fingerprint"] = fingerprint
    if sha256 is not None:
        key["sha256"] = sha256
    return json.loads(json.dumps(key))  # as read back from the sidecar (tuples become lists)


def mask_entry_name(path: Path, sha256: str, target: int) -> str:
    """``<stem>-<content hash>-<target>``: the stem only for readability, the hash for identity."""
    return f"{safe_name(path.stem)}-{sha256[:16]}-{int(target)}"


@dataclass
class CacheReport:
    """What a cached run did: entries reused, computed, and (among those computed) stale ones,
    i.e. entries found for the same file or name whose key (content, target, settings) no longer
    matched, or that could not be read."""

    reused: int = 0
    computed: int = 0
    stale: int = 0

    def line(self, what: str) -> str:
        text = f"{what}: {self.reused} reused from the cache, {self.computed} computed"
        return text + (f" ({self.stale} stale entries recomputed)" if self.stale else "")


def _read_mask(npy: Path) -> np.ndarray | None:
    """A cached mask, or None when the file is missing, garbage, pickled or of the wrong shape."""
    try:
        array = np.load(npy, allow_pickle=False)
    except (OSError, ValueError, EOFError):
        return None
    if array.dtype.kind != "f" or array.shape != WORK_SIZE or not np.isfinite(array).all():
        return None
    return array.astype(np.float32)


def cached_crisp_masks(
    blackbox: BlackBox,
    paths: Sequence[Path],
    targets: Sequence[int],
    cache_dir: str | os.PathLike,
    batch_size: int = 8,
    iterations: int = 300,
    crisp_iterations: int = 150,
    progress: bool = True,
    report: CacheReport | None = None,
    ddp: Distributed | None = None,
) -> np.ndarray | None:
    """Crisp masks (N, H, W) float32 in [0, 1] (1 = salient) at ``WORK_SIZE``, reusing the cache.

    Each entry is ``<stem>-<sha256[:16]>-<target>.npy`` with a sidecar JSON holding the full key:
    the file's content hash (sha256 of its bytes), the target, the iteration counts and the crisp
    preset's settings. Same-named files in other folders, ``a.jpg`` beside ``a.png`` and an edited
    file therefore never share an entry, and a sidecar that does not match its key, or a mask that
    cannot be read back (garbage, a pickle), is recomputed. ``report`` (when given) is filled with
    how many entries were reused, computed and found stale.

    Under torchrun (``ddp``) each rank computes the missing masks of its share of the batches
    (``Distributed.batches``), and rank 0 then reads the others' from the cache and returns them
    all; the other ranks return ``None``.
    """
    ddp = ddp if ddp is not None else Distributed()
    cache = Path(cache_dir)
    try:
        cache.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create {cache}: {exc.strerror or exc}") from None
    report = report if report is not None else CacheReport()
    digests = [content_hash(p) for p in paths]
    names = [mask_entry_name(p, d, t) for p, d, t in zip(paths, digests, targets)]
    fingerprint = model_fingerprint(blackbox)
    keys = [mask_cache_key(blackbox.name, iterations, crisp_iterations, t, d, fingerprint)
            for t, d in zip(targets, digests)]
    # earlier entries of each source file (its content or target may have changed since)
    sources: set[str] = set()
    for meta in cache.glob("*.json"):
        try:
            sources.add(str(json.loads(meta.read_text()).get("file")))
        except (OSError, ValueError, AttributeError):
            continue

    masks: list[np.ndarray | None] = []
    todo, stale = [], 0
    for i, (p, name, key) in enumerate(zip(paths, names, keys)):
        meta, npy = cache / f"{name}.json", cache / f"{name}.npy"
        mask = None
        seen = meta.exists() or str(p.resolve()) in sources or (cache / f"{p.stem}.npy").exists()
        if meta.is_file() and npy.is_file():
            try:
                stored = json.loads(meta.read_text())
                stored.pop("file", None)
            except (OSError, ValueError, AttributeError):
                stored = None
            if stored == key:
                mask = _read_mask(npy)
        masks.append(mask)
        if mask is None:
            todo.append(i)
            stale += seen
    report.reused, report.computed, report.stale = len(paths) - len(todo), len(todo), stale

    bar = tqdm(total=len(paths), initial=len(paths) - len(todo), desc="crisp masks", unit="img",
               disable=not progress)
    missing = set(todo)
    mine = [[i for i in chunk if i in missing] for chunk in ddp.batches(range(len(paths)), batch_size)]
    error = None
    try:
        _compute(blackbox, paths, targets, [c for c in mine if c], iterations, crisp_iterations, cache, names,
                 keys, masks, bar)
    except MaskscopeError as exc:
        error = exc
    bar.close()
    ddp.agree(error)  # every rank's masks are in the cache now
    if not ddp.main:
        return None
    done = []
    for i, mask in enumerate(masks):
        if mask is None:  # computed by another rank
            mask = _read_mask(cache / f"{names[i]}.npy")
            if mask is None:
                raise OutputError(f"the mask of {paths[i]} is missing from {cache} after every rank finished")
        done.append(mask)
    return np.stack(done) if done else np.zeros((0, *WORK_SIZE), np.float32)


def _compute(blackbox, paths, targets, chunks, iterations, crisp_iterations, cache, names, keys, masks,
             bar) -> None:
    """Crisp masks of the batches ``chunks`` (indices into ``paths``), written to the cache."""
    for chunk in chunks:
        x = load_work_images([paths[i] for i in chunk]).to(blackbox.device)
        t = torch.tensor([int(targets[i]) for i in chunk])
        expl = crisp_mask(blackbox, x, target=t, iterations=iterations, crisp_iterations=crisp_iterations)
        for j, i in enumerate(chunk):
            array = expl.masks[j, 0].cpu().numpy().astype(np.float32)
            text = json.dumps({**keys[i], "file": str(paths[i].resolve())}).encode("utf-8")
            try:
                write_atomic(cache / f"{names[i]}.npy", partial(np.save, arr=array))
                write_bytes_atomic(cache / f"{names[i]}.json", text)
            except OSError as exc:
                raise OutputError(f"cannot write to the mask cache {cache}: {exc.strerror or exc}") from None
            masks[i] = array
        bar.update(len(chunk))


def to_work_image(array: np.ndarray, size: tuple[int, int] = WORK_SIZE) -> np.ndarray:
    """(H, W, 3) uint8 → the working-size uint8 image used by proposals, flow and the report."""
    t = resize_image(to_tensor(array), size)
    return (t.permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)
