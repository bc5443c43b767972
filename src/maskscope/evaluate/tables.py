"""The results: ``metrics.json`` (method → metric → value) and ``metrics.md``, built from each
protocol's columns, cells and sections."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import OutputError
from .cache import write_json_atomic
from .markdown import escape_markdown, pipe_table

__all__ = ["ROW_NAMES", "escape_markdown", "flat_metrics", "markdown_table", "pipe_table", "write_tables"]
from .protocols import BOXES, OBJECT_MASKS, Protocol, resolve

TRUTH = frozenset({BOXES, OBJECT_MASKS})  # protocols against the ground truth

ROW_NAMES = {
    "center": "centre box (reference)",
    "full": "full image (reference)",
    "gt-boxes": "ground-truth boxes (reference)",
}


def _protocols(protocols: Sequence[Protocol] | None) -> list[Protocol]:
    return resolve(None) if protocols is None else list(protocols)


def flat_metrics(metrics: dict[str, dict[str, Any]],
                 protocols: Sequence[Protocol] | None = None) -> dict[str, dict[str, Any]]:
    """method → metric → value: the main table's scores that need no ground truth, the image
    counts, then every other column, each protocol's in the registry's order."""
    protocols = _protocols(protocols)
    first = [p for p in protocols if p.head and not p.needs & TRUTH]
    rest = [p for p in protocols if p not in first]
    flat = {}
    for name, m in metrics.items():
        row: dict[str, Any] = {}
        for p in first:
            if p.present(m):
                row.update(p.columns(m))
        row.update(n_report=m.get("n_report"), n_tune=m.get("n_tune"))
        for p in rest:
            row.update(p.columns(m))
        flat[name] = row
    return flat


def markdown_table(metrics: dict[str, dict[str, Any]], info: dict[str, Any],
                   protocols: Sequence[Protocol] | None = None) -> str:
    """One row per method, the columns of every protocol some method has scores of: those against
    the ground truth first, as the papers' tables do."""
    shown = [p for p in _protocols(protocols) if p.head and any(p.present(m) for m in metrics.values())]
    shown.sort(key=lambda p: not p.needs & TRUTH)
    head = ["method"] + [h for p in shown for h in p.head]
    rows = [[ROW_NAMES.get(name, name)] + [c for p in shown for c in p.cells(m)]
            for name, m in metrics.items()]
    return "\n".join(pipe_table(head, rows))


def footer(info: dict[str, Any]) -> str:
    h, w = info["size"]
    notes = [
        f"Data: `{info['data']}`, {info['images']} images "
        f"({'all' if info['limit'] is None else 'random subset'}, "
        f"seed {info['seed']}); thresholds tuned on {info['tune_images']} held-out images, every number "
        f"over the other {info['report_images']}. Model: {info['model']}, images resized to {w}x{h}.",
        "Localisation error (%, lower is better): the tightest box around the thresholded mask must have "
        "IoU > 0.5 with a ground-truth box. value* / energy* / mean*: Fong & Vedaldi's three thresholdings "
        "with α tuned on the held-out split; @0.5: Dabkowski & Gal's fixed threshold.",
        f"Pointing: the mask maximum lies within {info.get('pointing_tolerance', 15.0):.3g} px of a "
        "ground-truth box. Saliency metric "
        "(Dabkowski & Gal, lower is better): log(max(a, 0.05)) − log p of the tightest crop of mask ≥ 0.5. "
        "% drop (Godi et al.): fall of the class probability, in % of the original, when the mask is blurred "
        "away (favours large masks: read it with the mask area).",
        f"Targets: {'the ground-truth class' if info.get('annotated') else 'the model top-1 class'}. "
        "Every method runs with its defaults (meaningful: preset fong2017, fixed-blur; "
        "crisp: fong2017-paper-blur; deletion game)"
        + "".join(f"; {k} {v}" for k, v in info["method_options"].items() if v) + ". "
        "Ground-truth row: the largest box as the mask, the saliency metric averaged over all boxes.",
    ]
    if info["tune_images"] == 0:
        notes.append("Too few images for a held-out split: thresholds were tuned on the reported images.")
    if info.get("protocols"):
        notes.append("Classifier forward passes per image and method, by protocol: "
                     + ", ".join(f"{name} {passes}" for name, passes in info["protocols"].items()) + ".")
    return "\n".join(f"- {n}" for n in notes)


def write_tables(out: str | Path, metrics: dict[str, dict[str, Any]], info: dict[str, Any],
                 title: str = "maskscope evaluation", protocols: Sequence[Protocol] | None = None) -> str:
    """Write ``metrics.json`` (method → metric → value), ``details.json`` (nested metrics with
    thresholds and counts, and the run's settings) and ``metrics.md`` into ``out``; returns the
    markdown. ``protocols``: those of the run (default: every registered one)."""
    out = Path(out)
    protocols = _protocols(protocols)
    sections = [f"# {title}", "", markdown_table(metrics, info, protocols), "", footer(info)]
    for protocol in protocols:
        blocks = protocol.sections(metrics, ROW_NAMES)
        if blocks:
            sections += ["", *blocks]
    text = "\n".join(sections) + "\n"
    try:
        out.mkdir(parents=True, exist_ok=True)
        write_json_atomic(out / "metrics.json", flat_metrics(metrics, protocols))
        write_json_atomic(out / "details.json", {"metrics": metrics, "info": info})
        (out / "metrics.md").write_text(text, encoding="utf-8")
    except OSError as exc:
        raise OutputError(f"cannot write results to {out}: {exc.strerror or exc}") from None
    return text
