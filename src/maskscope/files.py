"""Explain image files in batches: load, skip bad files, optimise, map masks back to each file.

Each whole image is resized to the black box's input size (no centre crop, which would hide part of
the image from the explanation); the mask is resized back to the file's own pixels when saved.
"""

from __future__ import annotations

import numbers
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .blackbox import BlackBox, TargetSpec, as_blackbox
from .errors import ConfigError, MaskscopeError
from .explanation import Explanation
from .images import MAX_PIXELS, load_image_reduced, resize_image, to_tensor
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
    """Yield one result per batch of files; a bad file is reported, never fatal for the others.

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
    paths = [Path(paths)] if isinstance(paths, (str, os.PathLike)) else [Path(p) for p in paths]
    for start in range(0, len(paths), batch_size):
        chunk = paths[start : start + batch_size]
        images, good, sizes, failures = load_files(chunk, size, max_pixels)
        explanation = None
        if images:
            batch = torch.stack(images).to(blackbox.device)
            explanation = fn(blackbox, batch, target=target, **options)
            # a method with several masks per image (extremal) has one row per mask
            index = explanation.image_index
            rows = index.tolist() if index is not None else range(len(good))
            explanation.sources = [good[r] for r in rows]
            explanation.source_sizes = [sizes[r] for r in rows]
        result = FileBatchResult(explanation, failures)
        if on_batch is not None:
            on_batch(result)
        yield result
