"""Synthetic benchmark table: localisation and pointing on the clean variant, background reliance on
the spurious one, for every method, with the shipped small CNNs (64×64 scenes; minutes on a CPU).

Same code as ``maskscope evaluate --synthetic``:

    python benchmarks/quality/quality_synthetic.py --scenes 300

Masks are cached under ``--out`` (default ``out/quality_synthetic``, git-ignored), so a re-run
resumes; the tables are copied to ``--export`` (default ``benchmarks/results/quality_synthetic``).
"""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path

import torch

from maskscope import methods
from maskscope.evaluate import EvalConfig, evaluate_synthetic

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a file: import the harness
from benchmarks.harness import ROOT, Report, parser  # noqa: E402

DEFAULT_METHODS = ",".join(methods.DEFAULT_METHODS)


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__, "device", "result")
    p.add_argument("--methods", default=DEFAULT_METHODS)
    p.add_argument("--scenes", type=int, default=300, help="test scenes per variant")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--iterations", type=int, default=None, help="meaningful/crisp iterations (default 300)")
    p.add_argument("--out", default=str(ROOT / "out" / "quality_synthetic"))
    p.add_argument("--export", default=str(ROOT / "benchmarks" / "results" / "quality_synthetic"),
                   help="copy tables and plots (not the cache) here ('' to skip)")
    args = p.parse_args(argv)
    printed = Report(args.result)

    config = EvalConfig(
        methods=[m.strip() for m in args.methods.split(",") if m.strip()],
        batch_size=args.batch_size, iterations=args.iterations, seed=args.seed,
    )
    start = time.perf_counter()
    text = evaluate_synthetic(Path(args.out), config, scenes=args.scenes, device=args.device)
    printed.print(text)
    printed.print(f"device {args.device}, torch {torch.__version__}, {time.perf_counter() - start:.0f} s; "
          f"results in {args.out}")
    if args.export:
        export = Path(args.export)
        export.mkdir(parents=True, exist_ok=True)
        shutil.copy2(Path(args.out) / "metrics.md", export / "metrics.md")
        shutil.copy2(Path(args.out) / "metrics.json", export / "metrics.json")
        for variant in ("clean", "spurious"):
            for name in ("metrics.md", "metrics.json", "suppression.png", "examples"):
                src = Path(args.out) / variant / name
                dst = export / variant / name
                dst.parent.mkdir(parents=True, exist_ok=True)
                if src.is_dir():
                    shutil.copytree(src, dst, dirs_exist_ok=True)
                elif src.exists():
                    shutil.copy2(src, dst)
    printed.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
