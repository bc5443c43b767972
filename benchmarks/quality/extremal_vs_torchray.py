"""maskscope's extremal perturbations side by side with TorchRay's own ``extremal_perturbation``.

The same classifier (the embedded EfficientNet-Lite0), the same images (an ImageNet folder with
boxes, one split of ``data.folders.split``: ``tune`` to choose settings, ``report`` to report), the
same areas and game, in one process. Both sets of masks are judged by one independent scorer, not by
either optimiser's operator: the class probability's % drop when the salient region is deleted by
a plain σ = 10 px blur blend, (1 − s)·x + s·blur(x); pointing (the mask's maximum within 15 px of a
box); localisation error at 0.5 (the tightest box around mask ≥ 0.5, a hit at IoU > 0.5); the
share of the mask's mass inside the boxes (pointing's continuous cousin). With
several areas, pointing and localisation read each image's masks combined the paper's way
(``masks.combine_areas``), and a second pointing column reads each area's mask alone; drop and area
are per mask. Cost: seconds per mask and classifier
forward passes per mask (every forward of the optimisation is followed by a backward). The last
quality column is what ``maskscope evaluate`` reports as % drop: the combined mask deleted through
the blur pyramid. ``--references`` adds the centre box and Grad-CAM, judged the same way.

TorchRay is non-commercial and never a dependency: it is imported only here, from the folder given
by ``--torchray`` (an unpacked ``pip download torchray --no-deps``); without it that column is
skipped with one line.

    OMP_NUM_THREADS=1 python benchmarks/quality/extremal_vs_torchray.py --torchray /tmp/trpkg/src \\
        --split report --images 8 --areas 0.1 --game delete --result benchmarks/results/extremal_vs_torchray
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import itertools
import json
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import torch
from matplotlib.patches import Rectangle

from maskscope.boxes import box_to_mask, center_box, scale_box
from maskscope.data.folders import load_folder, select, split
from maskscope.images import load_image, resize_image, to_tensor
from maskscope.masks import combine_areas
from maskscope.methods import get_method
from maskscope.methods.extremal import ExtremalSettings, extremal_perturbation, extremal_settings
from maskscope.metrics.drop import probability_drop
from maskscope.metrics.localisation import localisation_correct
from maskscope.metrics.pointing import pointing_hit
from maskscope.perturb import gaussian_blur
from maskscope.storage import write_atomic
from maskscope.viz import new_figure
from maskscope.zoo import load_classifier

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a file: import the harness
from benchmarks.harness import SHARED_DATA, Report, markdown_table, parser  # noqa: E402

SIZE = (224, 224)
JUDGE_SIGMA = 10.0


def parse_value(text: str):
    """A ``--set`` value: an int, a float, true/false, None, else the text itself."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return {"true": True, "false": False, "None": None}.get(text, text)


def parse_sets(specs: list[str]) -> list[dict]:
    """One dict of keywords per ``--set`` (``;`` also separates variants; an empty one is {})."""
    out = []
    for spec in ";".join(specs).split(";"):
        options = {}
        for kv in filter(None, (s.strip() for s in spec.split(","))):
            k, v = kv.split("=", 1)
            options[k.strip()] = parse_value(v.strip())
        out.append(options)
    return out


