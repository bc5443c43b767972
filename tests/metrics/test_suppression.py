"""The smallest suppressive box (metrics/suppression.py) on a classifier whose evidence is one region."""

from __future__ import annotations

import pytest
import torch
from fixtures import RegionModel

from maskscope import Constant
from maskscope.metrics import MinimalBoxes, grid_boxes, mask_box_suppression, smallest_suppressive_box

BLACK = Constant(color=(0.0, 0.0, 0.0))


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
