"""``maskscope evaluate``: score saliency methods on an image folder (or the synthetic benchmark).

Writes ``metrics.json`` (method → metric → value), ``metrics.md`` (the table), ``details.json``,
``suppression.png`` (Fong & Vedaldi Fig. 8), ``representativeness.png`` (their §5.2 / Fig. 7) and
``examples/<method>.png`` into ``--out``; masks are cached in ``--out/cache`` so a killed run
resumes where it stopped. A file of those names that an earlier evaluate did not write there (a
user's own ``metrics.md``, one edited since), or a file where a folder goes, stops the run before
any work, with one line.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path

from ..errors import ConfigError, OutputError
from ..methods import DEFAULT_METHODS as METHOD_DEFAULTS
from .common import (
    add_model_options,
    area_list,
    iterations,
    load_model,
    non_negative_int,
    out_path,
    output_folder,
    parse_options,
    positive_int,
    seed_number,
)
from .speed import add_speed_options, schedule_options, speed_model

DEFAULT_METHODS = ",".join(METHOD_DEFAULTS)


def add_parser(subparsers, name: str) -> None:
    p = subparsers.add_parser(name, help="score saliency methods on a dataset", description=__doc__)
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", help="annotated folder (images/ + annotations.json) or a folder of images")
    source.add_argument("--synthetic", action="store_true",
                        help="generate the synthetic benchmark (clean + spurious) and evaluate on it")
    p.add_argument("--methods", default=DEFAULT_METHODS, help=f"comma-separated (default: {DEFAULT_METHODS})")
    p.add_argument("--out", type=out_path, default="maskscope-eval",
                   help="output folder (also holds the mask cache)")
    p.add_argument("--limit", type=positive_int, default=None,
                   help="evaluate a random subset of N images (fixed by --seed; nested across N)")
    p.add_argument("--batch-size", type=positive_int, default=8)
    p.add_argument("--iterations", type=iterations, default=None,
                   help="iterations of meaningful/crisp (default: the papers' 300; crisp adds half as many)")
    p.add_argument("--option", action="append", default=[], metavar="METHOD.KEY=VALUE",
                   help="extra keyword option of one method, repeatable (e.g. occlusion.stride=32, "
                        "realtime.masker=masker.pt, meaningful.preset=fong2017)")
    p.add_argument("--area", action="append", type=area_list, default=None, metavar="A[,A...]",
                   help="extremal: areas in (0, 1), repeatable (same as --option extremal.areas=[...]); "
                        "its masks are combined per image for the metrics")
    p.add_argument("--cached-only", default=None, metavar="METHOD",
                   help="score only the images whose METHOD masks are already cached in --out "
                        "(a time-boxed slow method; the other methods are compared on the same images)")
    p.add_argument("--protocols", default=None, metavar="A,B,...",
                   help="comma-separated evaluation protocols (default: all of them; "
                        "e.g. localisation,saliency leaves out the costly ones)")
    p.add_argument("--no-reference", action="store_true",
                   help="leave out the reference rows (centre box, full image, ground-truth boxes)")
    p.add_argument("--seed", type=seed_number, default=0, help="seed of the subset and of the held-out split")
    p.add_argument("--tune-fraction", type=float, default=0.3,
                   help="fraction of images held out to tune localisation thresholds (default 0.3)")
    p.add_argument("--examples", type=non_negative_int, default=8,
                   help="images per example grid (0: no grids)")
    p.add_argument("--scenes", type=positive_int, default=300, help="--synthetic: test scenes per variant")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    add_model_options(p)
    add_speed_options(p)
    p.set_defaults(run=run)


def parse_methods(text: str) -> list[str]:
    from ..evaluate.runner import check_methods

    names = [m.strip() for m in text.split(",") if m.strip()]
    check_methods(names)
    return names


def run(args: argparse.Namespace) -> int:
    """Under ``torchrun`` every process computes its share of the masks, rank 0 writes the results."""
    from ..distributed import init_distributed, process_group

    ddp, args.device = init_distributed(args.device)
    with process_group(ddp):
        return _run(args, ddp)


def _run(args: argparse.Namespace, ddp) -> int:
    from ..distributed import on_main
    from ..evaluate import EvalConfig
    from ..evaluate.protocols import parse_protocols
    from ..manifest import check_replaceable, record_written

    methods = parse_methods(args.methods)
    protocols = None if args.protocols is None else parse_protocols(args.protocols)
    if not 0.0 < args.tune_fraction < 1.0:
        raise ConfigError(f"--tune-fraction must be in (0, 1), got {args.tune_fraction}")
    options = parse_options(args.option)
    for method, extra in schedule_options(args, methods).items():
        options.setdefault(method, {}).update(extra)
    if args.area is not None:
        if "extremal" not in methods:
            raise ConfigError("--area applies to the extremal method only; add it to --methods")
        options.setdefault("extremal", {})["areas"] = [a for group in args.area for a in group]
    config = EvalConfig(
        methods=methods, batch_size=args.batch_size, iterations=args.iterations, limit=args.limit,
        seed=args.seed, tune_fraction=args.tune_fraction, progress=not args.quiet and ddp.main,
        options=options, cached_only=args.cached_only, ddp=ddp, protocols=protocols,
        references=not args.no_reference,
        report=lambda line: print(f"maskscope: {line}", file=sys.stderr),
    )
    with output_folder(args.out, ddp) as out:  # a second run into the same --out: one line, exit 2
        files, folders = result_files(args, config)
        on_main(ddp, lambda: check_replaceable(out, files, folders))  # before any work
        try:
            text = _evaluate(args, config, out)
        except BaseException:  # what it wrote before failing is its own too: a rerun may replace it
            if ddp.main:
                with contextlib.suppress(OutputError):
                    record_written(out, files)
            raise
        on_main(ddp, lambda: record_written(out, files))
    if ddp.main:
        print(text)
        print(f"results written to {out}")
    return 0


def result_files(args: argparse.Namespace, config) -> tuple[list[str], list[str]]:
    """The files evaluate writes under ``--out`` and the folders they need (``--synthetic``: each
    variant's in its own folder, the combined tables on top)."""
    from ..evaluate.synthetic import VARIANTS
    from ..storage import safe_name

    tables = ["metrics.json", "metrics.md", "details.json", "suppression.png", "representativeness.png"]
    examples = [f"examples/{safe_name(row)}.png" for row in config.rows()] if args.examples else []
    if not args.synthetic:
        return [*tables, *examples], ["examples", "cache"]
    each = [f"{v}/{name}" for v in VARIANTS for name in [*tables, *examples]]
    folders = [f"{v}/{folder}" for v in VARIANTS for folder in ("examples", "cache", "data")]
    return ["metrics.json", "metrics.md", *each], folders


def _evaluate(args: argparse.Namespace, config, out: Path) -> str | None:  # None off rank 0
    from ..evaluate import evaluate_folder, evaluate_synthetic

    if args.synthetic:
        if args.amp or args.channels_last:
            raise ConfigError("--amp and --channels-last apply to --data runs only")
        text = evaluate_synthetic(out, config, scenes=args.scenes, device=args.device, examples=args.examples)
    else:
        from ..data.folders import load_folder

        dataset = load_folder(Path(args.data))  # validates before the model loads
        model = speed_model(args, load_model(args))
        text = evaluate_folder(dataset, model, out, config, examples=args.examples)
    return text
