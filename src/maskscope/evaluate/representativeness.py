"""The representativeness column group of ``maskscope evaluate`` (Fong & Vedaldi §5.2 and the
cross-perturbation drop), kept apart from the runner so that its scores can be added to old caches.

Per image, the compute phase adds to the cached json::

    "representativeness": {"alphas": [...], "smooth_sigma": 5.0, "perturbations": [...],
                           "scores": {perturbation: [normalised score per α, null if undefined]},
                           "area": [deleted fraction per α]}
    "cross_drop": {perturbation: % drop of p when the soft salient region is deleted with it}

all computed from the stored float16 mask. An entry cached before these scores existed (or with
another α grid) is completed from its cached mask by ``complete_cached``: the mask is never
recomputed and the mask file never rewritten, so long runs made before this change are reused.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from tqdm.auto import tqdm

from ..blackbox import BlackBox
from ..metrics.representativeness import (
    ALPHAS,
    CROSS_PERTURBATIONS,
    REPR_PERTURBATIONS,
    SMOOTH_SIGMA,
    Representativeness,
    RepresentativenessResult,
    cross_perturbation_drop,
    representativeness,
)
from .cache import MaskCache

REPR_KEY = "representativeness"
CROSS_KEY = "cross_drop"
REPORT_ALPHA = 0.5  # the table's single-α column: the region s̃ > 0.5, whichever way α is read


def protocol() -> dict[str, Any]:
    """What the stored per-image scores depend on; a cached record with other values is recomputed."""
    return {"alphas": list(ALPHAS), "smooth_sigma": SMOOTH_SIGMA, "perturbations": list(REPR_PERTURBATIONS)}


def _finite(value: float) -> float | None:
    return None if math.isnan(value) else float(value)


@torch.no_grad()
def image_scores(model: BlackBox, images: torch.Tensor, masks: torch.Tensor, targets: torch.Tensor,
                 batch_size: int = 32) -> list[dict[str, Any]]:
    """The column group's per-image record entries for one batch of (stored) masks."""
    rep = representativeness(model, images, masks, targets, batch_size=batch_size)
    cross = cross_perturbation_drop(model, images, masks, targets, batch_size=batch_size)
    records = []
    for i in range(images.shape[0]):
        records.append({
            REPR_KEY: {
                **protocol(),
                "scores": {name: [_finite(v) for v in s[i].tolist()] for name, s in rep.scores.items()},
                "area": [round(float(v), 6) for v in rep.areas[i]],
            },
            CROSS_KEY: {name: float(d[i]) for name, d in cross.items()},
        })
    return records


def needs_scores(record: dict[str, Any]) -> bool:
    """True when a cached record lacks this column group (or has it for another protocol)."""
    rep = record.get(REPR_KEY)
    if not isinstance(rep, dict) or any(rep.get(k) != v for k, v in protocol().items()):
        return True
    return set(record.get(CROSS_KEY) or {}) != set(CROSS_PERTURBATIONS)


def complete_cached(model: BlackBox, samples: Sequence[Any], cache: MaskCache, size: tuple[int, int],
                    batch_size: int, progress: bool = False) -> int:
    """Add the column group to cached entries that lack it, from their cached masks; returns how
    many entries were completed. Only the json is rewritten."""
    from .runner import load_images

    todo = []
    for s in samples:
        if cache.has(s.item.key):
            mask, record = cache.get(s.item.key)
            if needs_scores(record):
                todo.append((s, mask, record))
    bar = tqdm(total=len(todo), desc=f"{cache.method:>15} §5.2", unit="img", disable=not progress or not todo)
    try:
        for start in range(0, len(todo), batch_size):
            chunk = todo[start : start + batch_size]
            images = load_images([s for s, _, _ in chunk], size).to(model.device)
            masks = torch.stack([torch.from_numpy(m) for _, m, _ in chunk])[:, None].to(images.device)
            targets = torch.tensor([s.target for s, _, _ in chunk], dtype=torch.long)
            extra = image_scores(model, images, masks, targets, max(32, len(chunk)))
            for (s, _, record), new in zip(chunk, extra):
                cache.update_scores(s.item.key, {**record, **new})
            bar.update(len(chunk))
    finally:
        bar.close()
    return len(todo)


