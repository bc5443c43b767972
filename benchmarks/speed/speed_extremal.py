"""Speed of batched extremal perturbations vs the bare classifier forward+backward cost.

One iteration of extremal perturbation is, at its physical limit, one forward and one backward
pass of the classifier over every (image, area) row (two for the ``dual`` game); everything else
(the smooth-max mask family, the blur pyramid, the ranking penalty's sort, SGD) is overhead. We
time the whole method and the same number of bare forward+backward passes (gradient w.r.t. the
input, on the same B·A rows) in the same run, interleaved and best-of-``--repeat``, so that load
from other processes hits both alike. Goal: method / bare ≤ 1.2 at batch 8.

    python benchmarks/speed/speed_extremal.py [--iterations 20] [--batch-sizes 8] [--areas 0.05,0.1,0.2]
"""

from __future__ import annotations

import platform
import sys
import time
from pathlib import Path

import torch

import maskscope as ms

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a file: import the harness
from benchmarks.harness import Report, bare_forward_backward, demo_batch, markdown_table  # noqa: E402
from benchmarks.harness import parser as make_parser


def main() -> None:
    parser = make_parser(__doc__, "device", "result")
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--batch-sizes", default="8")
    parser.add_argument("--areas", default="0.05,0.1,0.2")
    parser.add_argument("--game", default="preserve", choices=["preserve", "delete", "dual"])
    parser.add_argument("--recipe", default="fast", help="extremal's recipe (fast, pyramid, paper)")
    parser.add_argument("--repeat", type=int, default=2, help="best of this many timings of each")
    args = parser.parse_args()
    printed = Report(args.result)
    areas = [float(a) for a in args.areas.split(",")]
    blackbox = ms.load_classifier(device=args.device)
    _, photos = demo_batch()
    rows = []
    for b in [int(s) for s in args.batch_sizes.split(",")]:
        images = photos[torch.arange(b) % len(photos)].to(args.device)
        passes = len(areas) * (2 if args.game == "dual" else 1)
        rowed = images.repeat_interleave(passes, 0)

        def method(images: torch.Tensor = images) -> float:
            start = time.perf_counter()
            ms.extremal_perturbation(
                blackbox, images, areas=areas, game=args.game, iterations=args.iterations, recipe=args.recipe
            )
            return time.perf_counter() - start

        method()  # warm-up (allocator, pyramid kernels)
        bare_forward_backward(blackbox, rowed, 1, score="logit")
        times, bares = [], []
        for _ in range(args.repeat):
            times.append(method())
            bares.append(bare_forward_backward(blackbox, rowed, args.iterations, score="logit"))
        t, bare = min(times), min(bares)
        masks = b * len(areas)
        rows.append([b, len(areas), masks, f"{t / masks:.3f}", f"{bare / masks:.3f}", f"{t / bare:.2f}"])
    printed.print(
        f"extremal perturbation ({args.game}), EfficientNet-Lite0 224x224, {args.iterations} iterations, "
        f"{args.device}, torch {torch.__version__}, {torch.get_num_threads()} threads, {platform.machine()}"
    )
    printed.print(markdown_table(
        ["batch", "areas", "masks", "s/mask", "bare fwd+bwd s/mask", "method / bare (goal <= 1.2)"], rows
    ))
    printed.close()


if __name__ == "__main__":
    main()
