"""Box geometry (``maskscope.boxes``): both conventions, IoU, thresholding rules, box → mask."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from fixtures import METHOD_TESTS
from PIL import Image

from maskscope import DataError
from maskscope.boxes import (
    box_area,
    box_iou_exclusive,
    box_to_mask,
    center_box,
    iou,
    mask_to_box,
    scale_box,
    threshold_mask,
    validate_box,
)
from maskscope.metrics.pointing import distance_to_box


def test_iou_of_known_boxes():
    assert iou([0, 0, 9, 9], [0, 0, 9, 9]) == 1.0
    assert iou([0, 0, 9, 9], [5, 5, 14, 14]) == pytest.approx(25 / 175)
    assert iou([0, 0, 4, 4], [4, 4, 8, 8]) == pytest.approx(1 / 49)  # inclusive: one shared pixel
    assert iou([0, 0, 4, 4], [5, 5, 8, 8]) == 0.0
    assert iou([0, 0, 9, 9], [0, 0, 9, 19]) == pytest.approx(0.5)


@pytest.mark.parametrize(
    "box, size",
    [
        ([5, 0, 4, 3], None),
        ([0, 5, 3, 4], None),
        ([0, 0, 1], None),
        ([0, 0, float("nan"), 3], None),
        ([-1, 0, 3, 3], (10, 10)),
        ([0, 0, 10, 3], (10, 10)),
        (["a", 0, 1, 1], None),
    ],
)
def test_invalid_boxes_raise_data_error(box, size):
    with pytest.raises(DataError):
        validate_box(box, size)


def test_annotation_style_float_boxes_inside_last_pixel_are_valid():
    assert validate_box([0.0, 1.14, 226.63, 226.24], (227, 227)) == (0.0, 1.14, 226.63, 226.24)
    assert scale_box([0, 0, 226, 226], (227, 227), (224, 224)) == pytest.approx((0, 0, 223, 223))


def test_center_box_spans_half_the_area_and_is_centred():
    x0, y0, x1, y1 = center_box(100, 100)
    assert (x0, y0, x1, y1) == (14, 14, 84, 84)
    area = (x1 - x0 + 1) * (y1 - y0 + 1)
    assert area / 10000 == pytest.approx(0.5, abs=0.01)
    x0, y0, x1, y1 = center_box(60, 120)
    assert x0 + x1 == pytest.approx(119, abs=1) and y0 + y1 == pytest.approx(59, abs=1)


def test_value_mean_fixed_thresholds():
    m = torch.zeros(10, 10)
    m[2:4, 3:6] = 1.0  # core
    m[1:6, 1:8] = torch.maximum(m[1:6, 1:8], torch.tensor(0.4))  # halo
    assert mask_to_box(m, "value", 0.5) == (3, 2, 5, 3)
    assert mask_to_box(m, "value", 0.3) == (1, 1, 7, 5)
    assert mask_to_box(m * 4, "value", 0.5) == (3, 2, 5, 3)  # relative to the maximum
    assert mask_to_box(m * 4, "fixed", 0.5) == (1, 1, 7, 5)  # absolute
    # mean = (6·1 + 29·0.4)/100 = 0.176: α = 2 → 0.352 keeps the halo, α = 3 → 0.528 the core
    assert mask_to_box(m, "mean", 2.0) == (1, 1, 7, 5)
    assert mask_to_box(m, "mean", 3.0) == (3, 2, 5, 3)
    assert mask_to_box(torch.zeros(5, 5), "value", 0.5) is None
    assert mask_to_box(torch.zeros(5, 5), "mean", 0.5) is None


def test_value_threshold_normalises_min_max_not_by_the_maximum_alone():
    # a floor of 0.6 everywhere, a ring at 0.7 and a core at 1.0: by the maximum alone α = 0.5 keeps
    # everything (0.6 ≥ 0.5); min–max it is 0.6 + 0.5 · 0.4 = 0.8, which only the core reaches
    m = torch.full((10, 10), 0.6)
    m[2:7, 2:8] = 0.7
    m[3:5, 4:6] = 1.0
    assert mask_to_box(m, "value", 0.5) == (4, 3, 5, 4)
    assert mask_to_box(m, "value", 0.2) == (2, 2, 7, 6)  # 0.68: the ring too, not the floor
    assert mask_to_box(m, "value", 0.0) == (0, 0, 9, 9)
    assert int(threshold_mask(torch.full((4, 4), 0.3), "value", 0.5).sum()) == 16  # constant: all


def test_energy_threshold_on_known_mass():
    m = torch.zeros(3, 6)
    m[1, :5] = torch.tensor([4.0, 3.0, 2.0, 1.0, 0.0])  # total mass 10
    assert mask_to_box(m, "energy", 0.5) == (0, 1, 1, 1)  # 4 + 3 = 7 ≥ 5
    assert mask_to_box(m, "energy", 0.7) == (0, 1, 1, 1)  # exactly 7
    assert mask_to_box(m, "energy", 0.75) == (0, 1, 2, 1)  # needs 7.5 → add the 2
    assert mask_to_box(m, "energy", 0.0) == (0, 1, 0, 1)  # at least the maximum
    assert mask_to_box(m, "energy", 1.0) == (0, 1, 3, 1)  # zero-valued pixels are never needed
    tied = torch.tensor([[3.0, 0.0, 0.0, 3.0], [0.0, 2.0, 2.0, 0.0]])
    assert int(threshold_mask(tied, "energy", 0.3).sum()) == 2  # both 3s, whatever the sort order


def test_box_to_mask_rounds_float_boxes():
    mask = box_to_mask([1.4, 0.6, 3.5, 2.2], (5, 6))
    assert mask.sum() == 4 * 2 and mask[1, 1] == 1 and mask[1, 4] == 1 and mask[0, 1] == 0




def test_exclusive_edge_boxes_have_no_plus_one():
    # the same pixels as inclusive [0, 0, 9, 9] and [5, 5, 14, 14]: the IoUs agree
    assert box_iou_exclusive([[0, 0, 10, 10]], [[5, 5, 15, 15]])[0, 0] == pytest.approx(25 / 175)
    assert box_iou_exclusive([[0, 0, 5, 5]], [[5, 5, 9, 9]])[0, 0] == 0.0  # touching edges share nothing


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
