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
"""

from __future__ import annotations

import json
import random
import sys
import time
from pathlib import Path

import torch

import maskscope as ms
from maskscope.analysis.sanity import sanity_check, sanity_figure, sanity_plot
from maskscope.methods import register_method, unregister_method

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a file: import the harness
from benchmarks.harness import SHARED_DATA, Report, markdown_table, parser  # noqa: E402

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


def options(iterations: int) -> dict[str, dict]:
    short = {"iterations": iterations}
    return {"meaningful": short, "crisp": {**short, "crisp_iterations": max(1, iterations // 2)},
            "extremal": {**short, "areas": [0.1]}, "gradcam": {"layer": "_conv_head"},
            "occlusion": {"window": 56, "stride": 28}, "rise": {"n_masks": 64, "batch_size": 64}}


def verdict(rho: float, ssim: float) -> str:
    return "passes" if rho < PASS_BELOW and ssim < PASS_BELOW else "FAILS"


def print_tables(report: Report, result, methods: list[str], per_mask: dict[str, float]) -> None:
    stages = [s.name for s in result.stages]
    rho, ssim = result.mean("spearman"), result.mean("ssim")
    report.print("Share of images whose top-1 class survives each stage\n")
    report.print(markdown_table(["", *stages], [["top-1 kept", *(f"{a:.2f}" for a in result.agreement)]]))
    for title, table in (("Mean Spearman rank correlation with the trained model's masks", rho),
                         ("Mean SSIM with the trained model's masks", ssim)):
        report.print(f"\n{title}\n")
        rows = [[m, *(f"{v:.2f}" for v in table[m])] for m in methods]
        report.print(markdown_table(["method", *stages], rows))
    report.print(f"\nVerdict: passes when both fall below {PASS_BELOW} with every weight re-drawn\n")
    header = ["method", f"ρ after {stages[0]}", f"SSIM after {stages[0]}", "ρ all re-drawn",
              "SSIM all re-drawn", "verdict", "s per mask"]
    rows = [[m, f"{rho[m][0]:.2f}", f"{ssim[m][0]:.2f}", f"{rho[m][-1]:.2f}", f"{ssim[m][-1]:.2f}",
             verdict(rho[m][-1], ssim[m][-1]), f"{per_mask.get(m, 0.0):.1f}"] for m in methods]
    report.print(markdown_table(header, rows))


def main() -> int:
    p = parser(__doc__, "result")
    p.add_argument("--images", type=int, default=4)
    p.add_argument("--stages", type=int, default=5)
    p.add_argument("--iterations", type=int, default=20)
    p.add_argument("--methods", default=",".join(METHODS))
    p.add_argument("--seed", type=int, default=0, help="the weights' re-draw (the images: --image-seed)")
    p.add_argument("--image-seed", type=int, default=0)
    args = p.parse_args()
    torch.set_num_threads(1)
    report = Report(args.result)
    blackbox = ms.load_classifier()
    images, names = load_images(args.images, args.image_seed)
    methods = args.methods.split(",")
    register_method("gradient-signed", signed_gradient)
    seconds: dict[str, float] = {}
    clock = [time.perf_counter()]

    def tick(stage: str, method: str) -> None:
        now = time.perf_counter()
        seconds[method] = seconds.get(method, 0.0) + now - clock[0]
        clock[0] = now
        print(f"  {stage:>12} {method:<16} {seconds[method]:7.1f} s", file=sys.stderr, flush=True)

    try:
        result = sanity_check(blackbox, images, None, methods, args.stages, args.seed,
                              options(args.iterations), progress=tick)
    finally:
        unregister_method("gradient-signed")
    report.print(f"{len(names)} val-sample images ({', '.join(names)}), EfficientNet-Lite0, top-1 classes of "
                 f"the trained model; {args.stages} stages, weights re-drawn with seed {args.seed}; "
                 f"iterative methods at {args.iterations} iterations. Stage X = every parameter from the "
                 "output down to X re-drawn.\n")
    masks = (len(result.stages) + 1) * len(names)
    print_tables(report, result, methods, {m: s / masks for m, s in seconds.items()})
    if args.result is not None:
        folder = args.result.parent
        folder.mkdir(parents=True, exist_ok=True)
        scores = {"images": names, **result.to_json()}
        (folder / "sanity_scores.json").write_text(json.dumps(scores, indent=1) + "\n")
        for i in range(len(names)):
            sanity_figure(result, images, i).savefig(folder / f"sanity_figure_{i}.png", dpi=110)
        sanity_plot(result).savefig(folder / "sanity_scores.png", dpi=110)
    report.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
