"""Quality table on the shared ImageNet validation sample (localisation, saliency metric, pointing, % drop,
Fong & Vedaldi §5.2 representativeness and cross-perturbation drops).

Runs ``maskscope.evaluate`` (the code behind ``maskscope evaluate``) with the default classifier on
a fixed random subset (``--limit``, seed 0 by default; the subset is nested, see
``maskscope.data.folders``), tunes thresholds on the held-out 30 % and prints the markdown table.

    python benchmarks/quality/quality_imagenet.py --limit 300 --device cuda --batch-size 32

Masks are cached under ``--out/cache`` (default ``out/quality_imagenet``, git-ignored): re-running
resumes. The light results (tables, plots; not the cache) are copied to ``--export`` (default
``benchmarks/results/quality_imagenet``), with the tables also as ``metrics.result.json``.
Compute: meaningful costs 300 forward+backward passes per image, crisp 450; CPU runs here should
use a small ``--limit`` (e.g. 12) only.
"""

from __future__ import annotations

import datetime
import shutil
import sys
import time
from pathlib import Path

import torch

from maskscope import methods
from maskscope.cli.evaluate import parse_options
from maskscope.data.folders import load_folder
from maskscope.evaluate import EvalConfig, evaluate_folder
from maskscope.zoo import load_classifier

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a file: import the harness
from benchmarks.harness import (  # noqa: E402
    ROOT,
    SHARED_DATA,
    Report,
    Result,
    command_line,
    parse_tables,
    parser,
    save,
)

DEFAULT_DATA = SHARED_DATA / "imagenet-val-sample"
DEFAULT_METHODS = ",".join(methods.DEFAULT_METHODS)
LIGHT_FILES = ("metrics.json", "metrics.md", "details.json", "suppression.png", "representativeness.png",
               "examples")


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__, "device", "result")
    p.add_argument("--data", default=str(DEFAULT_DATA), help="annotated folder (default: shared val sample)")
    p.add_argument("--methods", default=DEFAULT_METHODS)
    p.add_argument("--limit", type=int, default=300, help="random subset size (0: all images)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--iterations", type=int, default=None, help="meaningful/crisp iterations (default 300)")
    p.add_argument("--classifier", default="efficientnet-lite0")
    p.add_argument("--out", default=str(ROOT / "out" / "quality_imagenet"), help="results and mask cache")
    p.add_argument("--export", default=str(ROOT / "benchmarks" / "results" / "quality_imagenet"),
                   help="copy tables and plots (not the cache) here ('' to skip)")
    p.add_argument("--examples", type=int, default=8)
    p.add_argument("--option", action="append", default=[], metavar="METHOD.KEY=VALUE",
                   help="extra keyword option of one method, as in maskscope evaluate")
    p.add_argument("--cached-only", default=None, metavar="METHOD",
                   help="score only the images whose METHOD masks are cached (time-boxed slow method)")
    args = p.parse_args(argv)
    printed = Report(args.result)

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        printed.print("CUDA requested but not available", file=sys.stderr)
        return 2
    dataset = load_folder(args.data, require_boxes=True)
    model = load_classifier(args.classifier, device=args.device)
    config = EvalConfig(
        methods=[m.strip() for m in args.methods.split(",") if m.strip()],
        batch_size=args.batch_size, iterations=args.iterations,
        limit=args.limit or None, seed=args.seed, options=parse_options(args.option),
        cached_only=args.cached_only,
    )
    start = time.perf_counter()
    text = evaluate_folder(dataset, model, args.out, config, examples=args.examples,
                           title=f"ImageNet val sample, {args.classifier}")
    elapsed = time.perf_counter() - start
    printed.print(text)
    gpu = torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu"
    printed.print(f"device {args.device} ({gpu}), torch {torch.__version__}, {elapsed:.0f} s; "
                  f"results in {args.out}")
    if args.export:
        export = Path(args.export)
        export.mkdir(parents=True, exist_ok=True)
        for name in LIGHT_FILES:
            src = Path(args.out) / name
            if src.is_dir():
                shutil.copytree(src, export / name, dirs_exist_ok=True)
            elif src.exists():
                shutil.copy2(src, export / name)
        # the tables in the one result format too (metrics.result.json), beside evaluate's metrics.md
        tables, notes = parse_tables(text)
        save(Result(command_line(), datetime.date.today().isoformat(), tables, notes), export / "metrics")
    printed.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
