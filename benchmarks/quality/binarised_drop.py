"""The % drop of the class probability when a cached mask's *binary* region is deleted (the goal
of masks that hold up: binarised at α = 0.5, the drop should survive blur, mean-colour and noise deletion).

Reads an evaluation folder (``maskscope evaluate`` / ``quality_imagenet.py``); for each report image
the cached mask is smoothed as ``metrics.representativeness`` does (σ = 5 px at 224), binarised at
s̃ > 0.5 and deleted with each operator. Four forward passes per image; no mask is computed.

    python benchmarks/quality/binarised_drop.py out/quality_imagenet --methods meaningful,gradcam,center
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch

from maskscope.data.folders import load_folder
from maskscope.evaluate import EvalConfig
from maskscope.evaluate.cache import SETTINGS, MaskCache
from maskscope.evaluate.runner import load_images, make_samples
from maskscope.metrics import REPR_PERTURBATIONS, cross_perturbation_drop, keep_masks
from maskscope.storage import safe_name
from maskscope.zoo import load_classifier

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a file: import the harness
from benchmarks.harness import Report, markdown_table, parser  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__, "result")
    p.add_argument("out", help="evaluation folder (holds details.json and cache/)")
    p.add_argument("--methods", default="meaningful")
    p.add_argument("--alpha", type=float, default=0.5)
    args = p.parse_args(argv)
    printed = Report(args.result)
    out = Path(args.out)
    info = json.loads((out / "details.json").read_text())["info"]
    dataset = load_folder(info["data"])
    model = load_classifier(info["model"])
    size = tuple(info["size"])
    config = EvalConfig(methods=[], limit=info["limit"], seed=info["seed"],
                        tune_fraction=info["tune_fraction"])
    report = [s for s in make_samples(dataset, model, config, size) if s.split == "report"]
    rows = []
    for method in [m.strip() for m in args.methods.split(",") if m.strip()]:
        stored = out / "cache" / safe_name(method) / SETTINGS
        if not stored.exists():
            printed.print(f"{stored.parent}: no cache of {method}", file=sys.stderr)
            continue
        cache = MaskCache(out / "cache", method, json.loads(stored.read_text()))
        # the cache's own key check (content hash + target), not the file name alone
        samples = [s for s in report
                   if cache.status(s.item.key, s.sha256, s.target, s.item.path) in ("ok", "legacy")]
        if not samples:
            printed.print(f"{cache.folder}: no cached report images", file=sys.stderr)
            continue
        images = load_images(samples, size)
        masks = torch.stack([torch.from_numpy(cache.get(s.item.key)[0].astype(np.float32)) for s in samples])
        # the §5.2 binary region of ``metrics.representativeness``: smoothed mask s̃ > threshold
        region = (~keep_masks(masks[:, None], (1.0 - args.alpha,))).float()
        targets = torch.tensor([[s.target] for s in samples])
        with torch.no_grad():
            drops = cross_perturbation_drop(model, images, region, targets, perturbations=REPR_PERTURBATIONS)
        rows.append([method, len(samples), f"{region.mean() * 100:.1f}",
                     *(f"{drops[n].mean():.1f}" for n in REPR_PERTURBATIONS),
                     *(f"{(drops[n] >= 90).float().mean() * 100:.0f}" for n in REPR_PERTURBATIONS)])
    printed.print(f"binary region s̃ > {args.alpha} deleted, report images of {out}")
    printed.print(markdown_table(["method", "images", "region area %",
                                  *(f"% drop {n}" for n in REPR_PERTURBATIONS),
                                  *(f"images ≥ 90 % drop, {n} (%)" for n in REPR_PERTURBATIONS)], rows))
    printed.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
