"""Fong & Vedaldi's Fig. 7 across several ``maskscope evaluate`` runs in one plot and one table.

Each run folder holds its own methods (one run per preset, or a run limited to fewer images for a
slow method); this script reads their ``details.json`` and puts the §5.2 curves side by side:

    python benchmarks/quality/representativeness_curves.py \\
        "meaningful (fong2017)=out/q100:meaningful" "extremal=out/ext40:extremal" \\
        "Grad-CAM=out/q100:gradcam" --out benchmarks/results/representativeness

Every curve is the mean over *its own run's* report images; runs with another ``--limit`` cover
other images, so the table says how many each row averages.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from maskscope.evaluate.plots import representativeness_plot

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a file: import the harness
from benchmarks.harness import Report, markdown_table, parser  # noqa: E402

PERTURBATIONS = ("fixed-blur", "constant", "noise")


def read(spec: str) -> tuple[str, dict]:
    label, _, where = spec.partition("=")
    folder, _, method = where.partition(":")
    rows = json.loads((Path(folder) / "details.json").read_text())["metrics"]
    if method not in rows:
        raise SystemExit(f"{folder}/details.json has no method {method!r}; it has {', '.join(rows)}")
    return label, rows[method]


def fmt(value) -> str:
    return "–" if value is None else f"{value:.3f}"


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__, "result")
    p.add_argument("runs", nargs="+", metavar="LABEL=FOLDER:METHOD")
    p.add_argument("--out", default="benchmarks/results/representativeness")
    args = p.parse_args(argv)
    printed = Report(args.result)
    metrics = dict(read(spec) for spec in args.runs)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    representativeness_plot(metrics, out / "representativeness.png")
    rows = []
    for label, m in metrics.items():
        rep = m.get("representativeness") or {}
        auc, at = rep.get("auc", {}), rep.get("at_0.5", {})
        rows.append([label, m.get("n_report", "?"),
                     *(fmt(auc.get(n)) for n in PERTURBATIONS), *(fmt(at.get(n)) for n in PERTURBATIONS),
                     fmt(rep.get("area_at_0.5"))])
    table = markdown_table(
        ["method", "images", "AUC fixed-blur ↓", "AUC constant ↓", "AUC noise ↓",
         "@α=0.5 fixed-blur ↓", "constant ↓", "noise ↓", "area deleted @0.5"], rows)
    (out / "representativeness.md").write_text(table + "\n")
    printed.print(table)
    printed.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
