"""Figures redraw exactly what was scored: the perturbation object travels in the Explanation."""

from __future__ import annotations

import torch
from fixtures import TINY_SETTINGS, QuadrantClassifier, quadrant_images

import maskscope as ms
from maskscope.objectives import class_score
from maskscope.perturb import Blur, Noise
from maskscope.viz import perturbed_images, save_figure


def test_the_figure_redraws_the_perturbation_that_was_scored_not_a_default_one(tmp_path):
    model = QuadrantClassifier().eval()
    images = quadrant_images(2)
    pert = Noise(std=0.45, seed=7)  # not the defaults: rebuilding "noise" by name would differ
    e = ms.meaningful_perturbation(model, images, target=0, perturbation=pert, **TINY_SETTINGS)
    assert e.perturbation is pert and e[[1]].perturbation is pert
    shown, game = perturbed_images(e)
    assert game == "delete" and torch.equal(shown, pert(images, 1 - e.masks))
    assert not torch.equal(shown, Noise()(images, 1 - e.masks))
    # the panel's score is the stored p_deleted: the same image goes into the model
    with torch.no_grad():
        p = class_score(model(shown), e.targets, "prob")
    assert torch.allclose(p, e.p_deleted, atol=1e-6)
    save_figure(e, 0, tmp_path / "figure.png")
    assert (tmp_path / "figure.png").stat().st_size > 0


def test_methods_without_their_own_perturbation_are_scored_and_drawn_with_blur():
    model = QuadrantClassifier().eval()
    images = quadrant_images(1)
    e = ms.methods.get_method("center")(model, images, target=0)
    assert isinstance(e.perturbation, Blur)
    with torch.no_grad():
        p = class_score(model(perturbed_images(e)[0]), e.targets, "prob")
    assert torch.allclose(p, e.p_deleted, atol=1e-6)
