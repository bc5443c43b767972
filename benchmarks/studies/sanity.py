"""Do the methods pass Adebayo et al.'s (2018) sanity check on EfficientNet-Lite0?

The classifier's weights are re-drawn from the output down, cascading, on a copy
(``maskscope.analysis.sanity``); at each stage every shipped method explains the same ImageNet
val-sample images for the trained model's top-1 classes, and its masks are compared with its masks
of the trained model (Spearman rank correlation and SSIM, 1 = unchanged). A method passes when,
with every weight re-drawn, both mean similarities are below 0.5; the centre box, which never looks
at the model, is the reference that must fail. ``gradient-signed`` is the paper's variant without
absolute values: the signed input gradient summed over colours, mapped to [0, 1] with 0.5 = 0
(``gradient`` is the |·| variant).

The iterative methods run a short schedule to fit one CPU (``--iterations``, default 20; occlusion
a 56 px window at stride 28, RISE 64 masks): their masks are those of few iterations, and
each stage's are compared with the same short schedule's on the trained model.

    OMP_NUM_THREADS=1 python benchmarks/studies/sanity.py --images 4 --stages 5 \\
        --result benchmarks/results/sanity/sanity

With RISE among the methods it also reports how closely RISE's maps follow the coverage Σ M of its
own random masks (what RISE returns for a model whose score ignores the image), e.g.
``--methods rise --images 2 --stages 2 --rise-masks 256 --result benchmarks/results/sanity/rise_256``.
``--from-scores PATH`` prints the tables (and redraws the score plot) of a saved ``*_scores.json``.
"""

from __future__ import annotations

import json
import math
import random
import sys
import time
from pathlib import Path

import torch

import maskscope as ms
from maskscope.analysis.sanity import sanity_check, sanity_figure, sanity_plot
from maskscope.methods import register_method, unregister_method
from maskscope.metrics.sanity import SanityResult, rank_correlation

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a file: import the harness
from benchmarks.harness import SHARED_DATA, Report, command_line, markdown_table, parser  # noqa: E402

DATA = SHARED_DATA / "imagenet-val-sample"
METHODS = ("meaningful", "crisp", "extremal", "realtime", "gradient", "gradient-signed", "guided-backprop",
           "gradcam", "occlusion", "rise", "center")
PASS_BELOW = 0.5


