"""Speed of batched meaningful perturbation vs the bare classifier forward+backward cost.

The method's physical limit is one forward and one backward pass of the classifier per
iteration; everything else (perturbation, mask upsampling, Adam, the circle init) is overhead.
For each batch size we time the whole method and the same number of bare forward+backward passes
(gradient w.r.t. the input) in the same run, and report masks/s and their ratio.

    python benchmarks/speed_meaningful.py [--iterations 100] [--batch-sizes 1,4,16]
"""

from __future__ import annotations

import argparse
import platform
import time

import torch
from _common import demo_batch, markdown_table

import maskscope as ms


def bare_forward_backward(blackbox, images: torch.Tensor, iterations: int) -> float:
    x = images.clone().requires_grad_(True)
    start = time.perf_counter()
    with blackbox.evaluating():
        for _ in range(iterations):
            p = blackbox(x).softmax(1)[:, 0].sum()
            torch.autograd.grad(p, x)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=100)
    parser.add_argument("--batch-sizes", default="1,4,16")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    blackbox = ms.load_classifier(device=args.device)
    _, photos = demo_batch()
    rows, per_mask = [], {}
    for b in [int(s) for s in args.batch_sizes.split(",")]:
        images = photos[torch.arange(b) % len(photos)].to(args.device)
        ms.meaningful_perturbation(blackbox, images, iterations=2)  # warm-up
        start = time.perf_counter()
        ms.meaningful_perturbation(blackbox, images, iterations=args.iterations)
        method = time.perf_counter() - start
        bare = bare_forward_backward(blackbox, images, args.iterations)
        per_mask[b] = method / b
        rows.append([b, f"{b / method:.3f}", f"{method / b:.2f}", f"{bare / b:.2f}", f"{method / bare:.2f}"])
    for row, b in zip(rows, per_mask):
        row.append(f"{per_mask[min(per_mask)] / per_mask[b]:.2f}")
    print(
        f"meaningful perturbation, EfficientNet-Lite0 224x224, {args.iterations} iterations, "
        f"{args.device}, torch {torch.__version__}, {torch.get_num_threads()} threads, {platform.machine()}"
    )
    print(
        markdown_table(
            [
                "batch",
                "masks/s",
                "s/mask",
                "bare fwd+bwd s/mask",
                "method / bare",
                "speed-up per mask vs batch 1",
            ],
            rows,
        )
    )


if __name__ == "__main__":
    main()
