"""Speed of batched meaningful perturbation vs the bare classifier forward+backward cost.

The method's physical limit is one forward and one backward pass of the classifier per
iteration; everything else (perturbation, mask upsampling and smoothing, jitter, Adam, the circle
init and the final scores) is overhead. For each thread count and batch size we time, interleaved
in the same run so that load from other processes hits all alike (best of ``--repeat``):

- the whole method (fixed schedule) at two iteration counts n1 < n2, which splits its cost into a
  once-per-run part (init, final scores) and a per-iteration part;
- the same number of bare forward+backward passes (gradient w.r.t. the input).

``method / bare @N`` is then (once + N·per-iteration) / (N·bare), at ``--at`` iterations (300, the
paper's schedule) without having to run 300 iterations on a busy CPU. ``--breakdown`` adds a
per-iteration table (torch.profiler over one iteration at ``--breakdown-batch``, 4 by default:
where the time goes, by phase) and ``--amp`` / ``--channels-last`` add rows for the accelerated classifier.

    python benchmarks/speed/speed_meaningful.py [--threads 1,2] [--batch-sizes 1,4,16] [--iterations 5,15]
        [--breakdown] [--amp] [--channels-last] [--result benchmarks/results/speed/speed_meaningful]
"""

from __future__ import annotations

import os
import platform
import sys
import time
from pathlib import Path

import torch

import maskscope as ms
from maskscope.accelerate import accelerate
from maskscope.masks import jitter, upsample_mask
from maskscope.methods.optimise import keep_mask, resolve_settings
from maskscope.objectives import class_score
from maskscope.perturb import get_perturbation

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a file: import the harness
from benchmarks.harness import Report, bare_forward_backward, demo_batch, markdown_table  # noqa: E402
from benchmarks.harness import parser as make_parser


def method_seconds(blackbox, images: torch.Tensor, iterations: int) -> float:
    start = time.perf_counter()
    ms.meaningful_perturbation(blackbox, images, iterations=iterations, early_stop=False)
    return time.perf_counter() - start



def speed_rows(blackbox, photos, batch_sizes, n1, n2, at, repeat) -> list[list]:
    rows, per_mask_1 = [], None
    for b in batch_sizes:
        images = photos[torch.arange(b) % len(photos)]
        method_seconds(blackbox, images, 1)  # warm-up
        t1, t2, bare = [], [], []
        for _ in range(repeat):  # interleaved, so a burst of load hits all three alike
            t1.append(method_seconds(blackbox, images, n1))
            t2.append(method_seconds(blackbox, images, n2))
            bare.append(bare_forward_backward(blackbox, images, n2))
        t1, t2, bare = min(t1), min(t2), min(bare) / n2
        per_iteration = (t2 - t1) / (n2 - n1)
        once = max(0.0, t1 - n1 * per_iteration)
        total = once + at * per_iteration
        per_mask = total / b
        per_mask_1 = per_mask if per_mask_1 is None else per_mask_1
        rows.append([b, f"{per_mask:.1f}", f"{bare / b:.3f}", f"{per_iteration / b:.3f}",
                     f"{per_iteration / bare:.3f}", f"{once / b:.2f}", f"{total / (at * bare):.3f}",
                     f"{per_mask_1 / per_mask:.2f}"])
    return rows


def compare_variants(variants: dict, photos, batch: int, rounds: int, passes: int = 3) -> list[list]:
    """Bare forward+backward seconds per image of each classifier variant, round-robin over
    ``rounds`` (best of each), so a burst of load from other jobs cannot favour one variant."""
    images = photos[torch.arange(batch) % len(photos)]
    for blackbox in variants.values():
        bare_forward_backward(blackbox, images, 1)  # warm-up
    best = dict.fromkeys(variants, float("inf"))
    for _ in range(rounds):
        for name, blackbox in variants.items():
            best[name] = min(best[name], bare_forward_backward(blackbox, images, passes) / passes / batch)
    base = best[next(iter(variants))]
    return [[name, f"{seconds:.3f}", f"{base / seconds:.2f}"] for name, seconds in best.items()]