def signed_gradient(model, images: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """∂ logit / ∂ pixel summed over colours, as (g / max |g| + 1) / 2: 0.5 is no gradient."""
    x = images.detach().clone().requires_grad_(True)
    score = model(x).gather(1, target.view(-1, 1)).sum()
    (grad,) = torch.autograd.grad(score, x)
    g = grad.sum(1, keepdim=True)
    return (g / g.flatten(1).abs().amax(1).clamp(min=1e-30).view(-1, 1, 1, 1) + 1) / 2


def load_images(count: int, seed: int) -> tuple[torch.Tensor, list[str]]:
    names = sorted(json.loads((DATA / "annotations.json").read_text()))
    random.Random(seed).shuffle(names)
    names = names[:count]
    return ms.load_batch([DATA / "images" / n for n in names]), names


def options(iterations: int, rise_masks: int) -> dict[str, dict]:
    short = {"iterations": iterations}
    return {"meaningful": short, "crisp": {**short, "crisp_iterations": max(1, iterations // 2)},
            "extremal": {**short, "areas": [0.1]}, "gradcam": {"layer": "_conv_head"},
            "occlusion": {"window": 56, "stride": 28}, "rise": {"n_masks": rise_masks, "batch_size": 64}}


def changed(rho: float, ssim: float) -> bool:
    return rho < PASS_BELOW and ssim < PASS_BELOW


def verdict(head: bool, full: bool) -> str:
    return "passes" if head and full else "partly" if head or full else "FAILS"


def rise_coverage(masks: torch.Tensor, settings: dict) -> list[float]:
    """Mean Spearman of each stage's RISE masks (S + 1, B, 1, H, W) with the coverage Σ M of the
    random masks RISE drew: the map of a model whose score ignores the image."""
    from maskscope.methods.attribution import normalise_saliency
    from maskscope.methods.rise import rise_masks

    n, grid, p = settings["n_masks"], 7, 0.5  # rise's defaults for grid and p
    h, w = masks.shape[-2:]
    gen = torch.Generator().manual_seed(0)  # rise's default seed, drawn as rise draws them
    cells = (torch.rand(n, 1, grid, grid, generator=gen) < p).float()
    shifts = torch.stack([torch.randint(0, math.ceil(h / grid), (n,), generator=gen),
                          torch.randint(0, math.ceil(w / grid), (n,), generator=gen)], dim=1)
    coverage = normalise_saliency(rise_masks(cells, shifts, (h, w)).sum(0, keepdim=True), "positive")
    return [float(rank_correlation(coverage.expand_as(m), m).mean()) for m in masks]


def print_tables(report: Report, scores: dict) -> None:
    """The tables of one run from its scores (``sanity_scores.json``)."""
    stages, methods = scores["stages"], list(scores["methods"])
    mean = {k: {m: [sum(row) / len(row) for row in v[k]] for m, v in scores["methods"].items()}
            for k in ("spearman", "ssim")}
    rho, ssim = mean["spearman"], mean["ssim"]
    kept = [["top-1 kept", *(f"{a:.2f}" for a in scores["agreement"])]]
    report.print("Share of images whose top-1 class survives each stage\n"
                 + markdown_table(["", *stages], kept))
    for title, table in (("Mean Spearman rank correlation with the trained model's masks", rho),
                         ("Mean SSIM with the trained model's masks", ssim)):
        rows = [[m, *(f"{v:.2f}" for v in table[m])] for m in methods]
        report.print(f"\n{title}\n" + markdown_table(["method", *stages], rows))
    if all("mass" in v for v in scores["methods"].values()):
        rows = [[m, *(f"{sum(row) / len(row):.3f}" for row in v["mass"])]
                for m, v in scores["methods"].items()]
        report.print("\nMean mask value (an empty mask changed, but to nothing)\n"
                     + markdown_table(["method", "original", *stages], rows))
    report.print(f"\nA method changes at a stage when both its mean ρ and SSIM are below {PASS_BELOW}; it "
                 f"passes when it changes both with the head ({stages[0]}) re-drawn and with every weight "
                 "re-drawn, partly when only one.")
    header = ["method", f"ρ after {stages[0]}", f"SSIM after {stages[0]}", "ρ all re-drawn",
              "SSIM all re-drawn", "verdict", "s per mask"]
    per_mask = scores.get("seconds_per_mask", {})
    rows = [[m, f"{rho[m][0]:.2f}", f"{ssim[m][0]:.2f}", f"{rho[m][-1]:.2f}", f"{ssim[m][-1]:.2f}",
             verdict(changed(rho[m][0], ssim[m][0]), changed(rho[m][-1], ssim[m][-1])),
             f"{per_mask[m]:.1f}" if m in per_mask else "–"] for m in methods]
    report.print("\nVerdict\n" + markdown_table(header, rows))
    if "rise_coverage" in scores:
        coverage = [["ρ with coverage", *(f"{v:.2f}" for v in scores["rise_coverage"])]]
        report.print("\nRISE's masks against the coverage of its own random masks (mean Spearman; 1 = the "
                     "map is the coverage pattern, whatever the model)\n"
                     + markdown_table(["", "original", *stages], coverage))


def main() -> int:
    p = parser(__doc__, "result")
    p.add_argument("--images", type=int, default=4)
    p.add_argument("--stages", type=int, default=5)
    p.add_argument("--iterations", type=int, default=20)
    p.add_argument("--rise-masks", type=int, default=64)
    p.add_argument("--methods", default=",".join(METHODS))
    p.add_argument("--seed", type=int, default=0, help="the weights' re-draw (the images: --image-seed)")
    p.add_argument("--image-seed", type=int, default=0)
    p.add_argument("--from-scores", type=Path, default=None,
                   help="print the tables of a saved sanity_scores.json instead of measuring")
    args = p.parse_args()
    report = Report(args.result)
    if args.from_scores is not None:
        scores = json.loads(args.from_scores.read_text())
        report.print(scores["description"] + f" Measured by `{scores['command']}`; tables from "
                     f"{args.from_scores.name}.\n")
        print_tables(report, scores)
        if args.result is not None:  # the score plot needs only the scores
            plot = sanity_plot(SanityResult.from_json(scores))
            plot.savefig(args.result.parent / f"{args.result.name}_scores.png", dpi=100)
        report.close()
        return 0
    torch.set_num_threads(1)
    blackbox = ms.load_classifier()
    images, names = load_images(args.images, args.image_seed)
    methods = args.methods.split(",")
    settings = options(args.iterations, args.rise_masks)
    register_method("gradient-signed", signed_gradient)
    seconds: dict[str, float] = {}
    clock = [time.perf_counter()]

    def tick(stage: str, method: str) -> None:
        now = time.perf_counter()
        seconds[method] = seconds.get(method, 0.0) + now - clock[0]
        clock[0] = now
        print(f"  {stage:>12} {method:<16} {seconds[method]:7.1f} s", file=sys.stderr, flush=True)

    try:
        result = sanity_check(blackbox, images, None, methods, args.stages, args.seed, settings,
                              progress=tick)
    finally:
        unregister_method("gradient-signed")
    masks = (len(result.stages) + 1) * len(names)
    description = (f"{len(names)} val-sample images ({', '.join(names)}), EfficientNet-Lite0, top-1 "
                   f"classes of the trained model; {args.stages} stages, weights re-drawn with seed "
                   f"{args.seed}; "
                   f"iterative methods at {args.iterations} iterations"
                   + (f", RISE {args.rise_masks} masks" if "rise" in methods else "")
                   + ". Stage X = every parameter from the output down to X re-drawn.")
    scores = {"description": description, "command": command_line(), "images": names, **result.to_json(),
              "seconds_per_mask": {m: s / masks for m, s in seconds.items()}}
    if "rise" in methods:
        scores["rise_coverage"] = rise_coverage(result.masks["rise"], settings["rise"])
    report.print(description + "\n")
    print_tables(report, scores)
    if args.result is not None:
        folder, name = args.result.parent, args.result.name
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{name}_scores.json").write_text(json.dumps(scores, indent=1) + "\n")
        for i in range(len(names)):
            sanity_figure(result, images, i).savefig(folder / f"{name}_figure_{i}.png", dpi=80)
        sanity_plot(result).savefig(folder / f"{name}_scores.png", dpi=100)
    report.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
