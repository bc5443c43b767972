"""Quality of meaningful perturbation on the demo photos (deletion and preservation games).

Reports, per photo and on average, the target probability before and after, the % drop
(deletion; Godi et al. Table 2 report 99.7 %) or the % kept (preservation), and the salient area.

    python benchmarks/quality/quality_demo.py [--preset fong2017] [--iterations 300] [--games delete,preserve]

The perturbation is the preset's unless ``--perturbation`` names another. The last column deletes
the mask's binarised region (smoothed, s > 0.5, Fong & Vedaldi §5.2) with a mean-colour fill, an
operator the mask was not optimised with: a drop that survives it belongs to the region.
"""

from __future__ import annotations

import sys
from pathlib import Path

import maskscope as ms
from maskscope.metrics import cross_perturbation_drop, keep_masks

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a file: import the harness
from benchmarks.harness import Report, demo_batch, markdown_table  # noqa: E402
from benchmarks.harness import parser as make_parser


def main() -> None:
    parser = make_parser(__doc__, "device", "result")
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--games", default="delete,preserve")
    parser.add_argument("--preset", default="fong2017")
    parser.add_argument("--perturbation", default=None, help="default: the preset's")
    args = parser.parse_args()
    printed = Report(args.result)
    blackbox = ms.load_classifier(device=args.device)
    names, photos = demo_batch()
    summary = []
    for game in args.games.split(","):
        e = ms.meaningful_perturbation(
            blackbox,
            photos.to(args.device),
            game=game,
            preset=args.preset,
            perturbation=args.perturbation,
            iterations=args.iterations,
            early_stop=False,  # the paper's fixed schedule, as in the published table
            progress=True,
        )
        after = e.p_deleted if game == "delete" else e.p_preserved
        region = (~keep_masks(e.masks, (0.5,))).float()  # §5.2's binary region: smoothed s > 0.5
        cross = cross_perturbation_drop(blackbox, photos.to(args.device), region, e.targets,
                                        perturbations=("constant",))["constant"]
        if game == "preserve":  # keep only the region: the drop of deleting everything else
            cross = cross_perturbation_drop(blackbox, photos.to(args.device), 1 - region, e.targets,
                                            perturbations=("constant",))["constant"]
        rows = []
        for i, name in enumerate(names):
            p0, p1 = float(e.p_original[i]), float(after[i])
            change = 100 * (p0 - p1) / p0 if game == "delete" else 100 * p1 / p0
            rows.append(
                [name, e.class_names[i], f"{p0:.3f}", f"{p1:.4f}", f"{change:.1f}", f"{100 * e.area[i]:.1f}",
                 f"{float(cross[i]):.1f}"]
            )
        label = "% drop" if game == "delete" else "% kept"
        printed.print(f"\n{game} game, preset {args.preset}, {e.perturbation.name}, "
                      f"{args.iterations} iterations")
        printed.print(markdown_table(["photo", "class", "p", f"p {game}d", label, "area %",
                                      "binarised s>0.5, constant fill: % drop" if game == "delete"
                                      else "outside s>0.5 filled with constant: % drop"], rows))
        mean_change = sum(float(r[4]) for r in rows) / len(rows)
        mean_area = float(e.area.mean()) * 100
        summary.append([game, label, f"{mean_change:.1f}", f"{mean_area:.1f}"])
    printed.print("\nmean over the demo photos")
    printed.print(markdown_table(["game", "measure", "mean", "mean salient area %"], summary))
    printed.close()


if __name__ == "__main__":
    main()
