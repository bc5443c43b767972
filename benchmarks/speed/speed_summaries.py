"""Time per stage of the visual summaries for 20 and 50 images, and how it grows.

    .venv/bin/python benchmarks/speed/speed_summaries.py [--data ../shared/data/imagenet-val-sample]

Stages: crisp masks (timed on one batch with few iterations and reported per image at the paper's
300 + 150 iterations: the full run takes hours on a CPU), selective-search proposals (500 per
image), HOG features + whitening, LOM over *all* proposals of *all* image pairs (``match_confidences``:
every proposal of every pair, not only the salient ones), and clustering (pruning, correspondence
matrix over salient proposals, affinity propagation, SSIM). The regions come from crisp masks
cached by earlier ``maskscope summarize`` runs (``--mask-cache DIR ...``, their ``masks/``
folders); without them the annotated object boxes stand in (much larger than crisp regions, so
many more proposals are kept and clustering is far slower than on real masks).

    .venv/bin/python benchmarks/speed/speed_summaries.py --mask-cache runs/dogs/masks runs/birds/masks
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from maskscope.images import grey, load_image
from maskscope.methods.crisp import crisp_mask
from maskscope.summaries.cluster import affinity_clusters, prune_proposals, ssim_filter
from maskscope.summaries.flow import (
    ImageProposals,
    Whitening,
    correspondence_matrix,
    crop_patches,
    match_confidences,
    proposal_features,
)
from maskscope.summaries.masks import WORK_SIZE, load_work_images, to_work_image
from maskscope.summaries.pipeline import limited_threads
from maskscope.summaries.proposals import selective_search
from maskscope.summaries.regions import find_regions
from maskscope.zoo import load_classifier

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a file: import the harness
from benchmarks.harness import SHARED_DATA, Report  # noqa: E402
from benchmarks.harness import parser as make_parser

DEFAULT_DATA = SHARED_DATA / "imagenet-val-sample"


def cached_stem(npy: Path) -> str:
    """The image stem of a cached crisp mask: from its sidecar's source file (entries are named
    ``<stem>-<content hash>-<target>``), else the file's own stem (caches of older versions)."""
    try:
        return Path(json.loads(npy.with_suffix(".json").read_text())["file"]).stem
    except (OSError, ValueError, KeyError, TypeError):
        return npy.stem


def box_masks(records: list[dict], size: tuple[int, int]) -> np.ndarray:
    """Filled annotated boxes, rescaled to the working size: the stand-in regions."""
    out = np.zeros((len(records), *size), np.float32)
    for i, rec in enumerate(records):
        sy, sx = size[0] / rec["height"], size[1] / rec["width"]
        for x0, y0, x1, y1 in rec["boxes"]:
            out[i, int(y0 * sy) : int(y1 * sy) + 1, int(x0 * sx) : int(x1 * sx) + 1] = 1
    return out


def time_masks(paths: list[Path], targets: list[int], iterations: int, crisp: int) -> float:
    """Seconds per image for the full 300 + 150 schedule, extrapolated from a short run of 8."""
    bb = load_classifier()
    x = load_work_images(paths[:8])
    t = time.perf_counter()
    crisp_mask(bb, x, target=torch.tensor(targets[:8]), iterations=iterations, crisp_iterations=crisp)
    per_iteration = (time.perf_counter() - t) / (iterations + crisp) / len(x)
    return per_iteration * 450


