"""``summarize_folder``: the whole visual-summary run for a folder of image files.

Crisp masks are computed (or reused from ``out/masks``), then regions, proposals, proposal flow,
clustering and the report. The CLI's ``maskscope summarize`` is this function plus argument parsing;
the library owns the orchestration so that scripts and notebooks get the same run, caches included.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from ..blackbox import BlackBox
from ..distributed import Distributed
from ..errors import ConfigError, DataError, MaskscopeError
from ..images import list_images, load_image
from .masks import (
    WORK_SIZE,
    CacheReport,
    cached_crisp_masks,
    read_annotations,
    resolve_file_targets,
    to_work_image,
    usable_images,
)
from .pipeline import SummaryResult, summarize_class
from .render import write_report


@dataclass
class FolderSummary:
    """What ``summarize_folder`` made: the summaries, the report page, and the images used."""

    result: SummaryResult
    page: Path
    paths: list[Path]
    targets: list[int]
    skipped: list[str]
    cache: CacheReport


def summarize_folder(
    folder: str | os.PathLike,
    out: str | os.PathLike,
    blackbox: BlackBox | None = None,
    target: str | int = "top1",
    max_images: int | None = None,
    classes: Iterable[int] | None = None,
    iterations: int = 300,
    crisp_iterations: int = 150,
    batch_size: int = 8,
    proposals: int = 500,
    proposal_mode: str = "quality",
    region_closing: float = 5.0,
    min_images: int = 3,
    threads: int | None = None,
    progress: bool = False,
    on_skip: Callable[[str], None] | None = None,
    ddp: Distributed | None = None,
) -> FolderSummary | None:
    """Visual summaries of the images in ``folder`` (one class or group), written to ``out``.

    ``target``: a class name or index shared by all images, ``"top1"`` (each image's prediction)
    or ``"label"`` (each image's class from annotations.json beside or above the folder);
    ``classes`` keeps only the images annotated with one of these classes. Unreadable images are
    skipped (``on_skip`` is told why, as they are found). ``threads`` (None: leave torch, BLAS and
    OpenCV as they are) applies to the summary stages. The crisp masks computed so far stay on
    disk when a later stage fails, and are reused by the next run. ``blackbox`` defaults to the
    embedded ImageNet classifier. Under torchrun (``ddp``) the ranks share the crisp masks and
    rank 0 alone summarises and writes the report (the other ranks return ``None``).
    """
    folder, out = Path(folder), Path(out)
    if not folder.is_dir():
        raise DataError(f"{folder}: no such folder")
    if region_closing < 0:
        raise ConfigError(f"region_closing must be at least 0, got {region_closing}")
    counts = {"max_images": max_images, "iterations": iterations, "crisp_iterations": crisp_iterations,
              "batch_size": batch_size, "proposals": proposals, "min_images": min_images, "threads": threads}
    for option, value in counts.items():
        if value is not None and value < 1:
            raise ConfigError(f"{option} must be at least 1, got {value}")
    paths = list_images(folder)
    if classes is not None:
        wanted = set(classes)
        labels = read_annotations(folder)
        if labels is None:
            raise DataError("selecting classes needs an annotations.json beside or above the images")
        paths = [p for p in paths if labels.get(p.name) in wanted]
    paths, skipped = usable_images(paths[:max_images] if max_images else paths)
    for reason in skipped:
        if on_skip is not None:
            on_skip(reason)
    if len(paths) < 2:
        raise DataError(f"{folder}: summaries need at least 2 usable images, found {len(paths)}")

    if blackbox is None:
        from ..zoo import load_classifier

        blackbox = load_classifier()
    targets = resolve_file_targets(blackbox, paths, target)
    cache = CacheReport()
    masks = cached_crisp_masks(blackbox, paths, targets, out / "masks", batch_size=batch_size,
                               iterations=iterations, crisp_iterations=crisp_iterations, progress=progress,
                               report=cache, ddp=ddp)
    if masks is None:
        return None
    images = [to_work_image(load_image(p)) for p in paths]
    names = [p.stem for p in paths]
    try:
        result = summarize_class(images, masks, names=names, cache_dir=out, proposals=proposals,
                                 min_images=min_images, progress=progress, threads=threads,
                                 proposal_mode=proposal_mode, region_closing=region_closing)
    except MaskscopeError as exc:
        raise type(exc)(f"{exc} (the {len(paths)} crisp masks are kept in {out / 'masks'})") from None
    header = {
        "title": f"{target} on {folder.name} ({len(paths)} images)",
        "model": blackbox.name,
        "target": target,
        "images_dir": str(folder),
        "work_size": list(WORK_SIZE),
        "crisp_iterations": [iterations, crisp_iterations],
    }
    info = [{"name": n, "file": str(p), "target": int(t), "class_name": blackbox.class_name(int(t))}
            for n, p, t in zip(names, paths, targets)]
    page = write_report(out, result, images, names, header, info)
    return FolderSummary(result, page, paths, list(targets), skipped, cache)
