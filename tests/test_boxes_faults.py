"""Scaling a box to the model's size keeps even a one-pixel box valid, and evaluate scores it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from maskscope.boxes import box_area, iou, scale_box, validate_box
from maskscope.metrics.pointing import distance_to_box

METHOD_TESTS = str(Path(__file__).parent / "methods")


@pytest.mark.parametrize("from_size, to_size", [((227, 227), (224, 224)), ((1600, 1200), (224, 224)),
                                                ((24, 32), (240, 320)), ((300, 451), (7, 5))])
@pytest.mark.parametrize("box", [[10, 10, 10, 10], [0, 0, 0, 0], [3, 5, 3, 9], [7, 2, 11, 2]])
def test_a_degenerate_box_stays_a_valid_box_at_the_same_centre(box, from_size, to_size):
    h, w = from_size
    box = [min(box[0], w - 1), min(box[1], h - 1), min(box[2], w - 1), min(box[3], h - 1)]
    scaled = scale_box(box, from_size, to_size)
    validate_box(scaled, to_size)  # not inverted, inside the image
    assert box_area(scaled) >= 1.0 and iou(scaled, scaled) == pytest.approx(1.0)
    sy, sx = to_size[0] / h, to_size[1] / w
    centre = ((box[0] + box[2] + 1) * sx / 2 - 0.5, (box[1] + box[3] + 1) * sy / 2 - 0.5)
    x = min(max(centre[0], 0.0), to_size[1] - 1.0)
    y = min(max(centre[1], 0.0), to_size[0] - 1.0)
    assert distance_to_box((x, y), scaled) == pytest.approx(0.0, abs=1e-9)


def test_boxes_wider_than_a_pixel_scale_as_before():
    assert scale_box([0, 0, 226, 226], (227, 227), (224, 224)) == pytest.approx((0.0, 0.0, 223.0, 223.0))
    assert scale_box([10, 20, 109, 59], (100, 200), (50, 100)) == (5.0, 10.0, 54.0, 29.0)


def test_evaluate_scores_an_image_whose_only_box_is_one_pixel(tmp_path, monkeypatch, capsys):
    from maskscope.cli.main import main

    monkeypatch.syspath_prepend(METHOD_TESTS)
    from test_realtime import TINY_MODULE

    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "tinymods.py").write_text(TINY_MODULE)
    data = tmp_path / "d"
    (data / "images").mkdir(parents=True)
    notes = {}
    for i in range(3):
        Image.fromarray(np.full((227, 227, 3), 60 * i, np.uint8)).save(data / "images" / f"i{i}.png")
        notes[f"i{i}.png"] = {"class_index": i, "width": 227, "height": 227, "boxes": [[10, 10, 10, 10]]}
    (data / "annotations.json").write_text(json.dumps(notes))
    out = tmp_path / "o"
    code = main(["evaluate", "--data", str(data), "--methods", "center", "--classifier", "tinymods:tiny",
                 "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "inverted box" not in err and "Traceback" not in err
    metrics = json.loads((out / "metrics.json").read_text())["center"]
    assert metrics["n_report"] + metrics["n_tune"] == 3  # every image scored
    assert metrics["loc_error_fixed@0.5"] == 1.0  # a half-image box never overlaps one pixel by IoU 0.5
