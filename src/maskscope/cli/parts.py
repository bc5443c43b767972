"""``maskscope parts``: is part A more salient than part B? (Fong & Vedaldi 2017, §5.4.)

DATA is an annotated folder whose entries name keypoints, ``"keypoints": {"eye": [[x, y], ...]}``.
Each image is explained for its ground-truth class; the mask's mean in a 5 × 5 window (at 224 px,
scaled with the image) around each keypoint is compared between the two parts by a paired test over
the images that have both. Writes ``parts.json`` and ``parts.md`` into --out.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..storage import atomic_path
from .common import (
    add_model_options,
    iterations,
    load_model,
    out_path,
    output_folder,
    positive_int,
    seed_number,
)
from .method_args import add_method_arguments, read_methods


def add_parser(subparsers, name: str) -> None:
    p = subparsers.add_parser(name, help="paired test: is one annotated part more salient than another",
                              description=__doc__)
    p.add_argument("data", metavar="DATA", help="annotated folder with keypoints in annotations.json")
    p.add_argument("--part-a", required=True, help="keypoint name, e.g. eye")
    p.add_argument("--part-b", required=True, help="keypoint name, e.g. foot")
    p.add_argument("--methods", "--method", dest="methods", default="meaningful",
                   help="comma-separated saliency methods (default: meaningful)")
    p.add_argument("--out", type=out_path, default="maskscope-parts", help="output folder")
    p.add_argument("--limit", type=positive_int, default=None, help="a random subset of N images (--seed)")
    p.add_argument("--seed", type=seed_number, default=0)
    p.add_argument("--iterations", type=iterations, default=None, help="iterations of meaningful/extremal")
    add_method_arguments(p, "extra keyword option of one method, repeatable")
    add_model_options(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..analysis.adversarial import explain, method_options
    from ..analysis.parts import MIN_PAIRS, compare_parts, markdown, scale_keypoints, window_side
    from ..data.folders import load_annotated_folder, select
    from ..errors import ConfigError, DataError
    from ..images import load_batch

    methods, options = read_methods(args)
    if args.part_a == args.part_b:
        raise ConfigError(f"--part-a and --part-b must differ, got {args.part_a!r} twice")
    dataset = load_annotated_folder(Path(args.data), require_boxes=False)
    items = select(dataset.items, args.limit, args.seed)
    for part in (args.part_a, args.part_b):
        if not any(it.parts.get(part) for it in items):
            present = sorted({p for it in items for p, pts in it.keypoints if pts})
            raise DataError(f"{args.data}: no image has keypoints of part {part!r} "
                            f"(parts present: {', '.join(present) or 'none'})")
    items = [it for it in items if it.parts.get(args.part_a) and it.parts.get(args.part_b)]
    if len(items) < MIN_PAIRS:
        raise DataError(f"{args.data}: {len(items)} image(s) have both {args.part_a!r} and {args.part_b!r}; "
                        f"a paired test needs at least {MIN_PAIRS}")
    with output_folder(args.out) as out:
        model = load_model(args)
        size = model.input_size if model.input_size is not None else items[0].size
        images = load_batch([it.path for it in items], size)
        import torch

        targets = torch.tensor([it.label for it in items], dtype=torch.long)
        keypoints = [scale_keypoints(it.parts, it.size, size) for it in items]
        tests, per_image = {}, {}
        for name in methods:
            masks, _ = explain(name, model, images, targets, method_options(name, args.iterations, options),
                               args.batch_size)
            tests[name], rows = compare_parts(masks, keypoints, args.part_a, args.part_b)
            per_image[name] = {it.name: row for it, row in zip(items, rows)}
        side = window_side(size)
        text = markdown(tests, side, title=f"Part saliency ({getattr(model, 'name', 'model')})")
        report = {"settings": {"data": str(args.data), "methods": methods, "window": side,
                               "options": {m: method_options(m, args.iterations, options) for m in methods}},
                  "tests": {m: t.as_dict() for m, t in tests.items()}, "images": per_image}
        with atomic_path(out / "parts.json") as tmp:
            tmp.write_text(json.dumps(report, indent=1))
        with atomic_path(out / "parts.md") as tmp:
            tmp.write_text(text)
    print(text)
    print(f"results written to {out}")
    return 0
