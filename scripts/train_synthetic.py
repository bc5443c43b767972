"""Reproduce the shipped synthetic classifiers (src/maskscope/resources/synthetic_<variant>.pt).

    .venv/bin/python scripts/train_synthetic.py                 # all three variants
    .venv/bin/python scripts/train_synthetic.py --variants clean --out /tmp/weights

Prints one row per variant: training time (training loop only, one CPU thread by default), test
accuracy on fresh test scenes, and for ``spurious`` the polar-bear accuracy with its snow kept vs
swapped for every other background.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from maskscope.data.synthetic import VARIANTS, accuracy, background_reliance, make_scenes, train_classifier
from maskscope.data.synthetic_models import save_checkpoint

RESOURCES = Path(__file__).resolve().parents[1] / "src" / "maskscope" / "resources"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--n-train", type=int, default=6000)
    parser.add_argument("--n-test", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=RESOURCES, help="folder for synthetic_<variant>.pt")
    args = parser.parse_args()

    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for variant in args.variants:
        train_set = make_scenes(args.n_train, variant, "train", seed=args.seed)
        test_set = make_scenes(args.n_test, variant, "test", seed=args.seed)
        start = time.perf_counter()
        model = train_classifier(train_set, epochs=args.epochs, seed=args.seed, threads=args.threads)
        seconds = time.perf_counter() - start
        info = {"n_train": args.n_train, "epochs": args.epochs, "seed": args.seed, "threads": args.threads,
                "train_seconds": round(seconds, 1), "test_accuracy": round(accuracy(model, test_set), 4)}
        if variant == "spurious":
            reliance = background_reliance(model)
            info.update(bear_snow_kept=reliance.kept, bear_snow_swapped=round(reliance.swapped, 4))
        path = args.out / f"synthetic_{variant}.pt"
        save_checkpoint(model, variant, path, info)
        rows.append((variant, info, path))

    print(f"torch {torch.__version__}, {args.threads} thread(s), "
          f"{args.n_train} train scenes x {args.epochs} epochs")
    print(f"{'variant':<10} {'train s':>8} {'test acc':>9} {'bear@snow':>10} {'bear swapped':>13}  weights")
    for variant, info, path in rows:
        kept = f"{100 * info['bear_snow_kept']:.1f}%" if "bear_snow_kept" in info else "-"
        swapped = f"{100 * info['bear_snow_swapped']:.1f}%" if "bear_snow_swapped" in info else "-"
        print(f"{variant:<10} {info['train_seconds']:>8.1f} {100 * info['test_accuracy']:>8.1f}% {kept:>10} "
              f"{swapped:>13}  {path} ({path.stat().st_size // 1024} KB)")


if __name__ == "__main__":
    main()
