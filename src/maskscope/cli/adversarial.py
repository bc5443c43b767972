"""``maskscope adversarial``: attack a folder's images (iterative FGSM), then ask whether the masks
give the attack away (a detector's held-out accuracy per method) and whether deleting the mask's
region brings the clean label back (Fong & Vedaldi 2017, §5.5).

Writes ``adversarial.json``, ``adversarial.md`` and ``adversarial.png`` (Fig. 10 left) into --out.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .common import (
    add_model_options,
    iterations,
    load_model,
    out_path,
    output_folder,
    positive_int,
    seed_number,
)
from .method_args import add_method_arguments, read_methods

DEFAULT_METHODS = "meaningful,realtime,gradient,gradcam"


def epsilon(text: str) -> float:
    """A positive radius on the 0-255 scale: above 255 every image is within reach, and the attack's
    step count, which grows with it, would pass the iteration cap."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    if not value <= 255:
        raise argparse.ArgumentTypeError(f"at most 255 (the 0-255 scale; the paper uses 8), got {text}")
    return value


def add_parser(subparsers, name: str) -> None:
    p = subparsers.add_parser(name, help="adversarial examples: detection from masks, label recovery",
                              description=__doc__)
    p.add_argument("data", metavar="DATA",
                   help="annotated folder (images/ + annotations.json) or a folder of images")
    p.add_argument("--methods", default=DEFAULT_METHODS, help=f"comma-separated (default: {DEFAULT_METHODS})")
    p.add_argument("--out", type=out_path, default="maskscope-adversarial", help="output folder")
    p.add_argument("--limit", type=positive_int, default=None,
                   help="attack a random subset of N images (fixed by --seed; nested across N)")
    p.add_argument("--seed", type=seed_number, default=0, help="seed of the subset")
    p.add_argument("--epsilon", type=epsilon, default=8.0,
                   help="L-infinity radius of the attack on the 0-255 scale (default: the paper's 8); "
                        "step 1, min(eps + 4, 1.25 eps) iterations")
    p.add_argument("--iterations-per-mask", type=iterations, default=None,
                   help="iterations of meaningful/crisp/extremal (default: each method's own)")
    add_method_arguments(
        p, "extra keyword option of one method, repeatable (e.g. meaningful.preset=fong2017)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_model_options(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    methods, options = read_methods(args)
    with output_folder(args.out) as out:  # a second run into the same --out: one line, exit 2
        text = _run(args, methods, options, out)
    print(text)
    print(f"results written to {out}")
    return 0


def _run(args: argparse.Namespace, methods: list[str], options: dict, out: Path) -> str:
    import torch
    from tqdm.auto import tqdm

    from ..analysis.adversarial import MIN_IMAGES, analyse
    from ..analysis.adversarial_report import markdown, write_report
    from ..data.folders import load_folder, select
    from ..errors import DataError
    from ..images import load_batch

    dataset = load_folder(Path(args.data))  # validates before the model loads
    items = select(dataset.items, args.limit, args.seed)
    if len(items) < MIN_IMAGES:
        raise DataError(f"{args.data}: {len(items)} image(s); the detector needs at least {MIN_IMAGES}")
    model = load_model(args)
    size = tuple(model.input_size) if model.input_size is not None else (224, 224)
    images = load_batch([it.path for it in items], size)
    truth = torch.tensor([-1 if it.label is None else it.label for it in items], dtype=torch.long)
    bars: dict[str, tqdm] = {}

    def progress(stage: str, done: int, total: int) -> None:
        if args.quiet:
            return
        if stage not in bars:
            bars[stage] = tqdm(total=total, desc=stage, unit="img", file=sys.stderr)
        bar = bars[stage]
        bar.update(done - bar.n)

    try:
        result = analyse(model, images, methods, truth=truth, names=[it.name for it in items],
                         epsilon=args.epsilon, iterations_per_mask=args.iterations_per_mask, options=options,
                         batch_size=args.batch_size, progress=progress)
    finally:
        for bar in bars.values():
            bar.close()
    result.report["settings"]["data"] = str(Path(args.data))
    write_report(result, out)
    return markdown(result.report)
