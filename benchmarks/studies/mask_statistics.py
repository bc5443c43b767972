"""How strong are a method's cached masks, and how do two runs of it compare image by image?

Reads the mask cache that ``maskscope evaluate`` (or ``quality_imagenet.py`` /
``quality_synthetic.py``) leaves under ``<out>/cache/<method>/``; computes nothing with the model.

    python benchmarks/studies/mask_statistics.py OUT [--method meaningful]
    python benchmarks/studies/mask_statistics.py OUT --compare OTHER_OUT [--method meaningful]

One folder: the mean mask peak, the share of masks that reach 0.5 anywhere (Dabkowski & Gal's
fixed threshold needs that), the mean area, and the class probability before and after the whole
image is blurred (the floor a deletion mask is measured against).

``--compare``: the same method cached in two folders (e.g. two iteration counts), on the images
both hold, with OUT's tuned thresholds (``OUT/metrics.json``) applied to both: peak, area,
localisation correct at mean* / energy*, pointing (``--tolerance`` px), % drop, saliency metric.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch

from maskscope.boxes import scale_box
from maskscope.data.folders import load_folder
from maskscope.metrics.localisation import localisation_correct
from maskscope.metrics.pointing import pointing_hit

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a file: import the harness
from benchmarks.harness import Report, parser  # noqa: E402


def cached(out: Path, method: str) -> tuple[dict, dict[str, tuple[torch.Tensor, dict]]]:
    """(settings.json, key → (mask (H, W), per-image scores)) of one method's cache."""
    folder = out / "cache" / method
    settings = json.loads((folder / "settings.json").read_text())
    entries = {}
    for meta in sorted(folder.glob("*.json")):
        if meta.name == "settings.json" or not meta.with_suffix(".npy").exists():
            continue
        mask = torch.from_numpy(np.load(meta.with_suffix(".npy")).astype(np.float32))
        entries[meta.stem] = (mask, json.loads(meta.read_text()))
    return settings, entries


def strength(entries: dict[str, tuple[torch.Tensor, dict]]) -> dict[str, float]:
    peaks = np.array([float(m.max()) for m, _ in entries.values()])
    return {
        "images": len(entries),
        "mean peak": peaks.mean(),
        "share with peak >= 0.5": (peaks >= 0.5).mean(),
        "mean area": np.mean([float(m.mean()) for m, _ in entries.values()]),
        "p original": np.mean([s["p_original"] for _, s in entries.values()]),
        "p fully blurred": np.mean([s["p_blurred"] for _, s in entries.values()]),
    }


def compare(out: Path, other: Path, method: str, tolerance: float) -> dict[str, tuple[float, float]]:
    settings, first = cached(out, method)
    _, second = cached(other, method)
    alphas = json.loads((out / "metrics.json").read_text())[method]
    items = {item.key: item for item in load_folder(settings["data"], require_boxes=True).items}
    size = tuple(settings["size"])
    rows = []
    for key in sorted(set(first) & set(second)):
        item = items[key]
        boxes = [scale_box(b, (item.height, item.width), size) for b in item.boxes]
        row = []
        for mask, scores in (first[key], second[key]):
            row += [float(mask.max()), float(mask.mean()),
                    localisation_correct(mask, boxes, "mean", alphas["loc_alpha_mean"]),
                    localisation_correct(mask, boxes, "energy", alphas["loc_alpha_energy"]),
                    pointing_hit(mask, boxes, tolerance), scores["drop"], scores["saliency"]]
        rows.append(row)
    if not rows:
        raise SystemExit(f"no image is cached for {method} in both {out} and {other}")
    means = np.array(rows, dtype=float).mean(0)
    names = ["mean peak", "mean area", "localisation correct, mean*", "localisation correct, energy*",
             "pointing", "% drop", "saliency metric"]
    table = {"images": (len(rows), len(rows))}
    table.update({name: (means[k], means[k + len(names)]) for k, name in enumerate(names)})
    return table


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__, "result")
    p.add_argument("out", type=Path, help="an evaluation output folder (holds cache/)")
    p.add_argument("--method", default="meaningful")
    p.add_argument("--compare", type=Path, default=None, help="a second output folder, same method")
    p.add_argument("--tolerance", type=float, default=15.0, help="pointing tolerance in pixels")
    args = p.parse_args(argv)
    printed = Report(args.result)
    try:
        if args.compare is None:
            stats = strength(cached(args.out, args.method)[1])
        else:
            table = compare(args.out, args.compare, args.method, args.tolerance)
    except (OSError, KeyError, json.JSONDecodeError) as exc:
        printed.print(f"cannot read the cache: {exc}", file=sys.stderr)
        return 2
    if args.compare is None:
        printed.print(f"| {args.method} ({args.out}) | value |\n|---|---|")
        for name, value in stats.items():
            printed.print(f"| {name} | {value:.3f} |" if isinstance(value, float)
                          else f"| {name} | {value} |")
    else:
        printed.print(f"| {args.method} | {args.out} | {args.compare} |\n|---|---|---|")
        for name, (a, b) in table.items():
            printed.print(f"| {name} | {a} | {b} |" if name == "images"
                          else f"| {name} | {a:.3f} | {b:.3f} |")
    printed.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
