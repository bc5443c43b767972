"""How many images and how long for a useful masker: localisation error and saliency metric on a
held-out split against the number of training images, with the CPU time of each training run.

``--suite synthetic`` (minutes on one CPU thread): the shipped synthetic-scene classifier
(``synthetic:clean``), a masker with the classifier's own stages as encoder (``--encoder``) trained
for a fixed number of steps on N generated scenes (train split), scored on scenes of the test split
that no run trains or chooses on. The centre box is the reference a masker must beat.

``--suite imagenet`` (hours): the embedded EfficientNet-Lite0 on 250 / 500 / 1000 / all training
images of ``shared/data`` (``scripts/train_masker.split3``: the validation eighth chooses the best
checkpoint, the held-out quarter is only reported), and EfficientNet-Lite2 from the zoo on all.

    OMP_NUM_THREADS=1 python benchmarks/studies/masker_data_size.py --suite synthetic \\
        --sizes 100,250,500,1000 --steps 300 --result benchmarks/results/masker_data_size_synthetic
    OMP_NUM_THREADS=1 python benchmarks/studies/masker_data_size.py --suite imagenet --epochs 10 \\
        --result benchmarks/results/masker_data_size_imagenet
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a file: import the harness
from benchmarks.harness import ROOT, SHARED_DATA, Table, emit, parser  # noqa: E402
from maskscope.boxes import box_to_mask, center_box, scale_box  # noqa: E402
from maskscope.methods.realtime import TrainConfig, load_masker, train_masker  # noqa: E402
from maskscope.methods.realtime.data import Sample, load_pixels, read_folder  # noqa: E402
from maskscope.methods.realtime.train import best_path, weights_digest  # noqa: E402
from maskscope.methods.realtime.validate import evaluate_masks, predict_masks  # noqa: E402
from maskscope.zoo import load_classifier  # noqa: E402

COLUMNS = ["classifier", "encoder", "training images", "steps", "CPU s", "loc. error", "saliency metric",
           "mean area"]


def score(blackbox, masker, samples: list[Sample], side: int) -> dict[str, float]:
    """The paper's two measures on ``samples`` (class selector = the true label); ``masker=None``
    scores the centre box."""
    pixels, kept = load_pixels(samples, side, progress=False)
    labels = torch.tensor([s.label for s in kept])
    boxes = [[scale_box(b, s.size or (side, side), (side, side)) for b in s.boxes] for s in kept]
    if masker is None:
        masks = box_to_mask(center_box(side, side), (side, side), "cpu").expand(len(kept), 1, side, side)
    else:
        masks = predict_masks(masker, pixels, labels)
    return evaluate_masks(blackbox, pixels.float() / 255, labels, boxes, masks.float())


def run(blackbox, train: list[Sample], val: list[Sample] | None, held_out: list[Sample], out: Path,
        config: TrainConfig, side: int) -> list:
    """Train on ``train`` (choosing on ``val`` when given), score the chosen masker on ``held_out``.

    A run stopped part-way resumes from its last checkpoint in ``out``. Its CPU time is then the
    segments measured plus the steps done before, at this segment's pace (marked ``~``)."""
    resume = out if out.is_file() else None
    done_before = torch.load(out, map_location="cpu", weights_only=False)["step"] if resume else 0
    start = time.process_time()
    summary = train_masker(blackbox, train, out, config, val, resume=resume, progress=False, overwrite=True)
    cpu: float | str = time.process_time() - start
    if done_before and summary["steps"] > done_before:
        cpu = f"~{round(cpu * summary['steps'] / (summary['steps'] - done_before))}"
    chosen = best_path(out) if val and best_path(out).is_file() else out
    masker = load_masker(blackbox, chosen)
    measured = score(blackbox, masker, held_out, side)
    return [blackbox.name, summary["config"]["encoder"], len(train), summary["steps"],
            cpu if isinstance(cpu, str) else round(cpu), round(measured["loc_error"], 3),
            round(measured["saliency_metric"], 3), round(measured["mean_area"], 3)]


def relative(samples: list[Sample]) -> list[str]:
    """Each image by its path and a digest of its bytes: a changed file is a new key."""
    import hashlib

    def digest(path: str) -> str:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]

    return [f"{os.path.relpath(s.path, SHARED_DATA)}:{digest(s.path)}" for s in samples]


def cached_run(work: Path, key: dict, compute) -> list:
    """One table row, kept in ``work`` under a digest of everything that decides it (``key``: the
    classifier's weights, the recipe, the images' bytes): a rerun of the study picks up where it
    stopped, and a change of any of them is never read back."""
    import hashlib
    import json

    digest = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:16]
    path = work / f"row-{digest}.json"
    if path.is_file():
        return json.loads(path.read_text())["row"]
    row = compute(work / f"masker-{digest}.pt")
    work.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"key": key, "row": row}, default=str))
    return row


