"""``maskscope summarize IMAGES_DIR --target T --out DIR``: visual summaries of a class.

Crisp masks are computed (or reused from ``DIR/masks``), then regions, proposals, proposal flow,
clustering and the report. Anything wrong with the input ends with one line and exit code 2,
and every mask computed so far stays on disk for the next run.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import ConfigError, DataError, MaskscopeError
from ..images import list_images, load_image


def add_parser(subparsers, name: str) -> argparse.ArgumentParser:
    p = subparsers.add_parser(name, help="visual summaries (Godi et al. 2019) of a folder of images",
                              description=__doc__.split("\n\n")[0])
    p.add_argument("images_dir", metavar="IMAGES_DIR", help="folder of images of one class (or group)")
    p.add_argument("--target", default="top1",
                   help="class NAME or INDEX shared by all images, 'top1' (each image's own prediction) or "
                        "'label' (each image's class from annotations.json beside or above the folder)")
    p.add_argument("--out", required=True, help="output folder (masks cache, proposals, report)")
    p.add_argument("--max-images", type=int, default=None, help="use only the first N images (by name)")
    p.add_argument("--classes", default=None,
                   help="keep only images whose annotated class is in this set, e.g. 151-268 or 7,8,80-100")
    p.add_argument("--model", default="efficientnet-lite0", help="classifier (default efficientnet-lite0)")
    p.add_argument("--iterations", type=int, default=300, help="crisp mask stage-1 iterations (paper: 300)")
    p.add_argument("--crisp-iterations", type=int, default=150, help="crisp stage-2 iterations (paper: 150)")
    p.add_argument("--batch-size", type=int, default=8, help="images per crisp-mask batch")
    p.add_argument("--proposals", type=int, default=500, help="selective-search proposals per image")
    p.add_argument("--proposal-mode", choices=("quality", "fast"), default="quality",
                   help="selective search strategy (fast: fewer boxes, several times quicker)")
    p.add_argument("--region-closing", type=float, default=5.0,
                   help="close the binarised mask with a disk of this radius (px at 224) before taking "
                        "connected components; 0 = plain components as in the paper")
    p.add_argument("--min-images", type=int, default=3, help="a summary must span at least this many images")
    p.add_argument("--threads", type=int, default=None,
                   help="CPU threads for torch and BLAS (default: torch's own; 1 is often fastest when busy)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(run=run)
    return p


def parse_classes(text: str) -> set[int]:
    """'151-268' or '7,8,80-100' → a set of class indices."""
    out: set[int] = set()
    try:
        for piece in text.split(","):
            piece = piece.strip()
            if "-" in piece:
                lo, hi = (int(v) for v in piece.split("-", 1))
                out.update(range(lo, hi + 1))
            elif piece:
                out.add(int(piece))
    except ValueError:
        raise ConfigError(f"--classes: cannot read {text!r}; use e.g. 151-268 or 7,8,80-100") from None
    return out


def run(args: argparse.Namespace) -> int:
    import torch

    from ..summaries.masks import (
        WORK_SIZE,
        cached_crisp_masks,
        read_annotations,
        resolve_file_targets,
        to_work_image,
        usable_images,
    )
    from ..summaries.pipeline import summarize_class
    from ..summaries.render import write_report
    from ..zoo import load_classifier

    folder = Path(args.images_dir)
    if not folder.is_dir():
        raise DataError(f"{folder}: no such folder")
    if args.region_closing < 0:
        raise ConfigError(f"--region-closing must be at least 0, got {args.region_closing}")
    for option in ("max_images", "iterations", "crisp_iterations", "batch_size", "proposals", "min_images",
                   "threads"):
        value = getattr(args, option)
        if value is not None and value < 1:
            raise ConfigError(f"--{option.replace('_', '-')} must be at least 1, got {value}")
    paths = list_images(folder)
    if args.classes:
        wanted = parse_classes(args.classes)
        labels = read_annotations(folder)
        if labels is None:
            raise DataError("--classes needs an annotations.json beside or above the images")
        paths = [p for p in paths if labels.get(p.name) in wanted]
    paths, skipped = usable_images(paths[: args.max_images] if args.max_images else paths)
    for reason in skipped:
        print(f"maskscope: skipping {reason}", file=sys.stderr)
    if len(paths) < 2:
        raise DataError(f"{folder}: summaries need at least 2 usable images, found {len(paths)}")

    out = Path(args.out)
    if args.threads:
        torch.set_num_threads(args.threads)
    blackbox = load_classifier(args.model)
    targets = resolve_file_targets(blackbox, paths, args.target)
    progress = not args.no_progress
    masks = cached_crisp_masks(blackbox, paths, targets, out / "masks", batch_size=args.batch_size,
                               iterations=args.iterations, crisp_iterations=args.crisp_iterations,
                               progress=progress)
    images = [to_work_image(load_image(p)) for p in paths]
    names = [p.stem for p in paths]
    try:
        result = summarize_class(images, masks, names=names, cache_dir=out, proposals=args.proposals,
                                 min_images=args.min_images, progress=progress, threads=args.threads or 1,
                                 proposal_mode=args.proposal_mode, region_closing=args.region_closing)
    except MaskscopeError as exc:
        raise type(exc)(f"{exc} (the {len(paths)} crisp masks are kept in {out / 'masks'})") from None
    header = {
        "title": f"{args.target} on {folder.name} ({len(paths)} images)",
        "model": blackbox.name,
        "target": args.target,
        "images_dir": str(folder),
        "work_size": list(WORK_SIZE),
        "crisp_iterations": [args.iterations, args.crisp_iterations],
    }
    info = [{"name": n, "file": str(p), "target": int(t), "class_name": blackbox.class_name(int(t))}
            for n, p, t in zip(names, paths, targets)]
    page = write_report(out, result, images, names, header, info)
    print(f"{result.stats['summaries']} summaries from {len(paths)} images: {page}")
    return 0
