"""The reference rows of an evaluation: the box baselines and the ground-truth boxes as masks."""

from __future__ import annotations

import pytest
import torch
from fixtures import QuadrantNet

from maskscope.evaluate.reference import center_box, full_image, ground_truth_boxes

SIZE = 16


def _images(batch: int = 2) -> torch.Tensor:
    return torch.rand(batch, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(1))


def test_box_baselines():
    x = _images()
    centre = center_box(QuadrantNet(), x, target=0)
    assert centre.masks.shape == (2, 1, SIZE, SIZE)
    assert float(centre.area[0]) == pytest.approx(0.5, abs=0.05)
    assert centre.masks[0, 0, SIZE // 2, SIZE // 2] == 1 and centre.masks[0, 0, 0, 0] == 0
    full = full_image(QuadrantNet(), x, target=0)
    assert bool((full.masks == 1).all())
    assert torch.allclose(full.p_preserved, full.p_original)  # keeping everything changes nothing


def test_ground_truth_boxes_as_masks():
    x = _images()
    boxes = [[[0, 0, 3, 3]], [[0, 0, 1, 1], [10, 10, 15, 15]]]
    expl = ground_truth_boxes(x, boxes, target=[5, 7])
    assert expl.masks[:, 0].flatten(1).sum(1).tolist() == [16.0, 36.0]  # the largest box
    assert expl.targets.tolist() == [[5], [7]] and expl.p_original is None
    scored = ground_truth_boxes(x, boxes, model=QuadrantNet(), target=0)
    assert scored.p_deleted is not None and scored.method == "ground-truth"