def summarise(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Means over the report images: per perturbation the curve, its AUC and the score at α = 0.5
    (images whose score is undefined are left out, ``n`` counts the rest), the mean deleted area per
    α, and the mean cross-perturbation drops."""
    rows = [r[REPR_KEY] for r in records if isinstance(r.get(REPR_KEY), dict)]
    out: dict[str, Any] = {}
    if rows:
        acc = Representativeness()
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
        out[REPR_KEY] = summary
    drops = [r[CROSS_KEY] for r in records if isinstance(r.get(CROSS_KEY), dict)]
    if drops:
        out[CROSS_KEY] = {n: math.fsum(d[n] for d in drops) / len(drops) for n in drops[0]}
    return out


# -- tables ---------------------------------------------------------------------------------------
def flat_columns(metrics: dict[str, Any]) -> dict[str, Any]:
    """The group's ``metrics.json`` columns of one method."""
    row: dict[str, Any] = {}
    rep = metrics.get(REPR_KEY)
    if rep:
        for name, value in rep["auc"].items():
            row[f"repr_auc_{name}"] = value
        for name, value in rep["at_0.5"].items():
            row[f"repr_at_0.5_{name}"] = value
        row["repr_area_at_0.5"] = rep["area_at_0.5"]
    for name, value in (metrics.get(CROSS_KEY) or {}).items():
        row[f"cross_drop_{name}"] = value
    return row


def _cell(value: float | None, fmt: str) -> str:
    return "—" if value is None else format(value, fmt)


def markdown_sections(metrics: dict[str, dict[str, Any]], row_names: dict[str, str]) -> list[str]:
    """The representativeness and cross-perturbation tables with their notes ([] when absent)."""
    names = [n for n, m in metrics.items() if m.get(REPR_KEY)]
    sections: list[str] = []
    if names:
        perts = list(metrics[names[0]][REPR_KEY]["auc"])
        head = ([f"AUC {p} ↓" for p in perts] + [f"@α=0.5 {p} ↓" for p in perts]
                + ["area deleted @α=0.5", "images"])
        lines = ["| method | " + " | ".join(head) + " |", "|---|" + "---|" * len(head)]
        for name in names:
            rep = metrics[name][REPR_KEY]
            cells = [_cell(rep["auc"][p], ".3f") for p in perts]
            cells += [_cell(rep["at_0.5"][p], ".3f") for p in perts]
            cells += [_cell(rep["area_at_0.5"], ".3f"), str(min(rep["n"].values()))]
            lines.append(f"| {row_names.get(name, name)} | " + " | ".join(cells) + " |")
        sections += [
            "Deletion region representativeness (Fong & Vedaldi §5.2, Fig. 7; plot "
            f"`representativeness.png`): the mask smoothed (Gaussian σ = {SMOOTH_SIGMA:g} px at 224) and "
            "binarised at α = 0, 0.05, …, 0.95, the region s̃ > 1 − α deleted with each perturbation "
            "(fixed-blur: x·(1 − s) + blur_σ=10(x)·s; "
            "constant: mean colour; noise), normalised score (p − p_full)/(p0 − p_full) with p_full the "
            "whole image perturbed. AUC: trapezoid over α ÷ 0.95 (1 = never suppresses; lower is better, "
            "but larger regions suppress more: read it with the area). Images where deleting everything "
            "changes p by < 1e-4 are left out.", "", "\n".join(lines)]
    drops = [n for n, m in metrics.items() if m.get(CROSS_KEY)]
    if drops:
        perts = list(metrics[drops[0]][CROSS_KEY])
        lines = ["| method | " + " | ".join(f"% drop {p} ↑" for p in perts) + " |",
                 "|---|" + "---|" * len(perts)]
        for name in drops:
            cells = [_cell(metrics[name][CROSS_KEY][p], ".1f") for p in perts]
            lines.append(f"| {row_names.get(name, name)} | " + " | ".join(cells) + " |")
        sections += ["", "Cross-perturbation drop: % of the target probability lost when the soft salient "
                     "region is deleted, Φ(x, 1 − s), with each operator (blur = the per-pixel σ0·(1 − m) "
                     "pyramid, fixed-blur = the σ0 = 10 blend). A mask optimised with one operator should "
                     "keep its drop under the others.", "", "\n".join(lines)]
    return sections
