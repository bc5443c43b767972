"""``maskscope summarize IMAGES_DIR --target T --out DIR``: visual summaries of a class.

Argument parsing around ``summaries.summarize_folder``. Anything wrong with the input ends with one
line and exit code 2, and every mask computed so far stays on disk for the next run.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import ConfigError, DataError
from .common import (
    add_model_options,
    iterations,
    load_model,
    number_between,
    out_path,
    output_folder,
    positive_int,
)


def add_parser(subparsers, name: str) -> argparse.ArgumentParser:
    p = subparsers.add_parser(name, help="visual summaries (Godi et al. 2019) of a folder of images",
                              description=__doc__.split("\n\n")[0])
    p.add_argument("images_dir", metavar="IMAGES_DIR", help="folder of images of one class (or group)")
    p.add_argument("--target", default="top1",
                   help="class NAME or INDEX shared by all images, 'top1' (each image's own prediction) or "
                        "'label' (each image's class from annotations.json beside or above the folder)")
    p.add_argument("--out", type=out_path, required=True,
                   help="output folder (masks cache, proposals, report)")
    p.add_argument("--max-images", type=int, default=None, help="use only the first N images (by name)")
    p.add_argument("--classes", default=None,
                   help="keep only images whose annotated class is in this set, e.g. 151-268 or 7,8,80-100")
    add_model_options(p, old_names=("--model",))
    p.add_argument("--iterations", type=iterations, default=300,
                   help="crisp mask stage-1 iterations (paper: 300)")
    p.add_argument("--crisp-iterations", type=iterations, default=150,
                   help="crisp stage-2 iterations (paper: 150)")
    p.add_argument("--batch-size", type=positive_int, default=8, help="images per crisp-mask batch")
    p.add_argument("--proposals", type=int, default=500, help="selective-search proposals per image")
    p.add_argument("--proposal-mode", choices=("quality", "fast"), default="quality",
                   help="selective search strategy (fast: fewer boxes, several times quicker)")
    p.add_argument("--region-closing", type=number_between(0, 112, "a radius in px at 224"), default=5.0,
                   help="close the binarised mask with a disk of this radius (px at 224) before taking "
                        "connected components; 0 = plain components as in the paper")
    p.add_argument("--min-images", type=int, default=3, help="a summary must span at least this many images")
    p.add_argument("--threads", type=int, default=None,
                   help="CPU threads for torch and BLAS (default: torch's own; 1 is often fastest when busy)")
    p.add_argument("--quiet", "--no-progress", dest="quiet", action="store_true", help="no progress bars")
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
    if args.threads is not None and args.threads < 1:
        raise ConfigError(f"--threads must be at least 1, got {args.threads}")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    folder = Path(args.images_dir)
    if not folder.is_dir():  # before the classifier loads
        raise DataError(f"{folder}: no such folder")
    from ..distributed import init_distributed, process_group

    # under torchrun the ranks share the crisp masks; rank 0 summarises and writes the report
    ddp, args.device = init_distributed(args.device)
    with process_group(ddp), output_folder(args.out, ddp) as out:  # a second run into --out: exit 2
        done = _summarize(args, folder, out, ddp)
    if done is None:
        return 0
    print(done.cache.line("crisp masks"))
    print(f"{done.result.stats['summaries']} summaries from {len(done.paths)} images: {done.page}")
    return 0


def _summarize(args: argparse.Namespace, folder: Path, out: Path, ddp):
    from ..summaries.folder import summarize_folder

    return summarize_folder(
        folder,
        out,
        blackbox=load_model(args),
        target=args.target,
        max_images=args.max_images,
        classes=parse_classes(args.classes) if args.classes else None,
        iterations=args.iterations,
        crisp_iterations=args.crisp_iterations,
        batch_size=args.batch_size,
        proposals=args.proposals,
        proposal_mode=args.proposal_mode,
        region_closing=args.region_closing,
        min_images=args.min_images,
        threads=args.threads or 1,  # the summary stages on a busy CPU: see summaries.pipeline.limited_threads
        progress=not args.quiet and ddp.main,
        ddp=ddp,
        on_skip=(lambda why: print(f"maskscope: skipping {why}", file=sys.stderr)) if ddp.main else None,
    )
