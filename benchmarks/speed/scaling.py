"""How the cost of a dataset run of meaningful perturbation grows with the number of images.

A dataset run as ``maskscope evaluate`` computes it: the images of the shared ImageNet validation
sample (a nested random subset: the 8 images are among the 32, the 32 among the 128), loaded and
resized per batch, explained in consecutive batches of ``--batch-sizes`` with their ground-truth
class by the real EfficientNet-Lite0. For every image count and batch size the table gives the
total seconds, seconds per image and per image-iteration (iterations actually run: all of them on
the fixed schedule, fewer with ``--early-stop``), and the ratios to the 8-image run at the same
batch size: ideally 4 and 16 for the total, 1 for seconds per image. Seconds per image-iteration
include each batch's once-per-run part (loading, the circle init, the final scores), which weighs
more the fewer the iterations. Nothing is cached: every mask is computed.

    python benchmarks/speed/scaling.py [--counts 8,32,128] [--batch-sizes 8,32] [--iterations 300]
        [--threads 1] [--early-stop] [--result benchmarks/results/scaling]
"""

from __future__ import annotations

import os
import platform
import sys
import time
from pathlib import Path

import torch

import maskscope as ms
from maskscope.data.folders import Item, load_folder, select

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a file: import the harness
from benchmarks.harness import SHARED_DATA, Report, markdown_table  # noqa: E402
from benchmarks.harness import parser as make_parser

DEFAULT_DATA = SHARED_DATA / "imagenet-val-sample"


def run_dataset(model, items: list[Item], batch: int, iterations: int | None,
                early_stop: bool) -> tuple[float, int]:
    """Seconds for meaningful perturbation over ``items`` in consecutive batches (loading included),
    and the iterations run over all images."""
    start, passes = time.perf_counter(), 0
    size = tuple(model.input_size)
    for i in range(0, len(items), batch):
        chunk = items[i : i + batch]
        images = ms.load_batch([it.path for it in chunk], size)
        targets = torch.tensor([it.label for it in chunk], dtype=torch.long)
        explanation = ms.meaningful_perturbation(model, images.to(model.device), target=targets,
                                                 iterations=iterations, early_stop=early_stop)
        passes += int(explanation.iterations_used.sum())
    return time.perf_counter() - start, passes


def scaling_rows(model, items: list[Item], counts: list[int], batches: list[int], iterations: int | None,
                 early_stop: bool, seed: int) -> list[list]:
    rows = []
    for batch in batches:
        first = None
        for n in counts:
            subset = select(items, n, seed)
            seconds, passes = run_dataset(model, subset, batch, iterations, early_stop)
            per_image = seconds / len(subset)
            first = first or (seconds, per_image)
            rows.append([len(subset), batch, f"{passes / len(subset):.0f}", f"{seconds:.1f}",
                         f"{per_image:.2f}", f"{seconds / passes:.4f}", f"{seconds / first[0]:.2f}",
                         f"{per_image / first[1]:.2f}"])
            print(markdown_table(header(counts[0]), rows[-1:]).splitlines()[-1], flush=True)
    return rows


def header(first: int) -> list[str]:
    return ["images", "batch", "iterations/image", "total s", "s/image", "s/image-iteration",
            f"total / {first}-image total", f"s/image / {first}-image s/image"]


def main() -> None:
    parser = make_parser(__doc__, "device", "result")
    parser.add_argument("--data", default=str(DEFAULT_DATA), help="annotated folder (ground-truth targets)")
    parser.add_argument("--counts", default="8,32,128", help="image counts (nested subsets)")
    parser.add_argument("--batch-sizes", default="8,32")
    parser.add_argument("--iterations", type=int, default=None,
                        help="iterations per mask (default: the method's, 300)")
    parser.add_argument("--early-stop", action="store_true", help="per-image early stopping (default: fixed)")
    parser.add_argument("--threads", type=int, default=1, help="OMP_NUM_THREADS / torch.set_num_threads")
    parser.add_argument("--seed", type=int, default=0, help="seed of the nested subsets")
    args = parser.parse_args()
    printed = Report(args.result)
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    torch.set_num_threads(args.threads)
    dataset = load_folder(Path(args.data))
    if not dataset.annotated:
        raise SystemExit(f"{args.data}: needs an annotated folder (ground-truth classes)")
    counts = [int(c) for c in args.counts.split(",")]
    if max(counts) > len(dataset.items):
        raise SystemExit(f"{args.data} has {len(dataset.items)} images, fewer than {max(counts)}")
    model = ms.load_classifier(device=args.device)
    run_dataset(model, dataset.items[:1], 1, 1, False)  # warm-up
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    iterations = args.iterations or "the default 300"
    schedule = "early stopping" if args.early_stop else "fixed schedule"
    lines = [
        f"meaningful perturbation (fong2017, {iterations} iterations, {schedule}) over {args.data}, "
        f"EfficientNet-Lite0 224x224, {args.device}, {args.threads} thread(s), torch {torch.__version__}, "
        f"{platform.machine()}, {os.cpu_count()} cores, 1-min load average {load:.1f} at the start",
        "",
    ]
    print("\n".join(lines) + "\n" + markdown_table(header(counts[0]), []), flush=True)
    rows = scaling_rows(model, dataset.items, counts, [int(b) for b in args.batch_sizes.split(",")],
                        args.iterations, args.early_stop, args.seed)
    lines += [markdown_table(header(counts[0]), rows), "",
              f"1-min load average at the end {os.getloadavg()[0]:.1f}"]
    printed.record("\n".join(lines))
    printed.close()


if __name__ == "__main__":
    main()
