"""What the explorer's pages print: metric columns read like ``metrics.md``, the mask colours are
the command line's magma."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from maskscope.app.columns import column, metric_tables

COMMON_JS = Path(__file__).parents[2] / "src" / "maskscope" / "app" / "static" / "common.js"


def test_columns_are_labelled_with_units_and_formatted_like_metrics_md():
    names = {"3": "polar bear"}
    error = column("loc_error_value", names)
    assert (error.over, error.label, error.unit) == ("loc. error ↓", "value α*", "%")
    assert error.text(0.25) == "25.0"
    assert column("n_report", names).text(3.0) == "3" and column("pointing", names).text(None) == "—"
    assert column("loc_alpha_energy", names).text(0.05) == "0.05"
    assert column("drop_percent", names).text(71.3051) == "71.3"  # already a percentage
    assert column("min_box_area_80", names).unit == "px²"
    assert column("background_mass_class_3", names).over == "polar bear"
    assert column("background_mass_class_7", names).over == "class 7"
    assert column("something_new", names).label == "something new"


def test_tables_group_the_columns_in_metrics_md_order():
    columns = ["saliency_metric", "n_report", "loc_alpha_value", "pointing", "loc_error_energy",
               "loc_error_value"]
    rows = [{"method": "center", "saliency_metric": -0.7, "n_report": 2.0, "loc_alpha_value": 0.5,
             "pointing": 1.0, "loc_error_energy": 0.5, "loc_error_value": None}]
    tables = metric_tables(columns, rows, {})
    assert [t["id"] for t in tables] == ["metrics", "thresholds"]
    main = tables[0]
    assert [c["key"] for c in main["columns"]] == ["loc_error_value", "loc_error_energy", "pointing",
                                                  "saliency_metric", "n_report"]
    row = main["rows"][0]
    assert row["reference"] == "centre box (reference)"
    assert [c["text"] for c in row["cells"]] == ["—", "50.0", "100.0", "-0.700", "2"]
    assert row["cells"][0]["value"] is None  # sorted as a blank, shown as a dash
    # the two localisation errors share a heading above them; the others span both header rows
    top, below = main["head"]
    assert [(c["label"], c.get("colspan"), c.get("rowspan")) for c in top] == [
        ("method", None, 2), ("loc. error ↓", 2, None), ("pointing ↑", None, 2),
        ("saliency metric ↓", None, 2), ("images reported", None, 2)]
    assert [(c["key"], c["col"]) for c in below] == [("loc_error_value", 1), ("loc_error_energy", 2)]
    assert [c["col"] for c in top if "col" in c] == [0, 3, 4, 5]


def test_the_page_colours_masks_with_magma():
    import matplotlib

    stops = re.search(r"const MAGMA = \[(.*?)\];", COMMON_JS.read_text(), re.S)[1]
    colours = np.array([[int(h[i:i + 2], 16) for i in (1, 3, 5)] for h in re.findall(r"#[0-9a-f]{6}", stops)])
    expected = matplotlib.colormaps["magma"](np.linspace(0, 1, len(colours)))[:, :3] * 255
    assert len(colours) >= 9 and np.abs(colours - expected).max() <= 0.5 + 1e-9
    # the page interpolates linearly between the stops: close to magma everywhere
    x = np.linspace(0, 1, 256)
    between = np.stack([np.interp(x, np.linspace(0, 1, len(colours)), colours[:, c]) for c in range(3)], 1)
    assert np.abs(between - matplotlib.colormaps["magma"](x)[:, :3] * 255).max() < 6


def test_an_evaluation_without_class_names_takes_the_models(tmp_path):
    import json

    from maskscope.app.evaluation import EvaluationRun

    (tmp_path / "details.json").write_text(json.dumps({"metrics": {}, "info": {"model": "net"}}))
    classes = {"net": ["tench, Tinca tinca", "goldfish"], "other": ["x", "y"]}
    assert EvaluationRun(tmp_path, classes).class_names == {"0": "tench", "1": "goldfish"}
    (tmp_path / "details.json").write_text(json.dumps({"metrics": {}, "info": {
        "model": "net", "class_names": {"1": "carp"}}}))
    assert EvaluationRun(tmp_path, classes).class_names == {"0": "tench", "1": "carp"}
    assert EvaluationRun(tmp_path).class_names == {"1": "carp"}