def add_sample_arguments(p, images: int) -> None:
    """The images of a run: a folder with boxes, one side of its tune/report split, how many."""
    p.add_argument("--data", type=Path, default=SHARED_DATA / "imagenet-val-sample")
    p.add_argument("--split", choices=("tune", "report"), default="report")
    p.add_argument("--tune-fraction", type=float, default=0.3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--images", type=int, default=images)


def load_samples(root: Path, which: str, count: int, tune_fraction: float, seed: int):
    """(key, image (3, H, W), target, boxes at SIZE) for ``count`` images of one split."""
    dataset = load_folder(root, require_boxes=True)
    splits = split(dataset.items, tune_fraction, seed)
    items = select([it for it in dataset.items if splits[it.key] == which], count, seed)
    out = []
    for it in items:
        image = to_tensor(load_image(it.path))
        h, w = image.shape[-2:]
        boxes = [scale_box(b, (h, w), SIZE) for b in it.boxes]
        out.append((it.key, resize_image(image, SIZE), int(it.label), boxes))
    return out


class Counter:
    """Counts the images the classifier sees (a forward pre-hook, removed at the end)."""

    def __init__(self, model: torch.nn.Module):
        self.images = 0
        self.handle = model.register_forward_pre_hook(self.hook)

    def hook(self, _module, args):
        self.images += int(args[0].shape[0])


def run_maskscope(model, images, targets, areas, game, batch, options):
    """Masks (N, A, 1, H, W), seconds and forward images, one call per ``batch`` images."""
    masks = []
    for start in range(0, len(images), batch):
        x = images[start:start + batch]
        t = [int(c) for c in targets[start:start + batch]]
        e = extremal_perturbation(model, x, t, areas=areas, game=game, **options)
        masks.append(e.masks.detach().view(len(x), len(areas), 1, *SIZE))
    return torch.cat(masks)


def run_reference(model, images, targets, name: str):
    """The references every saliency method must beat, one mask per image (N, 1, 1, H, W): the
    centre box (half the image) and Grad-CAM (Captum, the last convolutional stage)."""
    if name == "centre box":
        return box_to_mask(center_box(*SIZE), SIZE, "cpu").expand(len(images), 1, 1, *SIZE).clone()
    t = torch.tensor([int(c) for c in targets])[:, None]
    return get_method("gradcam")(model, images, t).masks.detach().unsqueeze(1)


def import_torchray(path: str | None):
    if not path:
        return None
    sys.path.insert(0, path)
    try:
        return importlib.import_module("torchray.attribution.extremal_perturbation")
    except ImportError:
        return None


def run_torchray(module, model, images, targets, areas, game, iterations):
    """TorchRay one image at a time (its API), all areas of an image in one call; the model's
    ``requires_grad`` flags, which it turns off, are restored."""
    flags = [p.requires_grad for p in model.parameters()]
    masks = []
    try:
        for x, c in zip(images, targets):
            m, _ = module.extremal_perturbation(model, x[None], int(c), areas=list(areas), variant=game,
                                                max_iter=iterations)
            masks.append(m.detach().view(len(areas), 1, *SIZE))
    finally:
        for p, f in zip(model.parameters(), flags):
            p.requires_grad_(f)
    return torch.stack(masks)


def judged_drops(model, images, masks, targets) -> dict[str, torch.Tensor]:
    """% drop of the target probability when each (salient) mask is deleted, (N, A) per fill:
    blended with a σ = 10 px blur of the image (``blur``) or with the image's mean colour (``mean``)."""
    n, a = masks.shape[:2]
    x = images.repeat_interleave(a, 0)
    s = masks.reshape(n * a, 1, *SIZE)
    fills = {"blur": gaussian_blur(x, JUDGE_SIGMA), "mean": x.mean(dim=(2, 3), keepdim=True)}
    rows = torch.tensor(targets).repeat_interleave(a)[:, None]
    with torch.no_grad():
        p0 = model(x).softmax(1).gather(1, rows)[:, 0]
        out = {}
        for name, fill in fills.items():
            p1 = model((1 - s) * x + s * fill).softmax(1).gather(1, rows)[:, 0]
            out[name] = ((p0 - p1) / p0.clamp_min(1e-8) * 100).view(n, a)
    return out


def judge(model, images, masks, targets, boxes, areas):
    """Per-image judged numbers: drop and area per mask, pointing and localisation of the combined mask."""
    n, a = masks.shape[:2]
    index = torch.arange(n).repeat_interleave(a)
    combined = combine_areas(masks.reshape(n * a, 1, *SIZE), image_index=index) if a > 1 else masks[:, 0]
    drops = judged_drops(model, images, masks, targets)
    point = [pointing_hit(combined[i, 0], boxes[i]) for i in range(n)]
    each = torch.tensor([[pointing_hit(masks[i, k, 0], boxes[i]) for k in range(a)] for i in range(n)])
    loc = [localisation_correct(combined[i, 0], boxes[i], "fixed", 0.5) for i in range(n)]
    inside = [float((combined[i, 0] * box_region(boxes[i])).sum() / combined[i, 0].sum().clamp_min(1e-8))
              for i in range(n)]
    # what ``maskscope evaluate`` reports as % drop: the combined mask, through its own blur pyramid
    combined_drop = probability_drop(model, images, combined, torch.tensor(targets)[:, None], "blur")
    return {"drop": drops["blur"], "mean_colour": drops["mean"], "area": masks.flatten(2).mean(2),
            "point": point, "point_each": each, "loc": loc, "inside": inside, "combined_drop": combined_drop}


def combinations_table(model, images, masks, targets, boxes, areas, most: int = 3) -> list[list]:
    """Pointing and ``evaluate``'s % drop of the combined mask of every subset of up to ``most``
    areas (masks (N, A, 1, H, W) hold every area), under ``combine_areas``'s zero padding and under
    the edge replication it used before (``docs/methods/extremal.md`` finding 22)."""
    n = len(masks)
    t = torch.tensor(targets)[:, None]
    rows = []
    for size in range(1, min(most, len(areas)) + 1):
        for subset in itertools.combinations(range(len(areas)), size):
            m = masks[:, list(subset)]
            flat, index = m.reshape(-1, 1, *SIZE), torch.arange(n).repeat_interleave(size)
            zero = combine_areas(flat, image_index=index)
            replicate = combine_areas(flat, image_index=index, padding="replicate")
            hits = [sum(pointing_hit(c[i, 0], boxes[i]) for i in range(n)) for c in (zero, replicate)]
            drop = probability_drop(model, images, zero, t, "blur")
            rows.append([", ".join(f"{areas[k]:g}" for k in subset), f"{hits[0] * 100 / n:.0f}",
                         f"{hits[1] * 100 / n:.0f}", f"{drop.mean():.1f}", f"{zero.mean() * 100:.1f}"])
    return rows


def box_region(boxes) -> torch.Tensor:
    """(H, W) 1 inside any of the boxes (inclusive pixel coordinates at SIZE)."""
    region = torch.zeros(SIZE)
    for x0, y0, x1, y1 in boxes:
        region[int(y0):int(y1) + 1, int(x0):int(x1) + 1] = 1
    return region


def image_digest(image: torch.Tensor) -> str:
    """The image's pixels, so that a changed file under the same name is never read back."""
    return hashlib.sha256(image.contiguous().numpy().tobytes()).hexdigest()[:12]


def save_npz(path: Path, **arrays) -> None:
    """``np.savez_compressed`` through a temporary file: a run killed mid-write leaves no truncated
    cache entry for the next run to read back."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, lambda handle: np.savez_compressed(handle, **arrays))


def cached(folder: Path | None, label: str, samples: list, compute):
    """``compute()`` → (masks, seconds, forwards) of a chunk of samples, stored one file per image
    under ``folder/label/key-digest.npz`` when given (each with its share of the chunk's cost):
    keyed by the image's pixels as well as its name, so an edited file is computed afresh."""
    if folder is None:
        return compute()
    paths = [folder / label / f"{s[0]}-{image_digest(s[1])}.npz" for s in samples]
    if all(path.exists() for path in paths):
        stored = [np.load(path) for path in paths]
        # (A, 1, H, W) per image; a file written by a one-image chunk may hold (1, A, 1, H, W)
        return (torch.stack([torch.from_numpy(d["masks"]).reshape(-1, 1, *SIZE) for d in stored]),
                sum(float(d["seconds"]) for d in stored), round(sum(float(d["forwards"]) for d in stored)))
    masks, secs, fwd = compute()
    for path, m in zip(paths, masks):
        save_npz(path, masks=m.numpy().astype(np.float32), seconds=secs / len(paths),
                 forwards=fwd / len(paths))
    return masks, secs, fwd


def resolved(options: dict) -> dict:
    """Every extremal setting the ``options`` resolve to (the recipe's, overridden), and the rest."""
    names = {f.name for f in dataclasses.fields(ExtremalSettings)}
    settings = extremal_settings(options.get("recipe", "fast"),
                                 **{k: v for k, v in options.items() if k in names})
    return {**dataclasses.asdict(settings), **{k: v for k, v in options.items() if k not in names}}


def mask_figure(images, boxes, shown):
    """Rows = images (with their boxes), columns = each method's first mask."""
    fig = new_figure(figsize=(1.6 * (len(shown) + 1), 1.6 * len(images) + 0.3), layout="constrained")
    axes = fig.subplots(len(images), len(shown) + 1, squeeze=False)
    for r, image in enumerate(images):
        panels = [image.permute(1, 2, 0).numpy()] + [m[r, 0, 0].numpy() for _, m in shown]
        for c, panel in enumerate(panels):
            ax = axes[r][c]
            ax.imshow(panel, cmap=None if c == 0 else "gray", vmin=0, vmax=1)
            for x0, y0, x1, y1 in boxes[r]:
                ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, color="lime", lw=0.8))
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title("image" if c == 0 else textwrap.fill(shown[c - 1][0], 26), fontsize=5)
    return fig


