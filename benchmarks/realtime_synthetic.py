"""The from-scratch small-image masker (the paper's CIFAR-10 configuration) on the synthetic
benchmark: train it on CPU in minutes, report its localisation error (mask ≥ 0.5, IoU > 0.5) on
held-out scenes next to the centre-box baseline.

    python benchmarks/realtime_synthetic.py [--train 4000 --test 500 --epochs 8 --threads 1]

Uses the shipped synthetic "clean" classifier when present, otherwise trains one first.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from maskscope.data.synthetic import (
    as_synthetic_blackbox,
    load_synthetic_classifier,
    make_scenes,
    train_classifier,
    write_annotated_folder,
)
from maskscope.errors import CheckpointError
from maskscope.methods.realtime import TrainConfig, load_masker, train_masker
from maskscope.methods.realtime.data import read_folder
from maskscope.methods.realtime.evaluate import evaluate_masks, predict_masks
from maskscope.metrics.boxes import center_box


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--train", type=int, default=4000)
    p.add_argument("--test", type=int, default=500)
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    started = time.time()
    try:
        blackbox = load_synthetic_classifier("clean")
    except CheckpointError:
        scenes = make_scenes(6000, "clean", "train", seed=0)
        blackbox = as_synthetic_blackbox(train_classifier(scenes), "clean")
    train = make_scenes(args.train, "clean", "train", seed=11)
    test = make_scenes(args.test, "clean", "test", seed=12)
    out = args.out or Path(tempfile.mkdtemp(prefix="realtime-synthetic-"))
    folder = write_annotated_folder(train, out / "train")
    config = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, encoder="small",
                         image_size=train.images.shape[-1], checkpoint_every=10**9, val_every=10**9)
    train_masker(blackbox, read_folder(folder), out / "masker.pt", config)
    masker = load_masker(blackbox, out / "masker.pt")
    boxes = [[b.tolist()] for b in test.boxes]
    masks = predict_masks(masker, test.images, test.labels)
    result = {"masker": evaluate_masks(blackbox, test.images, test.labels, boxes, masks)}
    h, w = test.images.shape[-2:]
    centre = torch.zeros(len(test), 1, h, w)
    x0, y0, x1, y1 = (round(v) for v in center_box(h, w))
    centre[..., y0 : y1 + 1, x0 : x1 + 1] = 1
    result["centre box"] = evaluate_masks(blackbox, test.images, test.labels, boxes, centre)
    result["minutes"] = round((time.time() - started) / 60, 1)
    result["args"] = vars(args) | {"out": str(out)}
    print(json.dumps(result, indent=2, default=str))


if __name__ == "__main__":
    main()