def synthetic(args, work: Path) -> list[Table]:
    from maskscope.data.synthetic import write_annotated_folder
    from maskscope.data.synthetic_models import load_synthetic_classifier
    from maskscope.data.synthetic_scenes import make_scenes

    blackbox = load_synthetic_classifier("clean")
    largest = max(args.sizes)
    train_all = read_folder(write_annotated_folder(make_scenes(largest, "clean", "train", 0), work / "train"))
    test = make_scenes(args.held_out, "clean", "test", 1)
    held_out = read_folder(write_annotated_folder(test, work / "test"))
    centre = score(blackbox, None, held_out, 64)
    rows = [[blackbox.name, "centre box", 0, 0, 0, round(centre["loc_error"], 3),
             round(centre["saliency_metric"], 3), round(centre["mean_area"], 3)]]
    for n in args.sizes:
        per_epoch = max(1, n // args.batch_size)
        config = TrainConfig(epochs=-(-args.steps // per_epoch),  # about --steps in all, whatever n
                             batch_size=args.batch_size, lr=args.lr, encoder=args.encoder, blocks=1,
                             augment=False, checkpoint_every=10**9, val_every=10**9, seed=args.seed)
        rows.append(run(blackbox, train_all[:n], None, held_out, work / f"m{n}.pt", config, 64))
        print(rows[-1], flush=True)
    caption = (f"Synthetic scenes (clean, 64 px): about {args.steps} steps of batch {args.batch_size}, "
               f"scored on {args.held_out} scenes of the test split; CPU seconds of training, one thread.")
    return [Table(COLUMNS, rows, caption)]


def imagenet(args, work: Path) -> list[Table]:
    from dataclasses import asdict

    sys.path.insert(0, str(ROOT / "scripts"))
    from train_masker import split3

    train, validation, held_out = split3(SHARED_DATA)
    sizes = [min(n, len(train)) for n in args.sizes] if args.sizes_given else [250, 500, 1000, len(train)]
    runs = [("efficientnet-lite0", n) for n in sizes]
    if not args.no_lite2:
        runs.append(("efficientnet-lite2", len(train)))
    caption = (f"ImageNet sample: trained on the first N training images ({args.epochs} epochs), best "
               "checkpoint chosen on the validation eighth, scored on the held-out quarter "
               f"({len(held_out)} images); CPU seconds of training, one thread.")
    centre = score(load_classifier("efficientnet-lite0", device=args.device), None, held_out, 224)
    rows = [["efficientnet-lite0", "centre box", 0, 0, 0, round(centre["loc_error"], 3),
             round(centre["saliency_metric"], 3), round(centre["mean_area"], 3)]]
    for name, n in runs:
        blackbox = load_classifier(name, device=args.device)
        side = blackbox.input_size[0]
        config = TrainConfig(epochs=args.epochs, batch_size=32, selector="auto", colour_jitter=0.1,
                             schedule="cosine", seed=args.seed, device=args.device)
        key = {"classifier": name, "weights": weights_digest(blackbox), "config": asdict(config),
               "train": relative(train[:n]),
               "validation": relative(validation), "held_out": relative(held_out)}
        rows.append(cached_run(work, key, partial(run, blackbox, train[:n], validation, held_out,
                                                  config=config, side=side)))
        print(rows[-1], flush=True)
        emit([Table(COLUMNS, rows, caption)], args.result)  # the rows so far survive a stop
    return [Table(COLUMNS, rows, caption)]


def main() -> None:
    p = parser(__doc__, "device", "result")
    p.add_argument("--suite", choices=["synthetic", "imagenet"], default="synthetic")
    p.add_argument("--sizes", default=None,
                   help="training set sizes (synthetic: 100,250,500,1000; imagenet: 250,500,1000,all)")
    p.add_argument("--no-lite2", action="store_true", help="imagenet: leave out the EfficientNet-Lite2 row")
    p.add_argument("--steps", type=int, default=300, help="training steps per run (synthetic)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--encoder", default="auto", help="auto | model | small (synthetic)")
    p.add_argument("--held-out", type=int, default=300, help="held-out scenes (synthetic)")
    p.add_argument("--epochs", type=int, default=10, help="epochs per run (imagenet)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--work", type=Path, default=ROOT / "out" / "masker_data_size",
                   help="imagenet: maskers and finished rows, keyed by content (a rerun resumes)")
    args = p.parse_args()
    args.sizes_given = args.sizes is not None
    args.sizes = [int(s) for s in (args.sizes or "100,250,500,1000").split(",")]
    torch.set_num_threads(1)
    if args.suite == "imagenet":
        imagenet(args, args.work)  # emits after every row
        return
    with tempfile.TemporaryDirectory() as tmp:
        tables = synthetic(args, Path(tmp))
    emit(tables, args.result)


if __name__ == "__main__":
    main()
