"""The part-saliency test's known answer (Fong & Vedaldi §5.4 on synthetic "parts" scenes).

Three classifiers over the same scenes, all from the shipped parts network: ``head`` and ``body``
read it as a classifier of one part (``load_part_classifier``: the other part's classes summed
out), ``both`` is the 4-class network itself. The ground truth is measured first: the mean
probability drop of each classifier's label when the head, or the body, is blurred away (part mask
dilated by 2 px, σ0 = 10 blur at 224 scaled to 64 px). Then each method's masks are tested, head
vs body, at the part centres (window 5 px at 224 → 1 px at 64).

``realtime`` first trains one small-encoder masker per classifier (the settings of
``realtime_synthetic.py``: no augmentation, area weight 5 for few classes) on ``--train-scenes``
training scenes of another split and seed than the test scenes, labelled with that classifier's
true part label; the checkpoints are cached in ``--out`` under a key of the classifier's weights
and every training setting, so a second run reuses them.

    OMP_NUM_THREADS=1 nice -n 15 python benchmarks/studies/parts_synthetic.py --scenes 32 --iterations 100
    OMP_NUM_THREADS=1 nice -n 15 python benchmarks/studies/parts_synthetic.py --methods realtime \
        --export benchmarks/results/parts_synthetic/realtime.md
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import torch
import torch.nn.functional as F

from maskscope.analysis.adversarial import explain, method_options
from maskscope.analysis.parts import compare_parts, window_side
from maskscope.data.synthetic import load_synthetic_classifier, make_scenes, write_annotated_folder
from maskscope.data.synthetic_models import load_part_classifier
from maskscope.methods.realtime import train_masker
from maskscope.methods.realtime.data import read_folder
from maskscope.methods.realtime.train import weights_digest
from maskscope.perturb import FixedBlur

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a file: import the harness
from benchmarks.harness import ROOT, Report, parser  # noqa: E402
from benchmarks.quality.realtime_synthetic import SYNTHETIC_AREA, synthetic_config  # noqa: E402

LABELS = {"head": lambda y: y // 2, "body": lambda y: y % 2, "both": lambda y: y}  # from the 4 parts classes
TRAIN_SEED = 21  # masker training scenes: train split, not the test scenes' seed


def classifiers(scenes):
    models = {"head": load_part_classifier("head"), "body": load_part_classifier("body"),
              "both": load_synthetic_classifier("parts")}
    return {name: (model, LABELS[name](scenes.labels)) for name, model in models.items()}


def scene_index(path: str) -> int:
    """The scene number in a written file name (``syn_parts_train_00042.png`` → 42)."""
    return int(Path(path).stem.rsplit("_", 1)[1])


def part_masker(name: str, model, out: Path, n_train: int, epochs: int) -> tuple[Path, float]:
    """A small-encoder masker for one classifier, trained once per content key; (path, minutes)."""
    config = synthetic_config(epochs, 64, 2e-3, SYNTHETIC_AREA, val_every=10**9)
    settings = {"classifier": weights_digest(model), "labels": name, "train_scenes": n_train,
                "train_seed": TRAIN_SEED, "config": asdict(config)}
    key = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:12]
    path = out / f"masker_{name}_{key}.pt"
    if path.is_file():
        return path, 0.0
    scenes = make_scenes(n_train, "parts", "train", seed=TRAIN_SEED)
    folder = write_annotated_folder(scenes, out / f"train_{TRAIN_SEED}_{n_train}")
    labels = LABELS[name](scenes.labels).tolist()
    samples = [replace(s, label=labels[scene_index(s.path)]) for s in read_folder(folder)]
    start = time.perf_counter()
    train_masker(model, samples, path, config, progress=False)
    (out / f"masker_{name}_{key}.json").write_text(json.dumps(settings, indent=1, default=str))
    return path, (time.perf_counter() - start) / 60


@torch.no_grad()
def part_drop(model, scenes, labels, part: int) -> float:
    """Mean drop of p(label) when one part (dilated 2 px) is blurred away."""
    region = F.max_pool2d(scenes.part_masks[:, part : part + 1].float(), 5, 1, 2)
    p0 = model(scenes.images).softmax(1).gather(1, labels[:, None])
    p = model(FixedBlur()(scenes.images, 1.0 - region)).softmax(1).gather(1, labels[:, None])
    return float((p0 - p).mean())


def main(argv: list[str] | None = None) -> int:
    ap = parser(__doc__, "result")
    ap.add_argument("--scenes", type=int, default=32)
    ap.add_argument("--iterations", type=int, default=100)
    ap.add_argument("--methods", default="meaningful,extremal")
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--train-scenes", type=int, default=3000, help="masker training scenes (realtime)")
    ap.add_argument("--epochs", type=int, default=6, help="masker training epochs (realtime)")
    ap.add_argument("--out", type=Path, default=ROOT / "out" / "parts_synthetic", help="masker cache")
    ap.add_argument("--export", default=str(ROOT / "benchmarks" / "results" / "parts_synthetic" / "table.md"))
    args = ap.parse_args(argv)
    printed = Report(args.result)
    scenes = make_scenes(args.scenes, "parts", "test", seed=args.seed)
    keypoints = [{"head": [tuple(c[0].tolist())], "body": [tuple(c[1].tolist())]}
                 for c in scenes.part_centres]
    rows = ["| classifier | ground truth: drop when head deleted | … body deleted | method | head | body "
            "| head − body | 95 % CI | p (paired t) | p (Wilcoxon) | s |",
            "|---|---|---|---|---|---|---|---|---|---|---|"]
    notes = []
    for name, (model, labels) in classifiers(scenes).items():
        drops = part_drop(model, scenes, labels, 0), part_drop(model, scenes, labels, 1)
        for method in [m for m in args.methods.split(",") if m]:
            extra = {}
            if method == "realtime":
                path, minutes = part_masker(name, model, args.out, args.train_scenes, args.epochs)
                digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
                notes.append(f"realtime/{name}: {path.name} (sha256 {digest}), "
                             + (f"trained in {minutes:.1f} min" if minutes else "cached"))
                extra = {"realtime": {"masker": str(path)}}
            start = time.perf_counter()
            masks, _ = explain(method, model, scenes.images, labels,
                               method_options(method, args.iterations, extra))
            t, _ = compare_parts(masks, keypoints, "head", "body")
            w = "–" if t.wilcoxon_p is None else f"{t.wilcoxon_p:.2g}"
            rows.append(f"| {name} | {drops[0]:.3f} | {drops[1]:.3f} | {method} | {t.mean_a:.3f} "
                        f"| {t.mean_b:.3f} | {t.mean_difference:+.3f} | [{t.ci_low:+.3f}, {t.ci_high:+.3f}] "
                        f"| {t.p_value:.2g} | {w} | {time.perf_counter() - start:.0f} |")
            printed.print(rows[-1], flush=True)
    head = (f"{args.scenes} test scenes (seed {args.seed}), 64 px, window {window_side((64, 64))} px, "
            f"{args.iterations} iterations (iterative methods); 1 = salient, > 0: head more salient\n\n")
    if notes:
        head += (f"maskers: small encoder, {args.train_scenes} training scenes (train split, seed "
                 f"{TRAIN_SEED}), {args.epochs} epochs, area weight {SYNTHETIC_AREA:g}, no augmentation\n\n"
                 + "".join(f"- {n}\n" for n in notes) + "\n")
    text = head + "\n".join(rows) + "\n"
    export = Path(args.export)
    export.parent.mkdir(parents=True, exist_ok=True)
    command = f"python benchmarks/studies/parts_synthetic.py {' '.join(argv or sys.argv[1:])}"
    export.write_text(f"{command}\n\n{text}")
    printed.print(text)
    printed.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
