"""What the metrics take as masks: (B, 1, H, W) or (B, H, W) in [0, 1]; raw attributions are refused."""

from __future__ import annotations

import pytest
import torch
from fixtures import QuadrantClassifier

from maskscope import BlackBox
from maskscope.errors import ConfigError, NonFiniteError
from maskscope.masks import normalise_saliency
from maskscope.metrics import probability_drop, saliency_metric
from maskscope.metrics.base import check_masks


@pytest.fixture
def model() -> BlackBox:
    return BlackBox(QuadrantClassifier(size=32).eval(), input_size=(32, 32), mean=(0.0,) * 3, std=(1.0,) * 3)


def captum_saliency(images: torch.Tensor) -> torch.Tensor:
    """What Captum's ``Saliency`` returns: one value per channel, any scale (here up to 2.4)."""
    return torch.linspace(0, 2.4, images.numel()).view_as(images)


def test_a_captum_attribution_is_one_clear_line_not_a_number(model):
    """Fault: metrics: raw Captum attributions (B, 3, H, W), values up to 2.4 — refused in one line
    naming the shape the metrics take, not scored as a "% drop"."""
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with pytest.raises(ConfigError, match=r"\(B, 1, H, W\) or \(B, H, W\), got \(2, 3, 32, 32\)") as error:
        probability_drop(model, x, captum_saliency(x), target=0)
    assert "\n" not in str(error.value) and "normalise_saliency" in str(error.value)
    with pytest.raises(ConfigError, match="masks must be shaped"):
        saliency_metric(model, x, target=0, masks=captum_saliency(x))


def test_values_outside_0_1_are_refused_and_normalising_makes_them_masks(model):
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    one_channel = captum_saliency(x)[:, :1]
    with pytest.raises(ConfigError, match=r"values in \[0, 1\].*got \[0, 1\.6\]"):
        probability_drop(model, x, one_channel, target=0)
    masks = normalise_saliency(captum_saliency(x))  # explicit: magnitude, max over channels, min-max
    assert masks.shape == (2, 1, 32, 32) and float(masks.min()) == 0.0 and float(masks.max()) == 1.0
    assert probability_drop(model, x, masks, target=0).shape == (2,)


def test_single_masks_and_batches_have_their_own_shapes():
    check_masks(torch.rand(4, 1, 8, 8))
    check_masks(torch.rand(4, 8, 8))
    check_masks(torch.rand(8, 8), batched=False)
    check_masks(torch.rand(1, 8, 8), batched=False)
    with pytest.raises(ConfigError, match=r"\(H, W\) or \(1, H, W\)"):
        check_masks(torch.rand(3, 8, 8), batched=False)
    with pytest.raises(NonFiniteError):
        check_masks(torch.full((1, 1, 4, 4), float("nan")))
