"""Does the masker read its class selector? (Dabkowski & Gal §4.1: a fake selector must give an
empty mask.)

1. A two-class picture made of two held-out ImageNet val images (never trained on): a Samoyed on the
   left, a tiger cat on the right, each cropped around its annotated box. The masker's mask for the
   dog class, the cat class and a class absent from both (school bus). Figure:
   docs/realtime/selector_two_classes.png (one row per masker file given).
2. The demo photo ``chelsea`` (a tabby cat): mask area for ``tabby`` vs ``school bus``.

Run (one thread, ~1 min):
    OMP_NUM_THREADS=1 python benchmarks/quality/masker_selector.py --masker OLD.pt --masker NEW.pt
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import matplotlib

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a file: import the harness
from benchmarks.harness import SHARED_DATA, Report, demo_batch, markdown_table, parser  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from maskscope.images import load_image, resize_image, to_tensor  # noqa: E402
from maskscope.methods.realtime import load_masker  # noqa: E402
from maskscope.methods.realtime.validate import predict_masks  # noqa: E402
from maskscope.zoo import load_classifier  # noqa: E402

DOG, CAT, ABSENT = 258, 282, 779  # Samoyed, tiger cat, school bus
TABBY = 281
VAL = SHARED_DATA / "imagenet-val-sample"
PICTURES = {"ILSVRC2012_val_00033280.JPEG": DOG, "ILSVRC2012_val_00000796.JPEG": CAT}  # both held out


def half_crop(path: Path, box: list[float]) -> torch.Tensor:
    """The 224 × 112 (H × W) crop of the image around ``box``, as large as the image allows."""
    image = to_tensor(load_image(path))
    h, w = image.shape[-2:]
    x0, y0, x1, y1 = box
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    side_h = min(h, 2 * w, max(y1 - y0, 2 * (x1 - x0)))
    side_w = side_h / 2
    left = int(min(max(0, cx - side_w / 2), w - side_w))
    top = int(min(max(0, cy - side_h / 2), h - side_h))
    crop = image[:, top : top + int(side_h), left : left + int(side_w)]
    return resize_image(crop, (224, 112))


def two_class_picture(folder: Path) -> torch.Tensor:
    notes = json.loads((folder / "annotations.json").read_text())
    halves = [half_crop(folder / "images" / name, notes[name]["boxes"][0]) for name in PICTURES]
    return torch.cat(halves, dim=-1)[None]


def demo_figure(blackbox, masker, names: list[str], photos: torch.Tensor, path: Path) -> None:
    """Each demo photo over its mask for the classifier's top-1 class (mask ≥ 0.5 outlined)."""
    with torch.no_grad():
        top1 = blackbox(photos).argmax(1)
    masks = predict_masks(masker, photos, top1)
    fig, axes = plt.subplots(2, len(names), figsize=(2.4 * len(names), 5))
    for i, name in enumerate(names):
        axes[0, i].imshow(photos[i].permute(1, 2, 0).numpy())
        axes[0, i].set_title(f"{name}: {blackbox.class_name(int(top1[i]))}", fontsize=8)
        axes[1, i].imshow(masks[i, 0].numpy(), cmap="magma", vmin=0, vmax=1)
        axes[1, i].contour(masks[i, 0].numpy(), levels=[0.5], colors="cyan", linewidths=0.8)
        axes[1, i].set_title(f"area {float(masks[i].mean()):.2f}", fontsize=8)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    print(f"demo figure: {path}")


def main() -> int:
    p = parser(__doc__, "result")
    p.add_argument("--masker", action="append", type=Path, required=True, help="masker file (repeatable)")
    p.add_argument("--data", type=Path, default=VAL)
    p.add_argument("--figure", type=Path, default=Path("docs/realtime/selector_two_classes.png"))
    p.add_argument("--demo-figure", type=Path, default=Path("docs/realtime/shipped_masker_demo.png"),
                   help="the demo photos with the last --masker's mask for their top-1 class")
    args = p.parse_args()
    printed = Report(args.result)
    torch.set_num_threads(1)
    blackbox = load_classifier()
    picture = two_class_picture(args.data)
    names, photos = demo_batch()
    chelsea = photos[names.index("chelsea")][None]
    classes = [DOG, CAT, ABSENT]
    fig, axes = plt.subplots(len(args.masker), 4, figsize=(12, 3.2 * len(args.masker)), squeeze=False)
    rows = []
    for r, path in enumerate(args.masker):
        masker = load_masker(blackbox, path)
        masks = predict_masks(masker, picture.expand(3, -1, -1, -1), torch.tensor(classes))
        cat_photo = predict_masks(masker, chelsea.expand(2, -1, -1, -1), torch.tensor([TABBY, ABSENT]))
        areas = [float(m.mean()) for m in masks]
        left = [float(m[..., :112].sum() / m.sum().clamp_min(1e-9)) for m in masks]  # share on the dog's half
        shares = (f"{a:.3f} ({100 * lf:.0f} % on the dog's half)" for a, lf in zip(areas, left))
        rows.append([path.name, *shares,
                     f"{areas[0] / max(areas[2], 1e-9):.1f}× / {areas[1] / max(areas[2], 1e-9):.1f}×",
                     f"{float(cat_photo[0].mean()):.3f} / {float(cat_photo[1].mean()):.3f} "
                     f"({float(cat_photo[0].mean()) / max(float(cat_photo[1].mean()), 1e-9):.1f}×)"])
        axes[r, 0].imshow(picture[0].permute(1, 2, 0).numpy())
        axes[r, 0].set_title("held-out Samoyed | tiger cat")
        axes[r, 0].set_ylabel(path.name)
        for c, (cls, mask) in enumerate(zip(classes, masks), start=1):
            axes[r, c].imshow(mask[0].numpy(), cmap="magma", vmin=0, vmax=1)
            axes[r, c].set_title(f"selector: {blackbox.class_name(cls)} (area {areas[c - 1]:.2f})")
        for ax in axes[r]:
            ax.set_xticks([])
            ax.set_yticks([])
    fig.tight_layout()
    args.figure.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.figure, dpi=90)
    demo_figure(blackbox, load_masker(blackbox, args.masker[-1]), names, photos, args.demo_figure)
    printed.print(markdown_table(
        ["masker", "area: Samoyed", "area: tiger cat", "area: school bus (absent)",
         "dog / cat area over absent", "chelsea: tabby / school bus"], rows))
    printed.print(f"\nfigure: {args.figure}")
    printed.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
