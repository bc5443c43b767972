"""The % drop of the class probability when a cached mask's *binary* region is deleted (issue 11's
goal: binarised at α = 0.5, the drop should survive blur, mean-colour and noise deletion).

Reads an evaluation folder (``maskscope evaluate`` / ``quality_imagenet.py``); for each report image
the cached mask is smoothed as ``metrics.representativeness`` does (σ = 5 px at 224), binarised at
s̃ > 0.5 and deleted with each operator. Four forward passes per image; no mask is computed.

    python benchmarks/binarised_drop.py out/quality_imagenet --methods meaningful,gradcam,center
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from _common import markdown_table

from maskscope.data.folders import load_folder, select, split
from maskscope.evaluate.runner import load_images, make_samples
from maskscope.metrics import REPR_PERTURBATIONS, cross_perturbation_drop
from maskscope.metrics.representativeness import SMOOTH_SIGMA
from maskscope.perturb import gaussian_blur, pixel_scale
from maskscope.zoo import load_classifier


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out", help="evaluation folder (holds details.json and cache/)")
    p.add_argument("--methods", default="meaningful")
    p.add_argument("--alpha", type=float, default=0.5)
    args = p.parse_args(argv)
    out = Path(args.out)
    info = json.loads((out / "details.json").read_text())["info"]
    dataset = load_folder(info["data"])
    model = load_classifier(info["model"])
    size = tuple(info["size"])
    items = select(dataset.items, info["limit"], info["seed"])
    report = {k for k, v in split(items, info["tune_fraction"], info["seed"]).items() if v == "report"}
    rows = []
    for method in [m.strip() for m in args.methods.split(",") if m.strip()]:
        folder = out / "cache" / method
        samples = [s for s in make_samples(dataset, model, _Config(info), size)
                   if s.item.key in report and (folder / f"{Path(s.item.key).stem}.npy").exists()]
        if not samples:
            print(f"{folder}: no cached report images", file=sys.stderr)
            continue
        images = load_images(samples, size)
        arrays = [np.load(folder / f"{Path(s.item.key).stem}.npy").astype(np.float32) for s in samples]
        masks = torch.stack([torch.from_numpy(a) for a in arrays])[:, None]
        smoothed = gaussian_blur(masks, SMOOTH_SIGMA * pixel_scale(images.shape))
        region = (smoothed > args.alpha).float()
        targets = torch.tensor([[s.target] for s in samples])
        with torch.no_grad():
            drops = cross_perturbation_drop(model, images, region, targets, perturbations=REPR_PERTURBATIONS)
        rows.append([method, len(samples), f"{region.mean() * 100:.1f}",
                     *(f"{drops[n].mean():.1f}" for n in REPR_PERTURBATIONS),
                     *(f"{(drops[n] >= 90).float().mean() * 100:.0f}" for n in REPR_PERTURBATIONS)])
    print(f"binary region s̃ > {args.alpha} deleted, report images of {out}")
    print(markdown_table(["method", "images", "region area %",
                          *(f"% drop {n}" for n in REPR_PERTURBATIONS),
                          *(f"images ≥ 90 % drop, {n} (%)" for n in REPR_PERTURBATIONS)], rows))
    return 0


class _Config:
    """The few evaluation settings ``make_samples`` reads, taken from the run's details.json."""

    def __init__(self, info: dict) -> None:
        self.limit, self.seed, self.tune_fraction = info["limit"], info["seed"], info["tune_fraction"]
        self.batch_size = 8
        self.cached_only = None


if __name__ == "__main__":
    sys.exit(main())
