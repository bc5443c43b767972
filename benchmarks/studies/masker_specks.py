"""Where do the masker's specks come from, and do they matter?

For each mask: the 8-connected components of mask ≥ 0.5; the largest is the object, the others are
specks. Per masker file: how many masks have specks, their median size, how many touch the image
border, and how open the feature filter's class gate σ(·) is under them (upsampled from the 7×7
deepest map) against under the object and over the whole image — a gate that is as open on the
specks as elsewhere means the selector does not suppress them. Then the localisation error of the
tightest box around all of mask ≥ 0.5 vs around its largest component only: what removing the
specks (a post-processing allowed only as a last resort) would change.

    OMP_NUM_THREADS=1 python benchmarks/studies/masker_specks.py OLD.pt NEW.pt [--split validation]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a file: import the harness
from benchmarks.harness import ROOT, SHARED_DATA, Report, parser  # noqa: E402

sys.path.insert(0, str(ROOT / "scripts"))
from train_masker import split3  # noqa: E402

from maskscope.boxes import scale_box  # noqa: E402
from maskscope.methods.realtime import load_masker  # noqa: E402
from maskscope.methods.realtime.data import load_pixels  # noqa: E402
from maskscope.metrics.localisation import LocalisationError  # noqa: E402
from maskscope.zoo import load_classifier  # noqa: E402

EIGHT = np.ones((3, 3))


def speck_stats(masker, pixels: torch.Tensor, labels: torch.Tensor):
    """(statistics, masks, masks with only their largest component kept)."""
    rows, masks_all, largest_all = [], [], []
    with torch.no_grad():
        for i in range(0, len(labels), 32):
            x = pixels[i : i + 32].float() / 255
            features = masker.encode(x)
            masks, _ = masker(x, labels[i : i + 32], features=features)
            gate = torch.sigmoid(masker.decoder.filter.attention_logits(features[-1], labels[i : i + 32]))
            gate = F.interpolate(gate, size=x.shape[-2:], mode="bilinear", align_corners=False)
            largest = masks.clone()
            for j, (m, g) in enumerate(zip(masks[:, 0].numpy(), gate[:, 0].numpy())):
                lab, n = ndimage.label(m >= 0.5, structure=EIGHT)
                if n == 0:
                    rows.append({"n": 0})
                    continue
                sizes = np.bincount(lab.ravel())[1:]
                big = int(sizes.argmax()) + 1
                specks = [k for k in range(1, n + 1) if k != big]
                edge = np.zeros_like(m, dtype=bool)
                edge[0], edge[-1], edge[:, 0], edge[:, -1] = True, True, True, True
                rows.append({"n": n, "object_gate": float(g[lab == big].mean()),
                             "image_gate": float(g.mean()),
                             "speck_gate": [float(g[lab == k].mean()) for k in specks],
                             "speck_border": [bool((edge & (lab == k)).any()) for k in specks],
                             "speck_px": [int(sizes[k - 1]) for k in specks]})
                largest[j, 0][torch.from_numpy((lab != big) & (lab > 0))] = 0
            masks_all.append(masks)
            largest_all.append(largest)
    specks = [speck for r in rows if r["n"] > 1
              for speck in zip(r["speck_gate"], r["speck_border"], r["speck_px"])]
    found = [r for r in rows if r["n"]]
    stats = {
        "images": len(rows),
        "masks_with_specks": sum(r["n"] > 1 for r in rows) / len(rows),
        "specks_per_image": len(specks) / len(rows),
        "specks_touching_border": float(np.mean([b for _, b, _ in specks])) if specks else 0.0,
        "median_speck_px": float(np.median([p for *_, p in specks])) if specks else 0.0,
        "gate_under_object": float(np.mean([r["object_gate"] for r in found])),
        "gate_under_specks": float(np.mean([g for g, *_ in specks])) if specks else None,
        "gate_whole_image": float(np.mean([r["image_gate"] for r in found])),
    }
    return stats, torch.cat(masks_all), torch.cat(largest_all)


def main() -> int:
    p = parser(__doc__, "result")
    p.add_argument("maskers", nargs="+", type=Path)
    p.add_argument("--data-root", type=Path, default=SHARED_DATA)
    p.add_argument("--split", choices=("held-out", "validation"), default="held-out")
    args = p.parse_args()
    printed = Report(args.result)
    torch.set_num_threads(1)
    blackbox = load_classifier()
    _, validation, held_out = split3(args.data_root)
    samples = held_out if args.split == "held-out" else validation
    pixels, kept = load_pixels(samples, 224, progress=False)
    labels = torch.tensor([s.label for s in kept])
    boxes = [[scale_box(b, s.size, (224, 224)) for b in s.boxes] for s in kept]
    report = {"split": args.split}
    for path in args.maskers:
        stats, masks, largest = speck_stats(load_masker(blackbox, path), pixels, labels)
        for name, m in (("loc_error_all", masks), ("loc_error_largest_component", largest)):
            loc = LocalisationError(mode="fixed", alpha=0.5)
            loc.update(m, boxes)
            stats[name] = loc.compute()
        report[path.name] = stats
    printed.print(json.dumps(report, indent=1))
    printed.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
