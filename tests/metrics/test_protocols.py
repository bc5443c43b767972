"""Metrics against masks, boxes and analytic classifiers whose answers are worked out by hand."""

from __future__ import annotations

import math

import pytest
import torch
from fixtures import MeanModel, RegionModel

from maskscope import BlackBox, Constant, DataError
from maskscope.metrics import (
    DeletionInsertion,
    LocalisationError,
    MinimalBoxes,
    PointingGame,
    ProbabilityDrop,
    SaliencyMetric,
    box_to_mask,
    center_box,
    deletion_insertion_auc,
    grid_boxes,
    localisation_correct,
    mask_box_suppression,
    max_point,
    pointing_hit,
    probability_drop,
    saliency_metric,
    smallest_suppressive_box,
    tune_threshold,
)

BLACK = Constant(color=(0.0, 0.0, 0.0))


# -- localisation -----------------------------------------------------------------------------------
def _block_mask(box, size=(40, 40)):
    return box_to_mask(box, size)


def test_localisation_is_strict_iou_above_half_with_any_box():
    mask = _block_mask([0, 0, 9, 9])
    assert not localisation_correct(mask, [[0, 0, 9, 19]])  # IoU exactly 0.5
    assert localisation_correct(mask, [[0, 0, 9, 18]])  # 100/190
    assert localisation_correct(mask, [[30, 30, 39, 39], [0, 0, 9, 18]])  # any box
    assert not localisation_correct(torch.zeros(40, 40), [[0, 0, 9, 9]])  # no box predicted
    with pytest.raises(DataError):
        localisation_correct(mask, [[0, 0, 45, 9]])


def test_localisation_error_accumulates_and_tuning_picks_alpha():
    gt = [0, 0, 9, 9]
    mask = 0.4 * _block_mask([0, 0, 29, 29]) + 0.6 * _block_mask(gt)  # halo 0.4, core 1.0
    masks = torch.stack([mask, mask, _block_mask([20, 20, 29, 29])]).unsqueeze(1)
    boxes = [[gt], [gt], [gt]]
    acc = LocalisationError("value", 0.5)
    acc.update(masks[:2], boxes[:2])
    acc.update(masks[2:], boxes[2:])
    assert len(acc) == 3 and acc.compute() == pytest.approx(1 / 3)
    best, errors = tune_threshold(masks, boxes, "value", alphas=(0.3, 0.5, 0.7))
    assert best == 0.5 and errors == {0.3: 1.0, 0.5: pytest.approx(1 / 3), 0.7: pytest.approx(1 / 3)}
    best, errors = tune_threshold(masks, boxes, "mean")
    assert len(errors) == 21 and errors[best] == min(errors.values())


# -- pointing ---------------------------------------------------------------------------------------
def test_pointing_tolerance_edges():
    mask = torch.zeros(60, 60)
    mask[30, 30] = 1.0
    assert max_point(mask) == (30, 30)
    assert pointing_hit(mask, [[0, 0, 15, 59]])  # 15 px to the left: on the tolerance edge
    assert not pointing_hit(mask, [[0, 0, 14, 59]])  # 16 px
    assert pointing_hit(mask, [[0, 0, 20, 20]])  # diagonal √200 ≈ 14.1 px
    assert not pointing_hit(mask, [[0, 0, 18, 18]])  # √288 ≈ 17 px: a square enlargement would hit
    assert pointing_hit(mask, [[0, 0, 18, 18], [25, 25, 35, 35]])  # any box
    assert not pointing_hit(mask, [[0, 0, 15, 59]], tolerance=0)


def test_pointing_ties_point_at_the_centre_of_the_tied_maxima():
    mask = box_to_mask(center_box(61, 61), (61, 61))
    assert max_point(mask) == (30, 30)
    game = PointingGame()
    game.update(mask[None, None].expand(2, 1, -1, -1), [[[25, 25, 35, 35]], [[0, 0, 5, 5]]])
    assert game.compute() == 0.5


# -- saliency metric --------------------------------------------------------------------------------
def _square_image(value_in=0.8, value_out=0.2, box=(4, 4, 11, 11), size=16):
    x = torch.full((1, 3, size, size), value_out)
    x[..., box[1] : box[3] + 1, box[0] : box[2] + 1] = value_in
    return x


def test_saliency_metric_with_known_probabilities():
    model = MeanModel()
    x = _square_image()  # the 8×8 square is a = 64/256 = 0.25 of the image, red mean inside 0.8
    mask = box_to_mask([4, 4, 11, 11], (16, 16))[None, None]
    s = saliency_metric(model, x, target=0, masks=mask)
    assert float(s) == pytest.approx(math.log(0.25) - math.log(0.8), abs=1e-5)
    # a tiny crop is floored at a = 0.05
    tiny = saliency_metric(model, x, target=0, boxes=[[5, 5, 6, 6]])
    assert float(tiny) == pytest.approx(math.log(0.05) - math.log(0.8), abs=1e-5)
    # empty mask → whole image: a = 1, p = 0.2 + 0.6·0.25 = 0.35
    empty = saliency_metric(model, x, target=0, masks=torch.zeros(1, 1, 16, 16))
    assert float(empty) == pytest.approx(-math.log(0.35), abs=1e-5)
    # several boxes for one image: the mean of their metrics
    both = saliency_metric(model, x, target=0, boxes=[[[4, 4, 11, 11], [0, 0, 15, 15]]])
    assert float(both) == pytest.approx((math.log(0.25 / 0.8) - math.log(0.35)) / 2, abs=1e-5)


