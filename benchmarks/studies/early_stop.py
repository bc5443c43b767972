"""Per-image early stopping vs the fixed schedule on held-out ImageNet images: passes and quality.

Runs ``maskscope.evaluate`` (meaningful, default preset) twice on the same nested random subset of
the shared validation sample: with ``early_stop=False`` (every image 300 iterations) and with the
default rule (``optimise.EarlyStop``). Prints mean iterations (= classifier forward+backward
passes) per mask, the method's own seconds, and the quality columns side by side (localisation
error with thresholds tuned on the held-out split, Dabkowski's saliency metric, Godi's % drop,
area), then paired per-image differences, which are far less noisy than the split-level numbers.

    python benchmarks/studies/early_stop.py --limit 24 [--fixed-cache /path/to/cache/meaningful]

``--fixed-cache`` adopts fixed-schedule masks already computed by an earlier
``maskscope evaluate`` of the same data and default settings (its ``settings.json`` must say so),
instead of recomputing 300 iterations per image on a busy CPU; only the images of this subset
are copied, with the scores stored beside them (computed by the same metric code).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np
from scipy import stats

from maskscope.data.folders import load_folder
from maskscope.evaluate import EvalConfig, evaluate_folder
from maskscope.zoo import load_classifier

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a file: import the harness
from benchmarks.harness import ROOT, SHARED_DATA, Report, parser  # noqa: E402

DEFAULT_DATA = SHARED_DATA / "imagenet-val-sample"



def adopt_fixed(source: Path, target: Path, keys: list[str]) -> int:
    """Copy the subset's entries of an earlier fixed-schedule cache; returns how many were copied."""
    stored = json.loads((source / "settings.json").read_text())
    if (stored.get("options") not in ({}, {"early_stop": False}) or stored.get("method") != "meaningful"
            or stored.get("schedule", "fixed") != "fixed"):
        sys.exit(f"{source} was made with other options ({stored.get('options')}); not adopting it")
    target.mkdir(parents=True, exist_ok=True)
    copied = 0
    for key in keys:
        for suffix in (".npy", ".json"):
            if (source / f"{key}{suffix}").exists() and not (target / f"{key}{suffix}").exists():
                shutil.copy2(source / f"{key}{suffix}", target / f"{key}{suffix}")
                copied += suffix == ".json"
    return copied


def run(data: Path, out: Path, limit: int, batch: int, early_stop: bool | dict) -> tuple[dict, dict, float]:
    # both schedules said explicitly (early stopping is meaningful's default since this measurement)
    options = {"meaningful": {"early_stop": early_stop}}
    config = EvalConfig(methods=["meaningful"], batch_size=batch, limit=limit, references=False,
                        progress=False, options=options)
    start = time.perf_counter()
    evaluate_folder(load_folder(data), load_classifier(), out, config, examples=0)
    seconds = time.perf_counter() - start
    details = json.loads((out / "details.json").read_text())
    return details["metrics"]["meaningful"], details["info"], seconds


