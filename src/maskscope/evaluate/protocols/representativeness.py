"""Two protocols of ``maskscope evaluate``: Fong & Vedaldi's §5.2 deletion region representativeness
and the cross-perturbation drop.

Per image, the compute phase adds to the cached json::

    "representativeness": {"alphas": [...], "smooth_sigma": 5.0, "perturbations": [...],
                           "scores": {perturbation: [normalised score per α, null if undefined]},
                           "area": [deleted fraction per α]}
    "cross_drop": {perturbation: % drop of p when the soft salient region is deleted with it}

all computed from the stored float16 mask. An entry cached before these scores existed (or with
another α grid) is completed from its cached mask (``scoring.complete_scores``): the mask is never
recomputed and the mask file never rewritten, so long runs made before this change are reused.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from ...metrics.representativeness import (
    ALPHAS,
    CROSS_PERTURBATIONS,
    REPR_PERTURBATIONS,
    SMOOTH_SIGMA,
    RepresentativenessResult,
    cross_perturbation_drop,
    representativeness,
)
from ...metrics.representativeness import Representativeness as Accumulator
from ..markdown import pipe_table
from .base import MODEL, Protocol, Rows, Split, cell

REPR_KEY = "representativeness"
CROSS_KEY = "cross_drop"
REPORT_ALPHA = 0.5  # the table's single-α column: the region s̃ > 0.5, whichever way α is read


def settings() -> dict[str, Any]:
    """What the stored per-image scores depend on; a cached record with other values is recomputed."""
    return {"alphas": list(ALPHAS), "smooth_sigma": SMOOTH_SIGMA, "perturbations": list(REPR_PERTURBATIONS)}


def _finite(value: float) -> float | None:
    return None if math.isnan(value) else float(value)


def _names(metrics: dict[str, dict[str, Any]], key: str) -> list[str]:
    return [n for n, m in metrics.items() if m.get(key)]


class Representativeness(Protocol):
    """§5.2: the mask smoothed, binarised at each α and deleted with each perturbation."""

    name = "representativeness"
    needs = frozenset({MODEL})
    # p0, p_full per perturbation, one per perturbation and distinct non-empty α region
    passes = f"≤ {1 + len(REPR_PERTURBATIONS) * len(ALPHAS)}"
    record_keys = (REPR_KEY,)
    summary_keys = (REPR_KEY,)

    @torch.no_grad()
    def image_scores(self, rows: Rows) -> list[dict[str, Any]]:
        rep = representativeness(rows.model, rows.images, rows.masks, rows.targets,
                                 batch_size=rows.batch_size)
        return [{REPR_KEY: {
            **settings(),
            "scores": {name: [_finite(v) for v in s[i].tolist()] for name, s in rep.scores.items()},
            "area": [round(float(v), 6) for v in rep.areas[i]],
        }} for i in range(len(rows.samples))]

    def needs_scores(self, record: dict[str, Any]) -> bool:
        rep = record.get(REPR_KEY)
        return not isinstance(rep, dict) or any(rep.get(k) != v for k, v in settings().items())

    def summarise(self, split: Split) -> dict[str, Any]:
        """Per perturbation the mean curve, its AUC and the score at α = 0.5 (images whose score is
        undefined are left out, ``n`` counts the rest), and the mean deleted area per α."""
        rows = [r[REPR_KEY] for r in split.report_records() if isinstance(r.get(REPR_KEY), dict)]
        if not rows:
            return {}
        acc = Accumulator()
        for rep in rows:
            acc.update_result(RepresentativenessResult(
                alphas=tuple(rep["alphas"]),
                scores={n: torch.tensor([[math.nan if v is None else v for v in s]], dtype=torch.float64)
                        for n, s in rep["scores"].items()},
                areas=torch.tensor([rep["area"]], dtype=torch.float64),
                p_original=torch.empty(0), p_full={},
            ))
        summary = acc.compute()
        k = summary["alphas"].index(REPORT_ALPHA)
        summary["at_0.5"] = {n: (None if c[k] is None else c[k]) for n, c in summary["curves"].items()}
        summary["area_at_0.5"] = summary["area"][k]
        return {REPR_KEY: summary}

    def columns(self, summary: dict[str, Any]) -> dict[str, Any]:
        rep = summary.get(REPR_KEY)
        if not rep:
            return {}
        row = {f"repr_auc_{name}": value for name, value in rep["auc"].items()}
        row.update((f"repr_at_0.5_{name}", value) for name, value in rep["at_0.5"].items())
        row["repr_area_at_0.5"] = rep["area_at_0.5"]
        return row

    def sections(self, metrics: dict[str, dict[str, Any]], row_names: dict[str, str]) -> list[str]:
        names = _names(metrics, REPR_KEY)
        if not names:
            return []
        perts = list(metrics[names[0]][REPR_KEY]["auc"])
        head = ([f"AUC {p} ↓" for p in perts] + [f"@α=0.5 {p} ↓" for p in perts]
                + ["area deleted @α=0.5", "images"])
        rows = []
        for name in names:
            rep = metrics[name][REPR_KEY]
            rows.append([row_names.get(name, name)] + [cell(rep["auc"][p], ".3f") for p in perts]
                        + [cell(rep["at_0.5"][p], ".3f") for p in perts]
                        + [cell(rep["area_at_0.5"], ".3f"), str(min(rep["n"].values()))])
        return [
            "Deletion region representativeness (Fong & Vedaldi §5.2, Fig. 7; plot "
            f"`representativeness.png`): the mask smoothed (Gaussian σ = {SMOOTH_SIGMA:g} px at 224) and "
            "binarised at α = 0, 0.05, …, 0.95, the region s̃ > 1 − α deleted with each perturbation "
            "(fixed-blur: x·(1 − s) + blur_σ=10(x)·s; "
            "constant: mean colour; noise), normalised score (p − p_full)/(p0 − p_full) with p_full the "
            "whole image perturbed. AUC: trapezoid over α ÷ 0.95 (1 = never suppresses; lower is better, "
            "but larger regions suppress more: read it with the area). Images where deleting everything "
            "changes p by < 1e-4 are left out.", "", "\n".join(pipe_table(["method", *head], rows))]


class CrossDrop(Protocol):
    """The % drop when the soft salient region is deleted with each perturbation operator."""

    name = "cross-drop"
    needs = frozenset({MODEL})
    passes = str(1 + len(CROSS_PERTURBATIONS))
    record_keys = (CROSS_KEY,)
    summary_keys = (CROSS_KEY,)

    @torch.no_grad()
    def image_scores(self, rows: Rows) -> list[dict[str, Any]]:
        cross = cross_perturbation_drop(rows.model, rows.images, rows.masks, rows.targets,
                                        batch_size=rows.batch_size)
        return [{CROSS_KEY: {name: float(d[i]) for name, d in cross.items()}}
                for i in range(len(rows.samples))]

    def needs_scores(self, record: dict[str, Any]) -> bool:
        return set(record.get(CROSS_KEY) or {}) != set(CROSS_PERTURBATIONS)

    def summarise(self, split: Split) -> dict[str, Any]:
        drops = [r[CROSS_KEY] for r in split.report_records() if isinstance(r.get(CROSS_KEY), dict)]
        if not drops:
            return {}
        return {CROSS_KEY: {n: math.fsum(d[n] for d in drops) / len(drops) for n in drops[0]}}

    def columns(self, summary: dict[str, Any]) -> dict[str, Any]:
        return {f"cross_drop_{name}": value for name, value in (summary.get(CROSS_KEY) or {}).items()}

    def sections(self, metrics: dict[str, dict[str, Any]], row_names: dict[str, str]) -> list[str]:
        names = _names(metrics, CROSS_KEY)
        if not names:
            return []
        perts = list(metrics[names[0]][CROSS_KEY])
        rows = [[row_names.get(name, name)] + [cell(metrics[name][CROSS_KEY][p], ".1f") for p in perts]
                for name in names]
        return ["Cross-perturbation drop: % of the target probability lost when the soft salient "
                "region is deleted, Φ(x, 1 − s), with each operator (blur = the per-pixel σ0·(1 − m) "
                "pyramid, fixed-blur = the σ0 = 10 blend). A mask optimised with one operator should "
                "keep its drop under the others.", "",
                "\n".join(pipe_table(["method", *[f"% drop {p} ↑" for p in perts]], rows))]
