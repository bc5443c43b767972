"""Explain image files in batches: load, skip bad files, optimise, map masks back to each file.

Each whole image is resized to the black box's input size (no centre crop, which would hide part of
the image from the explanation); the mask is resized back to the file's own pixels when saved.
"""

from __future__ import annotations

import numbers
import os
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .blackbox import BlackBox, TargetSpec, as_blackbox, require_finite
from .errors import ConfigError, MaskscopeError, NonFiniteError
from .explanation import Explanation
from .images import IMAGE_EXTENSIONS, MAX_PIXELS, load_image_reduced, resize_image, to_tensor
from .manifest import MANIFEST, previous_files
from .methods.registry import as_spec


@dataclass
class FileBatchResult:
    explanation: Explanation | None
    failures: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)


def load_files(
    paths: Sequence[str | os.PathLike], size: tuple[int, int], max_pixels: int | None = MAX_PIXELS,
) -> tuple[list[torch.Tensor], list[str], list[tuple[int, int]], list[tuple[str, str]]]:
    """Load what can be loaded; return images resized to ``size`` and the failures with reasons.
    A large file is decoded at a reduced size (never below ``size``), so memory follows the
    model's input; an image above ``max_pixels`` is a failure like an unreadable file."""
    images, good, sizes, failures = [], [], [], []
    for path in paths:
        try:
            array, native = load_image_reduced(path, size, max_pixels)
        except MaskscopeError as exc:
            failures.append((str(path), str(exc)))
            continue
        images.append(resize_image(to_tensor(array), size))
        good.append(str(path))
        sizes.append(native)
    return images, good, sizes, failures


def expand_inputs(items: Sequence[str | os.PathLike]) -> tuple[list[Path], list[tuple[str, str]]]:
    """Files as given (a bad one is reported when it is read), folders expanded to their images;
    a folder with no image in it is a failure listed like a bad file, not the end of the batch.
    Files that maskscope wrote (listed in their folder's manifest: an ``--out`` given as input, or
    the same folder as input and ``--out``) are left out, with one warning, so a run never explains
    its own masks and overlays."""
    paths: list[Path] = []
    failures: list[tuple[str, str]] = []
    ours: dict[Path, set[str]] = {}  # folder → the files its manifest says maskscope wrote
    skipped = 0
    for item in items:
        path = Path(item)
        found = sorted(f for f in path.iterdir() if f.suffix.lower() in IMAGE_EXTENSIONS) \
            if path.is_dir() else [path]
        kept = [f for f in found if f.name not in _written_in(f.parent, ours)]
        skipped += len(found) - len(kept)
        if path.is_dir() and not kept:
            only_ours = " (only files maskscope wrote)" if found else ""
            failures.append((str(path), f"{path}: folder contains no images{only_ours}"))
        paths.extend(kept)
    if skipped:
        warnings.warn(f"{skipped} input files skipped: maskscope wrote them (listed in their folder's "
                      f"{MANIFEST})", stacklevel=2)
    return paths, failures


def _written_in(folder: Path, seen: dict[Path, set[str]]) -> set[str]:
    if folder not in seen:
        seen[folder] = set(previous_files(folder)) if (folder / MANIFEST).is_file() else set()
    return seen[folder]


def explain_files(
    blackbox: BlackBox | torch.nn.Module,
    paths: Sequence[str | os.PathLike],
    method: str | Callable = "meaningful",
    target: TargetSpec = None,
    batch_size: int = 8,
    on_batch: Callable[[FileBatchResult], None] | None = None,
    max_pixels: int | None = MAX_PIXELS,
    **options,
) -> Iterator[FileBatchResult]:
    """Yield one result per batch of files; a bad file is reported, never fatal for the others,
    and so is an image whose scores or masks come out NaN or inf (its batch is then redone image
    by image, one result each).

    ``target`` applies to every image (an int, a class name, ``top1``/``topK``); an image of more
    than ``max_pixels`` pixels is reported like a bad file. A bare module (not a ``BlackBox``) sees
    each image as [0, 1] RGB at 224×224. One path (a string or ``Path``) is explained as a list of
    one, not as the characters of its name. ``method`` is a registered name or a function: a
    built-in, or one of the user's (``register_method`` says what it takes and returns).
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or batch_size < 1:
        raise ConfigError(f"batch_size must be a whole number of at least 1, got {batch_size!r}")
    blackbox = as_blackbox(blackbox)
    fn = as_spec(method).function()
    size = blackbox.input_size or (224, 224)
    paths = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    odd = [p for p in paths if not isinstance(p, (str, os.PathLike))]
    if odd:
        raise ConfigError(f"paths must be file names (str or Path), got {type(odd[0]).__name__} {odd[0]!r}")
    paths = [Path(p) for p in paths]
    for start in range(0, len(paths), batch_size):
        loaded = load_files(paths[start : start + batch_size], size, max_pixels)
        for result in _explain_loaded(fn, blackbox, *loaded, target, options):
            if on_batch is not None:
                on_batch(result)
            yield result


def _explain_loaded(fn, blackbox: BlackBox, images: list[torch.Tensor], good: list[str],
                    sizes: list[tuple[int, int]], failures: list[tuple[str, str]], target: TargetSpec,
                    options: dict) -> list[FileBatchResult]:
    """One result for the loaded batch; where its scores or masks are NaN or inf, one per image
    instead, and an image whose own are non-finite is reported with that cause like a bad file, so one such
    image neither stops the run nor writes a mask that means nothing."""
    if not images:
        return [FileBatchResult(None, failures)]
    try:
        return [FileBatchResult(_explanation(fn, blackbox, images, good, sizes, target, options), failures)]
    except NonFiniteError as exc:
        if len(images) == 1:
            return [FileBatchResult(None, [*failures, (good[0], f"{good[0]}: {exc}")])]
    results = [FileBatchResult(None, failures)] if failures else []
    for i in range(len(images)):
        results += _explain_loaded(fn, blackbox, images[i : i + 1], good[i : i + 1], sizes[i : i + 1], [],
                                   target, options)
    return results


def _explanation(fn, blackbox: BlackBox, images: list[torch.Tensor], good: list[str],
                 sizes: list[tuple[int, int]], target: TargetSpec, options: dict) -> Explanation:
    batch = torch.stack(images).to(blackbox.device)
    explanation = fn(blackbox, batch, target=target, **options)
    require_finite(explanation.masks, f"the {explanation.method} masks hold")
    # a method with several masks per image (extremal) has one row per mask
    index = explanation.image_index
    rows = index.tolist() if index is not None else range(len(good))
    explanation.sources = [good[r] for r in rows]
    explanation.source_sizes = [sizes[r] for r in rows]
    return explanation
