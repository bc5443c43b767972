"""Masks per second of the real-time masker vs the classifier's own forward pass and vs meaningful
perturbation, measured in the same run on the same machine.

    python benchmarks/speed/speed_realtime.py [--device cuda] [--masker PATH] [--threads N]

Without a trained masker (none shipped yet, or --random) a freshly initialised one is timed: the
architecture, hence the speed, is the same. Meaningful perturbation is timed for a few iterations
and extrapolated to its 300 (its cost per iteration is constant).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import torch

from maskscope.methods.meaningful import meaningful_perturbation
from maskscope.methods.realtime import build_masker, load_masker, masker_config, shipped_masker_path
from maskscope.zoo import load_classifier

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a file: import the harness
from benchmarks.harness import Report, parser  # noqa: E402


def rate(fn, batch: int, seconds: float, device: str) -> float:
    """Images per second of fn() on a batch, after one warm-up call, for at least ``seconds``."""
    fn()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    n, start = 0, time.perf_counter()
    while True:
        fn()
        n += 1
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        elapsed = time.perf_counter() - start
        if elapsed >= seconds and n >= 2:
            return n * batch / elapsed


def main() -> None:
    p = parser(__doc__, "device", "result")
    p.add_argument("--masker", default=None)
    p.add_argument("--random", action="store_true", help="time an untrained masker")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--meaningful-iterations", type=int, default=5)
    p.add_argument("--amp", action="store_true", help="bfloat16 autocast for both (GPU)")
    args = p.parse_args()
    printed = Report(args.result)
    if args.threads:
        torch.set_num_threads(args.threads)
    bb = load_classifier(device=args.device)
    if args.random or (args.masker is None and not shipped_masker_path(bb.name).is_file()):
        masker, which = build_masker(bb, masker_config(bb)).eval(), "untrained (same architecture)"
    else:
        masker, which = load_masker(bb, args.masker, device=args.device), args.masker or "shipped"
    results = {"device": torch.cuda.get_device_name() if args.device.startswith("cuda") else
               f"cpu ({torch.get_num_threads()} threads)", "masker": which}
    autocast = torch.autocast(device_type=torch.device(args.device).type, dtype=torch.bfloat16,
                              enabled=args.amp)
    for batch in (1, 32):
        x = torch.rand(batch, 3, 224, 224, device=args.device)
        sel = torch.randint(0, 1000, (batch,), device=args.device)
        with torch.no_grad(), autocast:
            classifier = rate(lambda: bb(x), batch, args.seconds, args.device)  # noqa: B023
            masks = rate(lambda: masker(x, sel), batch, args.seconds, args.device)  # noqa: B023
        results[f"batch {batch}"] = {"classifier images/s": round(classifier, 2), "masks/s": round(masks, 2),
                                     "ratio": round(masks / classifier, 3)}
    x = torch.rand(8, 3, 224, 224, device=args.device)
    its = args.meaningful_iterations
    start = time.perf_counter()
    meaningful_perturbation(bb, x, target=1, iterations=its, init="uniform")
    per_image = (time.perf_counter() - start) / 8 * (300 / its)
    results["meaningful perturbation masks/s (300 its, batch 8, extrapolated)"] = round(1 / per_image, 4)
    results["masker / meaningful speed-up (batch 32)"] = round(results["batch 32"]["masks/s"] * per_image, 1)
    printed.print(json.dumps(results, indent=2))
    printed.close()


if __name__ == "__main__":
    main()