def breakdown(blackbox, photos, batch: int = 4) -> tuple[list[list], str]:
    """One iteration of meaningful's loop, phase by phase, under torch.profiler (forward and
    backward of each phase attributed to it through ``record_function`` and autograd's sequence)."""
    settings = resolve_settings("fong2017").for_size((224, 224))
    x = photos[torch.arange(batch) % len(photos)]
    pert = get_perturbation(settings.perturbation)
    apply = pert.prepare(x)
    params = torch.full((batch, 1, 28, 28), 0.5, requires_grad=True)
    targets = torch.zeros(batch, 1, dtype=torch.long)
    opt = torch.optim.Adam([params], lr=settings.lr)

    def one_iteration() -> None:
        with torch.profiler.record_function("mask: upsample + smooth"):
            salient = upsample_mask(params, (224, 224), settings.mask_sigma)
        with torch.profiler.record_function("jitter"):
            shown = jitter(salient, 2, 1)
        with torch.profiler.record_function("perturbation blend"):
            seen = apply(keep_mask(shown, "delete"))
        with torch.profiler.record_function("classifier forward"):
            logits = blackbox(seen)
        with torch.profiler.record_function("loss"):
            loss = class_score(logits, targets, "prob") + params.abs().mean((1, 2, 3))
        with torch.profiler.record_function("backward (all)"):
            (grad,) = torch.autograd.grad(loss.sum(), params)
        with torch.profiler.record_function("Adam step + clamp"):
            params.grad = grad
            opt.step()
            with torch.no_grad():
                params.clamp_(0, 1)

    with blackbox.evaluating():
        for _ in range(2):
            one_iteration()
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
            for _ in range(3):
                one_iteration()
        # the backward of the mask pipeline alone (the part of "backward (all)" that is overhead)
        start = time.perf_counter()
        for _ in range(3):
            salient = upsample_mask(params, (224, 224), settings.mask_sigma)
            seen = apply(keep_mask(jitter(salient, 2, 1), "delete"))
            torch.autograd.grad(seen.sum(), params)
        pipeline = (time.perf_counter() - start) / 3
    events = {e.key: e.cpu_time_total / 3 / 1e3 for e in prof.key_averages()
              if not e.key.startswith("aten::")}
    phases = ["mask: upsample + smooth", "jitter", "perturbation blend", "classifier forward", "loss",
              "backward (all)", "Adam step + clamp"]
    total = sum(events.get(p, 0.0) for p in phases)
    rows = [[p, f"{events.get(p, 0.0):.1f}", f"{100 * events.get(p, 0.0) / total:.1f}"] for p in phases]
    rows.append(["mask pipeline fwd+bwd alone (timed apart)", f"{1e3 * pipeline:.1f}",
                 f"{100 * 1e3 * pipeline / total:.1f}"])
    table = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15)
    return rows, table


def main() -> None:
    parser = make_parser(__doc__, "device", "result")
    parser.add_argument("--iterations", default="5,15", help="the two iteration counts n1,n2 timed")
    parser.add_argument("--at", type=int, default=300, help="iterations the ratio is reported at")
    parser.add_argument("--batch-sizes", default="1,4,16")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--breakdown", action="store_true", help="per-iteration profile (torch.profiler)")
    parser.add_argument("--breakdown-batch", type=int, default=4, help="batch size of --breakdown")
    parser.add_argument("--amp", action="store_true", help="also time the classifier under bf16 autocast")
    parser.add_argument("--channels-last", action="store_true", help="also time channels-last")
    parser.add_argument("--compare", type=int, default=0, metavar="ROUNDS",
                        help="only compare the classifier variants' bare forward+backward at batch 4, "
                             "1 thread, round-robin over ROUNDS")
    args = parser.parse_args()
    printed = Report(args.result)
    n1, n2 = (int(s) for s in args.iterations.split(","))
    base = ms.load_classifier(device=args.device)
    _, photos = demo_batch()
    photos = photos.to(args.device)
    variants = {"float32": base}
    if args.amp:
        variants["bf16 autocast"] = accelerate(base, amp="bf16")
    if args.channels_last:
        variants["channels-last"] = accelerate(base, channels_last=True)
    if args.amp and args.channels_last:
        variants["bf16 + channels-last"] = accelerate(base, amp="bf16", channels_last=True)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    lines = [
        f"meaningful perturbation (fong2017, fixed schedule), EfficientNet-Lite0 224x224, {args.device}, "
        f"torch {torch.__version__}, {platform.machine()}, {os.cpu_count()} cores, 1-min load average "
        f"{load:.1f} at the start; times from {n1} and {n2} iterations (best of {args.repeat}), ratio at "
        f"{args.at}",
        "",
    ]
    if args.compare:
        torch.set_num_threads(1)
        rows = compare_variants(variants, photos, 4, args.compare)
        lines += ["**bare classifier forward+backward, batch 4, 1 thread, best of "
                  f"{args.compare} round-robin rounds**", "",
                  markdown_table(["classifier", "s/image", "speed-up vs float32"], rows), "",
                  f"1-min load average at the end {os.getloadavg()[0]:.1f}"]
        printed.print("\n".join(lines))
        printed.close()
        return
    header = ["batch", f"s/mask @{args.at}", "bare fwd+bwd s/image", "method s/image/iteration",
              "per-iteration / bare", "once-per-run s/mask", f"method / bare @{args.at}",
              "speed-up per mask vs batch 1"]
    for name, blackbox in variants.items():
        for threads in [int(t) for t in args.threads.split(",")]:
            torch.set_num_threads(threads)
            rows = speed_rows(blackbox, photos, [int(s) for s in args.batch_sizes.split(",")], n1, n2,
                              args.at, args.repeat)
            lines += [f"**{name}, {threads} thread(s)**", "", markdown_table(header, rows), ""]
            print("\n".join(lines[-4:]), flush=True)
    if args.breakdown:
        torch.set_num_threads(1)
        for name, blackbox in variants.items():
            rows, table = breakdown(blackbox, photos, args.breakdown_batch)
            lines += [f"**one iteration at batch {args.breakdown_batch}, {name}, 1 thread (ms, mean of 3; "
                      "torch.profiler)**", "",
                      markdown_table(["phase", "ms", "% of iteration"], rows), "", "```", table, "```", ""]
            print("\n".join(lines[-8:]), flush=True)
    lines.append(f"1-min load average at the end {os.getloadavg()[0]:.1f}")
    printed.record("\n".join(lines))
    printed.close()


if __name__ == "__main__":
    main()
