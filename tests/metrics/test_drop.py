"""The probability drop (metrics/drop.py) with an analytic classifier."""

from __future__ import annotations

import pytest
import torch
from fixtures import MeanModel
from fixtures import square_image as _square_image

from maskscope import Constant
from maskscope.metrics import ProbabilityDrop, box_to_mask, probability_drop


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
