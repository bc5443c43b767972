"""Localisation (metrics/localisation.py): strict IoU with any box, and the threshold tuning."""

from __future__ import annotations

import pytest
import torch

from maskscope import DataError
from maskscope.metrics import LocalisationError, box_to_mask, localisation_correct, tune_threshold


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


















