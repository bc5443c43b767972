"""``maskscope explain IMAGE...``: masks for image files, saved as PNG/NPY/figure/JSON."""

from __future__ import annotations

import argparse
import inspect
import json
import sys
from pathlib import Path

from ..errors import ConfigError
from ..images import IMAGE_EXTENSIONS
from ..methods import METHODS, get_method
from ..methods.optimise import GAMES, PRESETS
from ..perturb import PERTURBATIONS
from .common import (
    add_model_options,
    area_list,
    check_output_dir,
    load_model,
    positive_int,
    report_failures,
    summary_line,
)


def add_parser(subparsers, name: str) -> None:
    p = subparsers.add_parser(name, help="explain image files", description=__doc__)
    p.add_argument("images", nargs="+", help="image files or folders of images")
    p.add_argument("--method", default="meaningful", choices=sorted(METHODS), help="saliency method")
    p.add_argument("--target", default=None, help="class index, class name, top1 or topK (default: top1)")
    p.add_argument("--game", default=None, choices=[*GAMES, "dual"],
                   help="default: delete (extremal: preserve); dual is extremal only")
    p.add_argument("--area", action="append", type=area_list, default=None, metavar="A[,A...]",
                   help="extremal: area(s) in (0, 1) to explain at, repeatable (default 0.05,0.1,0.2)")
    p.add_argument("--perturbation", default=None, choices=sorted(PERTURBATIONS),
                   help="default: the preset's (fong2017: fixed-blur)")
    p.add_argument("--preset", default="fong2017", choices=sorted(PRESETS))
    p.add_argument(
        "--iterations", type=positive_int, default=None, help="optimisation steps (default: preset)"
    )
    p.add_argument("--batch-size", type=positive_int, default=8)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--masker", default=None, help="masker checkpoint for --method realtime")
    p.add_argument("--out", default="maskscope-out", help="output folder")
    p.add_argument("--json", action="store_true", help="print one JSON record per image on stdout")
    p.add_argument("--no-figures", action="store_true", help="skip the three-panel figures (faster)")
    add_model_options(p)
    p.set_defaults(run=run)


def expand_inputs(items: list[str]) -> list[Path]:
    """Files as given (bad ones are reported later), folders expanded to their images."""
    paths: list[Path] = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            found = sorted(f for f in path.iterdir() if f.suffix.lower() in IMAGE_EXTENSIONS)
            if not found:
                raise ConfigError(f"{path}: folder contains no images")
            paths.extend(found)
        else:
            paths.append(path)
    return paths


def method_options(args: argparse.Namespace) -> dict:
    """The flags that name one of the method's own parameters (read from its signature, so a
    method that gains ``seed`` or ``game`` gets the flag without an edit here); iterative methods
    also show their progress."""
    if args.area is not None and args.method != "extremal":
        raise ConfigError("--area applies to --method extremal only")
    accepted = inspect.signature(get_method(args.method)).parameters
    flags = {
        "game": args.game or ("preserve" if args.method == "extremal" else "delete"),
        "areas": None if args.area is None else [a for group in args.area for a in group],
        "perturbation": args.perturbation,
        "preset": args.preset,
        "iterations": args.iterations,
        "seed": args.seed,
        "masker": args.masker,
    }
    options = {k: v for k, v in flags.items() if k in accepted and v is not None}
    if "iterations" in accepted:
        options["progress"] = True
    return options


def run(args: argparse.Namespace) -> int:
    from ..files import explain_files

    out = check_output_dir(args.out)
    paths = expand_inputs(args.images)
    blackbox = load_model(args)
    target = blackbox.check_target(args.target)
    options = method_options(args)
    if args.method == "realtime":  # load (and check) the masker once, before any image is read
        from ..methods.realtime import load_masker

        options["masker"] = load_masker(blackbox, args.masker)
    failures: list[tuple[str, str]] = []
    progress = _progress(len(paths), args)
    for result in explain_files(
        blackbox,
        paths,
        method=args.method,
        target=target,
        batch_size=args.batch_size,
        **options,
    ):
        failures.extend(result.failures)
        progress.update(len(result.failures))
        if result.explanation is None:
            continue
        records = result.explanation.save(out, figures=not args.no_figures)
        progress.update(len(records))
        for rec in records:
            if args.json:
                print(json.dumps(rec), flush=True)
            else:
                progress.write(summary_line(rec))
    progress.close()
    if not args.json:
        print(f"results in {out}", file=sys.stderr)
    return report_failures(failures)


def _progress(total: int, args: argparse.Namespace):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=f"explain ({args.method})", unit="img", file=sys.stderr)
