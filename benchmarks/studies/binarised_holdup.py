"""Do meaningful masks hold up once binarised? The mask of each image of one split of an ImageNet
folder with boxes, smoothed and binarised as ``metrics.representativeness`` does (σ = 5 px at 224,
s̃ > 0.5), is deleted with a σ = 10 px blur blend, the image's mean colour and noise; the table gives
the mean % drop of the ground-truth class's probability under each, the share of images with a
drop of at least 90 %, and the binary region's area. Settings are chosen on ``--split tune``; the
``report`` split is for the table.

    OMP_NUM_THREADS=1 python benchmarks/studies/binarised_holdup.py --split tune --images 12 \\
        --set "alternate=constant,harden=0.3" --cache /tmp/holdup --result /tmp/holdup_tune

Each ``--set`` is one variant of ``meaningful_perturbation``'s keywords (``;`` separates variants;
an empty one is the default); ``method=extremal`` runs extremal perturbation's deletion game at one
area instead (``areas=0.2`` by default), to report its numbers beside meaningful's.
``--target truth`` explains and scores the ground-truth class, ``top1`` the class the model
predicts (a relative drop of a class the model gives p ≈ 0 is noise: its p can only rise). The last
row deletes the whole image, the most any region can do: a ceiling for every column.
Masks are cached per image under a key of the resolved settings, the target, the classifier's
weights and the image's pixels.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from maskscope.fingerprint import model_fingerprint
from maskscope.methods.extremal import extremal_perturbation
from maskscope.methods.meaningful import meaningful_perturbation
from maskscope.methods.settings import Settings, resolve_settings
from maskscope.metrics import REPR_PERTURBATIONS, cross_perturbation_drop, keep_masks
from maskscope.zoo import load_classifier

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a file: import the harness
from benchmarks.harness import Report, markdown_table, parser  # noqa: E402
from benchmarks.quality.extremal_vs_torchray import (  # noqa: E402
    add_sample_arguments,
    image_digest,
    load_samples,
    parse_sets,
    resolved,
    save_npz,
)


def extremal_options(options: dict) -> tuple[float, dict]:
    """A ``method=extremal`` variant's one area (default 0.2, the goal's largest region) and its
    other keywords."""
    rest = {k: v for k, v in options.items() if k not in ("method", "areas")}
    return float(options.get("areas", 0.2)), rest


def cache_key(options: dict, context: dict | None = None) -> str:
    """What the masks depend on: every resolved setting, the other keywords and ``context`` (the
    target rule and the classifier's fingerprint)."""
    if options.get("method") == "extremal":
        area, rest = extremal_options(options)
        content = {"method": "extremal", "game": "delete", "areas": area, **resolved(rest)}
    else:
        names = {f.name for f in dataclasses.fields(Settings)}
        preset = options.get("preset", "fong2017")
        settings = resolve_settings(preset, **{k: v for k, v in options.items() if k in names})
        content = {**dataclasses.asdict(settings), **{k: v for k, v in options.items() if k not in names}}
    content = {**content, **(context or {})}
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:12]


def explain(model, x, targets, options: dict):
    """The default: meaningful perturbation with ``options``. ``method=extremal``: extremal
    perturbation's deletion game at one area."""
    if options.get("method") != "extremal":
        return meaningful_perturbation(model, x, targets, **options)
    area, rest = extremal_options(options)
    return extremal_perturbation(model, x, targets, game="delete", areas=area, **rest)


def masks_for(model, samples, targets: list[int], options, batch: int, folder: Path | None, context: dict):
    """Salient masks (N, 1, H, W) of ``targets`` and seconds per mask, cached per image."""
    key = cache_key(options, context)
    out, seconds = [], 0.0
    for start in range(0, len(samples), batch):
        chunk = samples[start:start + batch]
        paths = [folder / key / f"{s[0]}-{image_digest(s[1])}.npz" for s in chunk] if folder else []
        if paths and all(p.exists() for p in paths):
            stored = [np.load(p) for p in paths]
            out += [torch.from_numpy(d["mask"]) for d in stored]
            seconds += sum(float(d["seconds"]) for d in stored)
            continue
        begin = time.perf_counter()
        x = torch.stack([s[1] for s in chunk])
        e = explain(model, x, targets[start:start + batch], options)
        spent = time.perf_counter() - begin
        masks = e.masks.detach().cpu().float()
        for i, p in enumerate(paths):
            save_npz(p, mask=masks[i].numpy(), seconds=spent / len(chunk))
        out += list(masks)
        seconds += spent
        print(f"  {options or 'default'}: {start + len(chunk)}/{len(samples)} images, {spent:.0f} s",
              file=sys.stderr, flush=True)
    return torch.stack(out), seconds / len(samples)


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__, "result")
    add_sample_arguments(p, images=24)
    p.add_argument("--batch", type=int, default=12)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--cache", type=Path, default=None)
    p.add_argument("--target", choices=("truth", "top1"), default="truth",
                   help="explain the ground-truth class or the model's top-1 class")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    report = Report(args.result)
    model = load_classifier("efficientnet-lite0")
    samples = load_samples(args.data, args.split, args.images, args.tune_fraction, args.seed)
    images = torch.stack([s[1] for s in samples])
    with torch.no_grad():
        predicted = model(images).argmax(1).tolist()
    classes = [s[2] for s in samples] if args.target == "truth" else predicted
    targets = torch.tensor([[c] for c in classes])
    context = {"target": args.target, "classifier": model_fingerprint(model)}
    rows = []

    def row(name: str, masks: torch.Tensor, region: torch.Tensor, per_mask: str) -> list:
        with torch.no_grad():
            binary = cross_perturbation_drop(model, images, region, targets, perturbations=REPR_PERTURBATIONS)
            soft = binary if masks is region else cross_perturbation_drop(
                model, images, masks, targets, perturbations=REPR_PERTURBATIONS)
        return [name, len(samples), f"{region.mean() * 100:.1f}",
                *(f"{binary[n].mean():.1f}" for n in REPR_PERTURBATIONS),
                *(f"{(binary[n] >= 90).float().mean() * 100:.0f}" for n in REPR_PERTURBATIONS),
                *(f"{soft[n].mean():.1f}" for n in REPR_PERTURBATIONS), per_mask]

    for options in parse_sets(args.set):
        masks, per_mask = masks_for(model, samples, classes, options, args.batch, args.cache, context)
        region = (~keep_masks(masks, (0.5,))).float()
        name = ", ".join(f"{k}={v}" for k, v in options.items()) or "default"
        rows.append(row(name, masks, region, f"{per_mask:.1f}"))
    whole = torch.ones(len(samples), 1, *images.shape[-2:])
    rows.append(row("whole image deleted (ceiling)", whole, whole, "–"))
    correct = sum(int(p == s[2]) for p, s in zip(predicted, samples))
    report.print(f"{args.split} split of {args.data.name} (tune fraction {args.tune_fraction}, "
                 f"seed {args.seed}), "
                 "meaningful perturbation (method=extremal: extremal, deletion game), "
                 f"{'ground-truth' if args.target == 'truth' else 'top-1'} class "
                 f"(top-1 correct on {correct} of {len(samples)}), "
                 "EfficientNet-Lite0 at 224; binary region = mask smoothed σ = 5 px, > 0.5")
    report.print(markdown_table(
        ["variant", "images", "binary area %", *(f"binary % drop {n}" for n in REPR_PERTURBATIONS),
         *(f"images ≥ 90 %, {n}" for n in REPR_PERTURBATIONS),
         *(f"soft % drop {n}" for n in REPR_PERTURBATIONS),
         "s / mask"], rows))
    report.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
