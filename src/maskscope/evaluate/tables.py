"""The results table: ``metrics.json`` (method → metric → value) and ``metrics.md`` (markdown)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import OutputError
from .cache import write_json_atomic
from .representativeness import flat_columns, markdown_sections

ROW_NAMES = {
    "center": "centre box (reference)",
    "full": "full image (reference)",
    "gt-boxes": "ground-truth boxes (reference)",
}


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f}"


def escape_markdown(text: str) -> str:
    """``text`` shown literally in markdown: one line, with every character that could start
    emphasis, a link, a heading, HTML, code or a table cell backslash-escaped (a folder name like
    ``[x](http://…)`` or ``<img onerror=…>`` must not become markup in ``metrics.md``)."""
    flat = " ".join(str(text).split())
    return "".join("\\" + c if c in MARKDOWN_SPECIALS else c for c in flat)


MARKDOWN_SPECIALS = set("\\`*_[]<>#|~&")  # what can start markup mid-line (the name never starts one)


def pipe_table(header: list[str], rows: list[list[Any]]) -> list[str]:
    """The lines of a GitHub markdown table (the one table writer of the package and benchmarks)."""
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + [
        "| " + " | ".join(str(c) for c in row) + " |" for row in rows
    ]


def _num(value: float | None, digits: int = 3) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def flat_metrics(metrics: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """method → metric → value, with the nested localisation entries spelled out as flat keys."""
    flat = {}
    for name, m in metrics.items():
        row: dict[str, Any] = {
            "saliency_metric": m.get("saliency"),
            "drop_percent": m.get("drop"),
            "mask_area": m.get("area"),
            "deletion_auc": m.get("deletion_auc"),
            "insertion_auc": m.get("insertion_auc"),
            "n_report": m.get("n_report"),
            "n_tune": m.get("n_tune"),
        }
        for mode, entry in m.get("localisation", {}).items():
            row[f"loc_error_{mode}"] = entry["error"]
            row[f"loc_alpha_{mode}"] = entry["alpha"]
        if "pointing" in m:
            row["pointing"] = m["pointing"]
        for level, entry in m.get("suppression", {}).items():
            row[f"min_box_area_{level}"] = entry["mean_area"]
        for cls, entry in m.get("background", {}).items():
            row[f"background_argmax_class_{cls}"] = entry["argmax_off_object"]
            row[f"background_mass_class_{cls}"] = entry["mass_off_object"]
        row.update(flat_columns(m))
        flat[name] = row
    return flat


def markdown_table(metrics: dict[str, dict[str, Any]], info: dict[str, Any]) -> str:
    """One row per method; localisation columns only when the data has boxes."""
    with_boxes = any("localisation" in m for m in metrics.values())
    head = ["method"]
    if with_boxes:
        head += ["loc. err. % value*", "energy*", "mean*", "@0.5", "pointing %"]
    head += ["saliency metric ↓", "% drop ↑", "mask area", "deletion AUC ↓", "insertion AUC ↑"]
    rows = []
    for name, m in metrics.items():
        cells = [ROW_NAMES.get(name, name)]
        if with_boxes:
            loc = m.get("localisation", {})
            for mode in ("value", "energy", "mean", "fixed@0.5"):
                entry = loc.get(mode)
                cells.append("—" if entry is None else _pct(entry["error"]))
            cells.append(_pct(m.get("pointing")))
        cells += [_num(m.get("saliency")), _num(m.get("drop"), 1), _num(m.get("area"), 3),
                  _num(m.get("deletion_auc")), _num(m.get("insertion_auc"))]
        rows.append(cells)
    return "\n".join(pipe_table(head, rows))


def alpha_table(metrics: dict[str, dict[str, Any]]) -> str:
    """The thresholds chosen on the held-out split, per method and mode (Fong's Val-α*)."""
    rows = [(n, m["localisation"]) for n, m in metrics.items() if "localisation" in m]
    if not rows:
        return ""
    cells = [[name] + [f"{loc[mode]['alpha']:g}" for mode in ("value", "energy", "mean")]
             for name, loc in rows]
    lines = pipe_table(["method", "α* value", "α* energy", "α* mean"], cells)
    return "\n".join(lines)


def suppression_table(metrics: dict[str, dict[str, Any]]) -> str:
    """Fong Fig. 8 as numbers: mean minimal box area (pixels²) per suppression level."""
    levels = list(next(iter(metrics.values())).get("suppression", {}))
    if not levels:
        return ""
    rows = [[name] + [_num(m["suppression"][lv]["mean_area"], 0) for lv in levels]
            for name, m in metrics.items()]
    return "\n".join(pipe_table(["method"] + [f"{lv}%" for lv in levels], rows))


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
    return "\n".join(f"- {n}" for n in notes)


def write_tables(out: str | Path, metrics: dict[str, dict[str, Any]], info: dict[str, Any],
                 title: str = "maskscope evaluation") -> str:
    """Write ``metrics.json`` (method → metric → value), ``details.json`` (nested metrics with
    thresholds and counts, and the run's settings) and ``metrics.md`` into ``out``; returns the markdown."""
    out = Path(out)
    sections = [f"# {title}", "", markdown_table(metrics, info), "", footer(info)]
    alphas = alpha_table(metrics)
    if alphas:
        sections += ["", "Thresholds chosen on the held-out split:", "", alphas]
    supp = suppression_table(metrics)
    if supp:
        sections += ["", "Mean smallest box (pixels²) whose blurring reaches each normalised suppression "
                     "(Fong & Vedaldi Fig. 8; boxes from the mask thresholded at 0, 0.1, …, 1):", "", supp]
    representativeness = markdown_sections(metrics, ROW_NAMES)
    if representativeness:
        sections += ["", *representativeness]
    text = "\n".join(sections) + "\n"
    try:
        out.mkdir(parents=True, exist_ok=True)
        write_json_atomic(out / "metrics.json", flat_metrics(metrics))
        write_json_atomic(out / "details.json", {"metrics": metrics, "info": info})
        (out / "metrics.md").write_text(text, encoding="utf-8")
    except OSError as exc:
        raise OutputError(f"cannot write results to {out}: {exc.strerror or exc}") from None
    return text
