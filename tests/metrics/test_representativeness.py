"""Fong & Vedaldi §5.2 representativeness and the cross-perturbation drop, on models whose answer is
known by hand."""

from __future__ import annotations

import math

import pytest
import torch
from fixtures import QuadrantClassifier, quadrant_images
from torch import nn

from maskscope.errors import ConfigError, MaskscopeError
from maskscope.metrics import (
    ALPHAS,
    Representativeness,
    cross_perturbation_drop,
    curve_auc,
    representativeness,
)
from maskscope.perturb import Constant

pytestmark = pytest.mark.usefixtures("one_thread")

N = 20  # image side; the mask is a ramp with one value per column
A, B = 8.0, -4.0


class TopHalfMean(nn.Module):
    """logit_0 = A·(mean of the red channel over the top half) + B, logit_1 = 0: the class
    probability is σ(A·r + B), a known function of one region's mean."""

    def __init__(self) -> None:
        super().__init__()
        self.gain = nn.Parameter(torch.tensor(A))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r = x[:, 0, : N // 2].mean(dim=(1, 2))
        logit = self.gain * r + B
        return torch.stack([logit, torch.zeros_like(logit)], dim=1)


def half_image(n: int = 1) -> torch.Tensor:
    """Red 1 on the top half, 0 below (red mean colour 0.5); green/blue flat."""
    x = torch.full((n, 3, N, N), 0.3)
    x[:, 0] = 0.0
    x[:, 0, : N // 2] = 1.0
    return x


def column_ramp(n: int = 1) -> torch.Tensor:
    """Salient mask (j + 0.5)/N in column j: at α = k/20 exactly the last k columns have s > 1 − α."""
    ramp = (torch.arange(N, dtype=torch.float32) + 0.5) / N
    return ramp.expand(n, 1, N, N).clone()


def sig(v: float) -> float:
    return 1.0 / (1.0 + math.exp(-v))


def test_constant_deletion_gives_the_hand_worked_curve_auc_and_areas():
    result = representativeness(TopHalfMean(), half_image(), column_ramp(), target=0,
                                perturbations=["constant"], smooth_sigma=0.0)
    # deleting the last k of N columns with the mean colour: the top-half red mean is (1 − f) + f·0.5
    p0, p_full = sig(A + B), sig(A * 0.5 + B)
    expected = []
    for k, alpha in enumerate(ALPHAS):
        assert alpha == pytest.approx(0.05 * k)
        f = k / N
        expected.append((sig(A * (1 - f + 0.5 * f) + B) - p_full) / (p0 - p_full))
    got = result.scores["constant"][0]
    assert got.tolist() == pytest.approx(expected, abs=1e-5)
    assert got[0] == 1.0  # nothing is deleted at α = 0
    assert result.areas[0].tolist() == pytest.approx([k / N for k in range(20)], abs=1e-6)
    trapezoid = sum(0.05 * (expected[k] + expected[k + 1]) / 2 for k in range(19)) / 0.95
    assert float(result.auc()["constant"][0]) == pytest.approx(trapezoid, abs=1e-5)
    assert float(result.at(0.5)["constant"][0]) == pytest.approx(expected[10], abs=1e-5)
    assert float(result.p_original[0]) == pytest.approx(p0, abs=1e-6)
    assert float(result.p_full["constant"][0]) == pytest.approx(p_full, abs=1e-6)


def test_whole_image_mask_reaches_zero_and_an_untouched_image_gives_nan():
    ones = torch.ones(1, 1, N, N)
    result = representativeness(TopHalfMean(), half_image(), ones, target=0, smooth_sigma=0.0)
    for name, scores in result.scores.items():
        assert scores[0, 0] == 1.0, name
        assert torch.all(scores[0, 1:] == 0.0), name
    # a flat image: blur, mean colour and the full perturbations leave the red mean unchanged for
    # blur and constant, so the normalisation is undefined there (NaN, not a division by ~0)
    flat = torch.full((1, 3, N, N), 0.6)
    result = representativeness(TopHalfMean(), flat, ones, target=0, perturbations=["fixed-blur", "constant"])
    assert all(torch.isnan(s).all() for s in result.scores.values())


def test_smoothing_then_thresholding_of_a_box_uses_one_forward_per_distinct_region():
    calls = []

    class Counting(TopHalfMean):
        def forward(self, x):
            calls.append(x.shape[0])
            return super().forward(x)

    box = torch.zeros(2, 1, N, N)
    box[:, :, 2:8, 3:12] = 1.0  # binary, unsmoothed: every α ≥ 0.05 deletes the same region
    result = representativeness(Counting(), half_image(2), box, target=0, perturbations=["constant"],
                                smooth_sigma=0.0, batch_size=64)
    # original + reference + one composite per image (after at most one probe for the class count)
    assert calls[-3:] == [2, 2, 2] and len(calls) <= 4
    s = result.scores["constant"]
    assert torch.all(s[:, 1:] == s[:, 1:2]) and torch.all(s[:, 0] == 1.0) and torch.all(s[:, 1] < 1.0)
    assert result.areas[0, 1] == pytest.approx(6 * 9 / N**2)


def test_batching_does_not_change_the_scores():
    gen = torch.Generator().manual_seed(3)
    images = quadrant_images(5, seed=1)
    masks = torch.nn.functional.avg_pool2d(torch.rand(5, 1, 64, 64, generator=gen), 9, 1, 4)
    masks = (masks - masks.amin((2, 3), keepdim=True)) / (masks.amax((2, 3), keepdim=True) - 0.3)
    model = QuadrantClassifier().eval()
    ref = representativeness(model, images, masks.clamp(0, 1), target=0, batch_size=500)
    for bs in (1, 7):
        got = representativeness(model, images, masks.clamp(0, 1), target=0, batch_size=bs)
        for name in ref.scores:
            assert torch.allclose(got.scores[name], ref.scores[name], atol=1e-5, equal_nan=True), name
    # image by image gives the same numbers as the batch
    one = representativeness(model, images[3:4], masks[3:4].clamp(0, 1), target=0)
    for name in ref.scores:
        assert torch.allclose(one.scores[name][0], ref.scores[name][3], atol=1e-5, equal_nan=True)


def test_model_is_left_as_found():
    model = QuadrantClassifier().train()
    model.scale.requires_grad_(False)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    masks = torch.zeros(2, 1, 64, 64)
    masks[:, :, 4:28, 4:28] = 1.0
    representativeness(model, quadrant_images(2), masks, target=0)
    cross_perturbation_drop(model, quadrant_images(2), masks, target=0)
    assert model.training and not model.scale.requires_grad and model.bias.requires_grad
    assert all(p.grad is None for p in model.parameters())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_accumulator_averages_images_and_skips_undefined_ones():
    acc = Representativeness(TopHalfMean(), perturbations=["constant"], smooth_sigma=0.0)
    acc.update(half_image(), column_ramp(), target=0)
    acc.update(torch.full((1, 3, N, N), 0.6), column_ramp(), target=0)  # undefined: NaN, skipped
    out = acc.compute()
    single = representativeness(TopHalfMean(), half_image(), column_ramp(), target=0,
                                perturbations=["constant"], smooth_sigma=0.0)
    assert out["n"] == {"constant": 1}
    assert out["curves"]["constant"] == pytest.approx(single.scores["constant"][0].tolist(), abs=1e-6)
    assert out["auc"]["constant"] == pytest.approx(float(single.auc()["constant"][0]), abs=1e-6)
    assert out["area"] == pytest.approx([k / N for k in range(20)], abs=1e-6)  # both images, same mask
    with pytest.raises(ConfigError):
        Representativeness().compute()


def test_cross_perturbation_drop_by_hand_and_for_every_operator():
    half = torch.full((1, 1, N, N), 0.5)
    drops = cross_perturbation_drop(TopHalfMean(), half_image(), half, target=0)
    assert list(drops) == ["blur", "fixed-blur", "constant", "noise"]
    # half-deleting every pixel with the mean colour: top-half red mean 0.5·1 + 0.5·0.5 = 0.75
    p0, p = sig(A + B), sig(0.75 * A + B)
    assert float(drops["constant"][0]) == pytest.approx(100 * (p0 - p) / p0, abs=1e-4)
    points = cross_perturbation_drop(TopHalfMean(), half_image(), half, target=0,
                                     perturbations={"grey": Constant((0.3, 0.3, 0.3))}, relative=False)
    assert float(points["grey"][0]) == pytest.approx(100 * (p0 - sig(A * (0.5 + 0.15) + B)), abs=1e-4)
    zero = cross_perturbation_drop(TopHalfMean(), half_image(), torch.zeros(1, 1, N, N), target=0)
    assert all(abs(float(v[0])) < 1e-4 for v in zero.values())


def test_bad_arguments_are_typed_errors():
    x, m = half_image(), column_ramp()
    with pytest.raises(ConfigError, match="do not match"):
        representativeness(TopHalfMean(), x, m[:, :, :10], target=0)
    with pytest.raises(ConfigError, match="increasing"):
        representativeness(TopHalfMean(), x, m, target=0, alphas=[0.5, 0.2])
    with pytest.raises(MaskscopeError, match="unknown perturbation"):
        cross_perturbation_drop(TopHalfMean(), x, m, target=0, perturbations=["smudge"])
    with pytest.raises(ConfigError, match="not evaluated"):
        representativeness(TopHalfMean(), x, m, target=0, alphas=[0.0, 0.1]).at(0.5)
    assert float(curve_auc([0.0, 1.0], torch.tensor([1.0, 0.0]))) == pytest.approx(0.5)
