"""The saliency metric (metrics/saliency_metric.py) against analytic classifiers."""

from __future__ import annotations

import math

import pytest
import torch
from fixtures import MeanModel
from fixtures import square_image as _square_image

from maskscope import BlackBox
from maskscope.metrics import SaliencyMetric, box_to_mask, saliency_metric


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
