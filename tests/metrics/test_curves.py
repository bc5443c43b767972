"""Deletion and insertion curves (metrics/curves.py), worked out by hand."""

from __future__ import annotations

import pytest
import torch
from fixtures import RegionModel

from maskscope.metrics import DeletionInsertion, deletion_insertion_auc


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