def main() -> None:
    p = parser(__doc__, "result")
    p.add_argument("--data", default=str(DEFAULT_DATA))
    p.add_argument("--limit", type=int, default=24)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--out", default=str(ROOT / "out" / "early_stop"))
    p.add_argument("--fixed-cache", default=None, help="adopt fixed-schedule masks from this cache folder")
    p.add_argument("--rule", default=None, help='early-stopping rule fields as JSON, e.g. {"window": 50} '
                   "(default: the library's default rule)")
    args = p.parse_args()
    printed = Report(args.result)
    out = Path(args.out)
    data = Path(args.data)
    results = {}
    load_before = os.getloadavg()
    rule = json.loads(args.rule) if args.rule else True
    for name, early in (("fixed", False), ("early-stop", rule)):
        if not early and args.fixed_cache:
            from maskscope.data.folders import select

            keys = [it.key for it in select(load_folder(data).items, args.limit, 0)]
            adopted = adopt_fixed(Path(args.fixed_cache), out / name / "cache" / "meaningful", keys)
            printed.print(f"adopted {adopted} fixed-schedule masks from {args.fixed_cache}", flush=True)
        results[name] = run(data, out / name, args.limit, args.batch_size, early)
        printed.print(f"{name}: done in {results[name][2]:.0f} s", flush=True)
    load_after = os.getloadavg()

    rows = []
    for name, (metrics, info, _seconds) in results.items():
        loc = metrics["localisation"]
        rows.append([name, info["report_images"], f"{metrics.get('iterations_used') or 300:.0f}",
                     f"{info['method_seconds_now']['meaningful']:.0f}", info["computed_now"]["meaningful"],
                     *(f"{100 * loc[m]['error']:.1f}" for m in ("value", "energy", "mean", "fixed@0.5")),
                     f"{metrics['saliency']:.3f}", f"{metrics['drop']:.1f}", f"{metrics['area']:.3f}"])
    header = ["schedule", "report images", "iterations/mask", "method s (this run)", "masks computed now",
              "loc. err. value*", "energy*", "mean*", "@0.5", "saliency ↓", "% drop ↑", "area"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]

    # paired, per image (all images of the subset, tune and report)
    fixed_dir, early_dir = out / "fixed" / "cache" / "meaningful", out / "early-stop" / "cache" / "meaningful"
    diffs = {k: [] for k in ("saliency", "drop", "area", "mask")}
    used = []
    for meta in sorted(early_dir.glob("*.json")):
        if meta.name == "settings.json" or not (fixed_dir / meta.name).exists():
            continue
        a, b = json.loads((fixed_dir / meta.name).read_text()), json.loads(meta.read_text())
        for k in ("saliency", "drop", "area"):
            diffs[k].append(b[k] - a[k])
        ma, mb = np.load(fixed_dir / f"{meta.stem}.npy"), np.load(early_dir / f"{meta.stem}.npy")
        diffs["mask"].append(float(np.abs(ma.astype(np.float32) - mb.astype(np.float32)).mean()))
        used.append(b.get("iterations_used", 300))
    n = len(used)
    # the saliency metric is a log ratio: a few crops the classifier rejects dominate its mean, so the
    # median, the signs and a Wilcoxon signed-rank test say whether the typical mask changed
    sal = np.asarray(diffs["saliency"])
    wilcoxon = stats.wilcoxon(sal).pvalue if n > 1 and np.any(sal != 0) else float("nan")
    paired = [
        f"saliency, paired: mean {sal.mean():+.4f} ± {sal.std(ddof=1) / np.sqrt(n):.4f} (standard error), "
        f"median {np.median(sal):+.4f}, early-stop worse on {(sal > 0.01).sum()} images and better on "
        f"{(sal < -0.01).sum()} (|Δ| > 0.01), Wilcoxon signed-rank p = {wilcoxon:.2f}",

        f"paired over {n} images (early − fixed): saliency {np.mean(diffs['saliency']):+.4f} "
        f"(sd {np.std(diffs['saliency']):.4f}), % drop {np.mean(diffs['drop']):+.2f} "
        f"(sd {np.std(diffs['drop']):.2f}), area {np.mean(diffs['area']):+.4f}, "
        f"mean |Δmask| per pixel {np.mean(diffs['mask']):.4f} (max {np.max(diffs['mask']):.4f}); "
        f"iterations per mask {np.mean(used):.0f} (min {np.min(used)}, max {np.max(used)}) = "
        f"{np.mean(used) / 300:.2f}× the fixed schedule's 300",
        f"load average (1/5/15 min) at start {load_before[0]:.1f}/{load_before[1]:.1f}/{load_before[2]:.1f}, "
        f"at end {load_after[0]:.1f}/{load_after[1]:.1f}/{load_after[2]:.1f} on {os.cpu_count()} cores",
    ]
    text = "\n".join(lines + [""] + paired)
    printed.print(text)
    (out / "early_stop.md").write_text(text + "\n")
    figure(data, fixed_dir, early_dir, out / "early_stop_masks.png")
    printed.print(f"figure: {out / 'early_stop_masks.png'}")
    printed.close()


def figure(data: Path, fixed_dir: Path, early_dir: Path, path: Path, count: int = 6) -> None:
    """Image, fixed-schedule mask, early-stopped mask for the images whose paired saliency metric
    moved most either way (half worse, half better): what the numbers mean, to look at."""
    from maskscope.images import load_batch, to_numpy_image
    from maskscope.viz import new_figure

    moved = []
    for meta in sorted(early_dir.glob("*.json")):
        if meta.name != "settings.json" and (fixed_dir / meta.name).exists():
            a, b = json.loads((fixed_dir / meta.name).read_text()), json.loads(meta.read_text())
            moved.append((b["saliency"] - a["saliency"], meta.stem, b.get("iterations_used", 300)))
    moved.sort()
    shown = moved[-(count // 2):][::-1] + moved[: count // 2]
    paths = {it.key: it.path for it in load_folder(data).items}
    fig = new_figure(figsize=(6.6, 2.2 * len(shown)))
    axes = fig.subplots(len(shown), 3, squeeze=False)
    for row, (delta, key, used) in zip(axes, shown):
        row[0].imshow(to_numpy_image(load_batch([paths[key]], (224, 224))[0]))
        row[0].set_title(f"{key[-8:]}: Δ saliency {delta:+.2f}", fontsize=8)
        columns = ((row[1], fixed_dir, "fixed, 300 its"), (row[2], early_dir, f"early, {used:.0f} its"))
        for ax, folder, title in columns:
            ax.imshow(np.load(folder / f"{key}.npy").astype(np.float32), cmap="jet", vmin=0, vmax=1)
            ax.set_title(title, fontsize=8)
    for ax in axes.flat:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=80)


if __name__ == "__main__":
    main()
