"""Why meaningful-perturbation masks are faint, and which settings make them hold up.

For each candidate (a preset plus overrides) the deletion game is run on a fixed random set of
``imagenet-train-sample`` images (never the val sample: that is the held-out benchmark) with their
ground-truth class, and the masks are checked from outside:

- *peak* and *≥ 0.5*: the mask maximum, and the share of masks that reach 0.5 anywhere;
- *area*: mean mask value (the salient area) and the area of the region s > 0.5;
- *own drop*: % drop of p with the operator the mask was optimised against (what the results used to
  report);
- *binarised drop*: Fong & Vedaldi §5.2 — smooth, binarise at α = 0.5, delete the binary region with
  the fixed σ0 = 10 blur blend, the mean colour and noise; % drop of p (``metrics.representativeness``).

    OMP_NUM_THREADS=1 python benchmarks/studies/faint_masks.py --images 8 --iterations 100

Each candidate costs ``iterations`` forward+backward passes per image (≈ 2 min for 8 images at 100
iterations on one CPU thread).
"""

from __future__ import annotations

import json
import random
import sys
import time
from pathlib import Path

import torch

import maskscope as ms
from maskscope.methods.meaningful import optimise_smooth_masks
from maskscope.methods.optimise import resolve_settings
from maskscope.metrics import REPR_PERTURBATIONS, cross_perturbation_drop, keep_masks

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a file: import the harness
from benchmarks.harness import SHARED_DATA, Report, markdown_table, parser  # noqa: E402

DEFAULT_DATA = SHARED_DATA / "imagenet-train-sample"

# (label, preset, overrides): the paper's recipe, the operator alone, then the score and λ1
CANDIDATES = [
    ("paper recipe (fong2017-paper-blur)", "fong2017-paper-blur", {}),
    ("fixed-blur, λ1 1e-4", "fong2017-paper-blur", {"perturbation": "fixed-blur"}),
    ("fixed-blur, λ1 3e-4", "fong2017-paper-blur", {"perturbation": "fixed-blur", "l1": 3e-4}),
    ("fixed-blur, λ1 1e-3", "fong2017-paper-blur", {"perturbation": "fixed-blur", "l1": 1e-3}),
    ("per-pixel blur, log-prob", "fong2017-paper-blur", {"score": "log-prob"}),
    ("fixed-blur, relative p/p0, λ1 1e-3 (fong2017)", "fong2017", {}),
    ("fixed-blur, relative p/p0, λ1 3e-3", "fong2017", {"l1": 3e-3}),
]


def load_images(data: Path, count: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    annotations = json.loads((data / "annotations.json").read_text())
    names = sorted(annotations)
    random.Random(seed).shuffle(names)
    names = names[:count]
    paths = [str(data / "images" / n) if (data / "images" / n).exists() else str(data / n) for n in names]
    return ms.load_batch(paths), torch.tensor([annotations[n]["class_index"] for n in names])


def measure(model, images, targets, preset: str, overrides: dict, iterations: int) -> list:
    settings = resolve_settings(preset, iterations=iterations, **overrides)
    start = time.perf_counter()
    e = optimise_smooth_masks(model, images, targets.view(-1, 1), "delete", None, settings, preset)
    seconds = time.perf_counter() - start
    peaks = e.masks.flatten(1).max(1).values
    # §5.2's binary region at α = 0.5 (smoothed s > 0.5), as ``metrics.representativeness`` makes it
    binary = (~keep_masks(e.masks, (0.5,))).float()
    own = 100 * (1 - e.p_deleted / e.p_original)
    drops = cross_perturbation_drop(model, images, binary, targets, perturbations=REPR_PERTURBATIONS)
    soft = cross_perturbation_drop(model, images, e.masks, targets, perturbations=("constant",))
    return [
        f"{peaks.mean():.2f}", f"{(peaks >= 0.5).float().mean() * 100:.0f}",
        f"{e.masks.mean() * 100:.1f}", f"{binary.mean() * 100:.1f}",
        f"{own.mean():.1f}", f"{soft['constant'].mean():.1f}",
        *(f"{drops[n].mean():.1f}" for n in ("fixed-blur", "constant", "noise")),
        f"{seconds / len(images):.0f}",
    ]


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__, "result")
    p.add_argument("--data", default=str(DEFAULT_DATA))
    p.add_argument("--images", type=int, default=8)
    p.add_argument("--iterations", type=int, default=100)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--only", default="", help="comma-separated candidate numbers (1-based) to run")
    args = p.parse_args(argv)
    printed = Report(args.result)
    model = ms.load_classifier()
    images, targets = load_images(Path(args.data), args.images, args.seed)
    chosen = {int(i) for i in args.only.split(",") if i.strip()} or set(range(1, len(CANDIDATES) + 1))
    rows = []
    for number, (label, preset, overrides) in enumerate(CANDIDATES, 1):
        if number in chosen:
            rows.append([label, *measure(model, images, targets, preset, overrides, args.iterations)])
            printed.print(rows[-1], file=sys.stderr, flush=True)
    printed.print(f"deletion game, {args.images} imagenet-train-sample images (seed {args.seed}), "
                  f"{args.iterations} iterations, EfficientNet-Lite0, ground-truth class")
    printed.print(markdown_table(
        ["settings", "mean peak", "≥ 0.5 %", "area %", "area s>0.5 %", "own drop %",
         "soft mask, constant drop %", "binarised α=0.5 drop %: fixed-blur", "constant", "noise", "s/image"],
        rows,
    ))
    printed.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