def variants(args) -> list[dict]:
    """maskscope's settings to run: the recipe alone, or one variant per ``--set`` (';' also splits)."""
    if not args.set:
        return [{"recipe": args.recipe}]
    return [{"recipe": args.recipe, **options} for options in parse_sets(args.set)]


def measure(model, fn, samples, batch, folder, label):
    """All masks of one method (N, A, 1, H, W), its seconds and the images its classifier saw."""
    images = torch.stack([s[1] for s in samples])
    targets = [s[2] for s in samples]
    masks, seconds, forwards = [], 0.0, 0
    for start in range(0, len(samples), batch):
        chunk = slice(start, start + batch)

        def compute(chunk=chunk):
            counter = Counter(model)
            begin = time.perf_counter()
            try:
                out = fn(images[chunk], targets[chunk])
            finally:
                counter.handle.remove()
            return out, time.perf_counter() - begin, counter.images

        m, s, f = cached(folder, label, samples[chunk], compute)
        masks.append(m)
        seconds += s
        forwards += f
        print(f"  {label}: {start + len(m)}/{len(samples)} images, {s:.0f} s", file=sys.stderr, flush=True)
    return torch.cat(masks), seconds, forwards


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__, "result")
    add_sample_arguments(p, images=8)
    p.add_argument("--areas", default="0.1", help="comma-separated areas")
    p.add_argument("--game", choices=("preserve", "delete", "dual"), default="delete")
    p.add_argument("--batch", type=int, default=8, help="images per maskscope call")
    p.add_argument("--recipe", default="fast")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="a maskscope option (e.g. iterations=400); repeatable; ';' separates variants")
    p.add_argument("--torchray", default=None, help="folder holding TorchRay's unpacked source")
    p.add_argument("--torchray-iterations", type=int, default=800)
    p.add_argument("--cache", type=Path, default=None, help="keep each image's masks here (resumable)")
    p.add_argument("--figure", type=int, default=8, help="images in the figure of the masks (0: none)")
    p.add_argument("--references", action="store_true",
                   help="also judge the centre box and Grad-CAM (one mask per image, whatever the areas)")
    p.add_argument("--combinations", action="store_true",
                   help="also score the combined mask of every subset of up to 3 of the areas")
    p.add_argument("--torchray-only", action="store_true",
                   help="run TorchRay's column alone (e.g. to fill the cache in the background)")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    report = Report(args.result)
    areas = tuple(float(a) for a in args.areas.split(","))
    model = load_classifier("efficientnet-lite0")
    samples = load_samples(args.data, args.split, args.images, args.tune_fraction, args.seed)
    methods = []
    for options in [] if args.torchray_only else variants(args):
        name = "maskscope " + ", ".join(f"{k}={v}" for k, v in options.items())
        methods.append((name, args.batch, lambda x, t, o=options: run_maskscope(model, x, t, areas, args.game,
                                                                               args.batch, o),
                        resolved(options)))
    for ref in ("centre box", "Grad-CAM") if args.references else ():
        methods.append((ref, args.batch, lambda x, t, r=ref: run_reference(model, x, t, r), {}))
    module = import_torchray(args.torchray)
    if module is None:
        report.print("TorchRay skipped: not importable (give --torchray PATH to its unpacked source)")
    else:
        its = args.torchray_iterations
        methods.append((f"TorchRay extremal_perturbation, {its} its", 1,
                        lambda x, t: run_torchray(module, model, x, t, areas, args.game, its), {}))
    images = torch.stack([s[1] for s in samples])
    rows, shown, combos = [], [], []
    for name, batch, fn, content in methods:
        # the cache is keyed by what the masks depend on: the resolved settings, not the option text
        # alone, so a change of the defaults is not read back as the old masks
        key = [name, areas, args.game] + ([content] if content else [])
        label = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]
        masks, seconds, forwards = measure(model, fn, samples, batch, args.cache, label)
        shown.append((name, masks))
        j = judge(model, images, masks, [s[2] for s in samples], [s[3] for s in samples], areas)
        if args.combinations and name.startswith("maskscope") and masks.shape[1] == len(areas) > 1:
            combos += [[name, *row] for row in combinations_table(
                model, images, masks, [s[2] for s in samples], [s[3] for s in samples], areas)]
        count = masks.shape[0] * masks.shape[1]
        got = (", ".join(f"{a:g}→{j['area'][:, i].mean() * 100:.1f}" for i, a in enumerate(areas))
               if masks.shape[1] == len(areas) else f"–→{j['area'].mean() * 100:.1f}")
        hits = j["point_each"].float().mean(0) * 100
        each = (", ".join(f"{a:g}→{hits[i]:.0f}" for i, a in enumerate(areas))
                if masks.shape[1] == len(areas) > 1 else "–")
        rows.append([name, len(samples), f"{j['drop'].mean():.1f}", f"{j['mean_colour'].mean():.1f}",
                     f"{np.mean(j['point']) * 100:.0f}", each,
                     f"{(1 - np.mean(j['loc'])) * 100:.0f}", f"{np.mean(j['inside']) * 100:.0f}", got,
                     f"{j['combined_drop'].mean():.1f}", f"{seconds / count:.1f}", f"{forwards / count:.0f}"])
        per_image = ", ".join(f"{s[0][-5:]}:{'hit' if hit else 'miss'} {j['drop'][i].mean():+.0f}"
                              for i, (s, hit) in enumerate(zip(samples, j["point"])))
        print(f"  {name}: per image (pointing, then % drop) {per_image}", file=sys.stderr, flush=True)
    report.print(f"{args.split} split of {args.data.name} (tune fraction {args.tune_fraction}, "
                 f"seed {args.seed}), "
                 f"game {args.game}, areas {', '.join(f'{a:g}' for a in areas)}, EfficientNet-Lite0 at 224, "
                 f"judged by a σ = {JUDGE_SIGMA:g} px blur blend")
    report.print(markdown_table(["method", "images", "judged % drop", "% drop, mean colour", "pointing %",
                                 "pointing % of each area's mask",
                                 "loc. error @0.5 %",
                                 "mask mass in boxes %", "area requested→got %",
                                 "evaluate's % drop (combined mask)", "s / mask",
                                 "forwards / mask"], rows))
    if combos:
        report.print("\nThe combined mask of each subset of the areas (mean, smoothed σ = 5 px): pointing "
                     "with the world outside the image as mask 0 (now) and with the edge replicated "
                     "(before), and evaluate's % drop")
        report.print(markdown_table(["method", "areas", "pointing %", "pointing %, edge replicated",
                                     "evaluate's % drop", "mean mask %"], combos))
    if args.result is not None and args.figure > 0:
        path = args.result.parent / f"{args.result.name}.png"
        mask_figure(images[:args.figure], [s[3] for s in samples[:args.figure]], shown).savefig(path, dpi=80)
        report.print(f"figure: {path}")
    report.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
