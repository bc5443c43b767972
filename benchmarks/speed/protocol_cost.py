"""What leaving out the costly protocols saves: ``maskscope evaluate`` with every protocol and with
``--protocols localisation,saliency``, timed in one run on the same images and model.

    python benchmarks/speed/protocol_cost.py --limit 8 --methods gradient,center \
        --result benchmarks/results/protocol_cost

Each evaluation starts from an empty output folder (no cached masks), after one untimed warm-up
run; the model is loaded once. The methods' own cost is in both runs: with cheap methods the
difference is the protocols'. Prints a table; ``--result PATH`` writes it in the harness's format.
"""

from __future__ import annotations

import json
import re
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a file: import the harness
from benchmarks.harness import SHARED_DATA, Table, emit, parser  # noqa: E402
from maskscope.data.folders import load_folder  # noqa: E402
from maskscope.evaluate import EvalConfig, evaluate_folder  # noqa: E402
from maskscope.evaluate.protocols import resolve  # noqa: E402
from maskscope.zoo import load_classifier  # noqa: E402

DEFAULT_DATA = SHARED_DATA / "imagenet-val-sample"
CHEAP = "localisation,saliency"


def _passes(names: list[str] | None) -> int:
    """Stated forward passes per image and method (upper bounds where the stated cost is one)."""
    return sum(int(re.match(r"(≤ )?(\d+)", p.passes).group(2)) for p in resolve(names))


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__, "device", "result")
    p.add_argument("--data", default=str(DEFAULT_DATA))
    p.add_argument("--classifier", default="efficientnet-lite0")
    p.add_argument("--methods", default="gradient,center")
    p.add_argument("--limit", type=int, default=8)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--examples", type=int, default=8, help="example grids per method (the CLI's default)")
    p.add_argument("--reference", action="store_true", help="add the reference rows (centre, full, boxes)")
    args = p.parse_args(argv)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("CUDA requested but not available", file=sys.stderr)
        return 2
    dataset = load_folder(args.data, require_boxes=True)
    model = load_classifier(args.classifier, device=args.device)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]

    def run(protocols: list[str] | None, limit: int, examples: int) -> tuple[float, dict]:
        config = EvalConfig(methods=methods, batch_size=args.batch_size, limit=limit, progress=False,
                            protocols=protocols, references=args.reference)
        with tempfile.TemporaryDirectory() as out:
            start = time.perf_counter()
            evaluate_folder(dataset, model, out, config, examples=examples)
            seconds = time.perf_counter() - start
            info = json.loads((Path(out) / "details.json").read_text())["info"]
        print(f"{protocols or 'all'}, {limit} images: {seconds:.1f} s", file=sys.stderr, flush=True)
        return seconds, info

    run(CHEAP.split(","), 2, 0)  # warm-up: lazy initialisation, caches of the libraries
    rows, results = [], {}
    for label, protocols in (("all", None), (CHEAP, CHEAP.split(","))):
        seconds, info = run(protocols, args.limit, args.examples)
        method = sum(info["method_seconds_now"].values())  # in the methods themselves
        results[label] = {"seconds": round(seconds, 2), "passes_per_image_and_method": _passes(protocols),
                          "method_seconds": round(method, 2)}
        rows.append([label, f"{seconds:.1f}", _passes(protocols), f"{method:.1f}", f"{seconds - method:.1f}"])
    ratio = results[CHEAP]["seconds"] / results["all"]["seconds"]
    rows_note = "+ reference rows" if args.reference else "(no reference rows)"
    note = (f"ratio {CHEAP} / all: {ratio:.3f} ({len(methods)} methods {rows_note}, {args.limit} images, "
            f"{args.classifier} on {args.device}, torch threads {torch.get_num_threads()})")
    columns = ["protocols", "seconds", "forward passes / image / method (≤)", "in the methods (s)",
               "the rest: protocols, files (s)"]
    emit([Table(columns, rows)], args.result, [note])
    return 0


if __name__ == "__main__":
    sys.exit(main())