def test_saliency_metric_resizes_crops_to_the_classifier_input_and_batches():
    inner = MeanModel()
    bb = BlackBox(inner, input_size=(8, 8), mean=(0, 0, 0), std=(1, 1, 1))
    x = torch.cat([_square_image(), _square_image(value_in=0.6)])
    acc = SaliencyMetric(bb)
    values = acc.update(x, target=[0, 0], boxes=[[4, 4, 11, 11], [4, 4, 11, 11]])
    assert inner.sizes[-1] == (8, 8)
    assert values.tolist() == pytest.approx([math.log(0.25 / 0.8), math.log(0.25 / 0.6)], abs=1e-5)
    assert acc.compute() == pytest.approx(float(values.mean()), abs=1e-6) and len(acc) == 2
    with pytest.raises(ValueError):
        saliency_metric(bb, x, target=0)


# -- deletion ---------------------------------------------------------------------------------------
def test_probability_drop_with_an_analytic_model():
    model = MeanModel()
    x = _square_image()  # p0 = 0.35
    mask = box_to_mask([4, 4, 11, 11], (16, 16))[None, None]
    grey = Constant(color=(0.2, 0.2, 0.2))  # deleting the square leaves a uniform 0.2 image
    drop = probability_drop(model, x, mask, target=0, perturbation=grey)
    assert float(drop) == pytest.approx(100 * (0.35 - 0.2) / 0.35, abs=1e-4)
    absolute = probability_drop(model, x, mask, target=0, perturbation=grey, relative=False)
    assert float(absolute) == pytest.approx(15.0, abs=1e-4)
    assert float(probability_drop(model, x, torch.zeros_like(mask), target=0)) == pytest.approx(0.0, abs=1e-5)
    acc = ProbabilityDrop(model, perturbation=grey)
    acc.update(x, mask, target=0)
    assert acc.compute() == pytest.approx(float(drop))


def test_smallest_suppressive_box_on_a_region_model():
    x = torch.ones(2, 3, 16, 16)
    result = smallest_suppressive_box(
        RegionModel(), x, target=0, levels=(0.25, 0.5, 0.99), grid=4, perturbation=BLACK, batch_size=7
    )
    # R is 2×2 grid cells: one cell suppresses 25 %, two 50 %, all four 100 %
    assert result.areas.tolist() == [[16.0, 32.0, 64.0]] * 2
    assert result.boxes[0][2] == (0.0, 0.0, 7.0, 7.0)
    assert result.p_original.tolist() == pytest.approx([0.95, 0.95])
    assert result.p_blurred.tolist() == pytest.approx([0.05, 0.05])
    assert len(grid_boxes((16, 16), 4)) == 100


def test_mask_box_suppression_places_a_methods_boxes():
    x = torch.ones(1, 3, 16, 16)
    mask = torch.zeros(1, 1, 16, 16)
    mask[..., :8, :8] = 0.5
    mask[..., :4, :8] = 1.0  # top half of R is the most salient
    result = mask_box_suppression(RegionModel(), x, mask, target=0, levels=(0.5, 0.9), perturbation=BLACK)
    assert result.areas.tolist() == [[32.0, 64.0]]
    acc = MinimalBoxes(levels=(0.5, 0.9))
    acc.update(result)
    assert acc.compute() == {0.5: 32.0, 0.9: 64.0}
    # a mask that misses R never suppresses below 90 % except with the whole image (h = 0)
    away = torch.zeros(1, 1, 16, 16)
    away[..., 12:, 12:] = 1.0
    result = mask_box_suppression(RegionModel(), x, away, target=0, levels=(0.5,), perturbation=BLACK)
    assert result.areas.tolist() == [[256.0]]


def test_deletion_and_insertion_curves_by_hand():
    x = torch.ones(1, 3, 16, 16)
    saliency = torch.zeros(1, 1, 16, 16)
    saliency[..., :8, :8] = 1.0  # R first; within R raster order (stable sort)
    result = deletion_insertion_auc(RegionModel(), x, saliency, target=0, steps=8, insertion_substrate="zero")
    # each step changes 32 px = half of R: deletion 0.95, 0.5, 0.05, ...; insertion 0.05, 0.5, 0.95, ...
    assert result.deletion_curve[0, :4].tolist() == pytest.approx([0.95, 0.5, 0.05, 0.05], abs=1e-5)
    assert float(result.deletion[0]) == pytest.approx(0.1625, abs=1e-5)
    assert float(result.insertion[0]) == pytest.approx(0.8375, abs=1e-5)
    acc = DeletionInsertion(RegionModel(), steps=8, insertion_substrate="zero")
    acc.update(x, saliency, target=0)
    assert acc.compute() == pytest.approx({"deletion_auc": 0.1625, "insertion_auc": 0.8375}, abs=1e-5)