def run(n: int, images: list[np.ndarray], masks: np.ndarray) -> dict[str, float]:
    images, masks = images[:n], masks[:n]
    times: dict[str, float] = {}
    t = time.perf_counter()
    boxes = [selective_search(im, count=500) for im in images]
    times["proposals"] = time.perf_counter() - t
    t = time.perf_counter()
    raw = [proposal_features(im, b) for im, b in zip(images, boxes)]
    white = Whitening.fit(np.concatenate(raw))
    flow_in = [ImageProposals.build(b, white(f)) for b, f in zip(boxes, raw)]
    times["features"] = time.perf_counter() - t
    t = time.perf_counter()
    match_confidences(flow_in, progress=False)
    times["lom_all_pairs"] = time.perf_counter() - t
    t = time.perf_counter()
    regions = [find_regions(m, closing=5) for m in masks]
    pruned = [prune_proposals(b, r) for b, r in zip(boxes, regions)]
    kept = [k for k, _ in pruned]
    corr, owner = correspondence_matrix(flow_in, kept, progress=False)
    labels, _ = affinity_clusters(corr, owner)
    patches = np.concatenate([crop_patches(grey(im), b[k], size=48, pad=0.0).numpy()
                              for im, b, k in zip(images, boxes, kept) if len(k)])
    clusters, _ = ssim_filter(labels, owner.numpy(), patches, corr)
    times["clustering"] = time.perf_counter() - t
    times["proposals_per_image"] = float(np.mean([len(b) for b in boxes]))
    times["salient_proposals"] = float(sum(len(k) for k in kept))
    times["summaries"] = float(sum(c.kept for c in clusters))
    return times


def main() -> None:
    parser = make_parser(__doc__, "result")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--sizes", default="20,50")
    parser.add_argument("--mask-iterations", type=int, default=4, help="short crisp run timing the masks")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--mask-cache", type=Path, nargs="*", default=[],
                        help="masks/ folders of earlier summarize runs: their images are used first")
    args = parser.parse_args()
    printed = Report(args.result)
    ann = json.loads((args.data / "annotations.json").read_text())
    sizes = [int(s) for s in args.sizes.split(",")]
    cached = {cached_stem(p): p for d in args.mask_cache for p in sorted(d.glob("*.npy"))}
    names = [f for f in sorted(ann) if Path(f).stem in cached]
    names += sorted(f for f, r in ann.items() if 151 <= r["class_index"] <= 268 and f not in names)  # dogs
    names = names[: max(sizes)]
    paths = [args.data / "images" / f for f in names]
    images = [to_work_image(load_image(p)) for p in paths]
    boxes = box_masks([ann[f] for f in names], WORK_SIZE)
    masks = np.stack([np.load(cached[Path(f).stem]) if Path(f).stem in cached else boxes[i]
                      for i, f in enumerate(names)])
    n_cached = sum(Path(f).stem in cached for f in names)
    printed.print(f"{n_cached} of {len(names)} images with cached crisp masks")
    torch.set_num_threads(args.threads)
    with limited_threads(args.threads):
        per_image = time_masks(paths, [ann[f]["class_index"] for f in names], args.mask_iterations,
                               args.mask_iterations)
        results = {n: run(n, images, masks) for n in sizes}
    printed.print(f"threads {args.threads}; crisp masks (300 + 150 iterations): {per_image:.1f} s per image "
                  f"(extrapolated from {2 * args.mask_iterations} iterations on a batch of 8)")
    stages = ["proposals", "features", "lom_all_pairs", "clustering"]
    header = f"{'images':>6} {'masks*':>8} " + " ".join(f"{s:>14}" for s in stages)
    printed.print(header + f" {'pairs':>6} {'summaries':>9}")
    for n, r in results.items():
        printed.print(f"{n:>6} {per_image * n:>8.0f} " + " ".join(f"{r[s]:>14.1f}" for s in stages)
                      + f" {n * (n - 1) // 2:>6} {int(r['summaries']):>9}")
    if len(sizes) >= 2:
        a, b = sizes[0], sizes[-1]
        pairs = b * (b - 1) / (a * (a - 1))
        printed.print(f"growth {a} → {b} images (pairs ×{pairs:.2f}, images ×{b / a:.2f}):")
        for s in stages:
            printed.print(f"  {s:>14}: ×{results[b][s] / max(results[a][s], 1e-9):.2f}")
    last = results[sizes[-1]]
    printed.print(f"LOM over {sizes[-1]} images × ≤500 proposals: {last['lom_all_pairs']:.0f} s "
                  f"({last['proposals_per_image']:.0f} proposals per image on average)")
    printed.close()


if __name__ == "__main__":
    main()
