"""Crisp masks: a smooth stage one, then a full-resolution stage that drives the mask to 0/1."""

from __future__ import annotations

import pytest
import torch
from fixtures import QuadrantClassifier, quadrant_images

import maskscope as ms
from maskscope.errors import ConfigError, TargetError
from maskscope.methods.optimise import Settings
from maskscope.objectives import crispness

STAGE_ONE = Settings(iterations=40, mask_scale=4, l1=0.01 * 256 / 784)


def test_crisp_masks_are_near_binary_and_on_the_quadrant(quadrant_model):
    e = ms.crisp_mask(
        quadrant_model,
        quadrant_images(1),
        target=0,
        perturbation="constant",  # a faint blur already kills this toy's fine pattern
        settings=Settings(iterations=60, mask_scale=4, l1=0.01 * 256 / 784),
        crisp_iterations=60,
    )
    mask = e.masks[0, 0]
    binary_fraction = float(((mask < 0.1) | (mask > 0.9)).float().mean())
    assert binary_fraction > 0.9
    assert float(mask[:32, :32].sum() / mask.sum()) >= 0.9
    assert e.method == "crisp" and e.history.shape[0] == 120


def test_the_second_stage_sharpens_the_first_and_records_both(quadrant_model):
    images = quadrant_images(2)
    smooth = ms.meaningful_perturbation(quadrant_model, images, target=0, perturbation="constant",
                                        preset="fong2017-paper-blur", iterations=40, mask_scale=4,
                                        l1=0.01 * 256 / 784, early_stop=False)
    crisp = ms.crisp_mask(quadrant_model, images, target=0, perturbation="constant", settings=STAGE_ONE,
                          crisp_iterations=30)
    assert (crispness(crisp.masks) < 0.5 * crispness(smooth.masks)).all()
    assert crisp.history.shape == (70, 2) and crisp.iterations_used.tolist() == [70, 70]
    assert crisp.params["crisp_iterations"] == 30 and crisp.params["iterations"] == 40
    assert crisp.targets.tolist() == [[0], [0]]


def test_early_stopping_applies_to_each_stage(quadrant_model):
    e = ms.crisp_mask(quadrant_model, quadrant_images(1), target=0, perturbation="constant",
                      settings=Settings(iterations=200, mask_scale=4, l1=0.01 * 256 / 784),
                      crisp_iterations=200, early_stop=True)
    assert e.params["early_stop"] is True
    assert int(e.iterations_used[0]) < 400 and e.history.shape[0] == 400


def test_the_presets_default_target_reaches_stage_one(quadrant_model):
    """fong2017-loc explains the top 5 classes when no target is given; this toy has 2."""
    with pytest.raises(TargetError, match="top 5 of 2 classes"):
        ms.crisp_mask(quadrant_model, quadrant_images(1), preset="fong2017-loc", iterations=1,
                      crisp_iterations=1)


@pytest.mark.parametrize("kwargs, error", [
    (dict(crisp_iterations=0), ConfigError),
    (dict(crisp_iterations=2.5), ConfigError),
    (dict(settings=Settings(mask_scale=0)), ConfigError),
    (dict(target=7), TargetError),
    (dict(target=[0, 1]), TargetError),  # two targets for one image
])
def test_bad_options_are_typed_errors(kwargs, error):
    with pytest.raises(error):
        ms.crisp_mask(QuadrantClassifier(), quadrant_images(1), **{"iterations": 1, **kwargs})


def test_a_batch_gives_each_image_its_own_result(quadrant_model):
    images = quadrant_images(2, seed=4)
    images[1] = images[1].flip(-1)
    options = dict(target=0, perturbation="constant", settings=Settings(iterations=20, mask_scale=4),
                   crisp_iterations=10)
    both = ms.crisp_mask(quadrant_model, images, **options)
    second = ms.crisp_mask(quadrant_model, images[1:], **options)
    assert torch.allclose(both.masks[1], second.masks[0], atol=1e-4)
