"""Figures redraw exactly what was scored (the perturbation object travels in the Explanation), and
the Figure-1-style panel shows image + p, perturbed image + p, the mask on its own scale + colour bar."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from fixtures import TINY_SETTINGS, QuadrantClassifier, quadrant_images
from PIL import Image

import maskscope as ms
from maskscope import viz
from maskscope.explanation import Explanation
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




def faint_explanation() -> Explanation:
    """One 32×32 image whose mask peaks at 0.3: on a fixed [0, 1] scale it would be a dim blob."""
    ys, xs = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
    mask = 0.3 * torch.exp(-((ys - 12) ** 2 + (xs - 20) ** 2) / 40.0)
    images = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    return Explanation(masks=mask[None, None], images=images, targets=torch.tensor([[3]]),
                       class_names=["tabby cat"], method="meaningful",
                       p_original=torch.tensor([0.9973]), p_deleted=torch.tensor([0.0007]),
                       params={"perturbation": "blur", "game": "delete"})


def test_figure_has_scores_and_a_colour_bar_on_the_mask_range(tmp_path):
    import matplotlib.pyplot as plt

    exp = faint_explanation()
    fig = viz.explanation_figure(exp, 0)
    try:
        panels, bar = fig.axes[:3], fig.axes[3:]
        assert len(bar) == 1  # the colour bar
        assert "tabby cat" in panels[0].get_title() and "0.9973" in panels[0].get_title()
        assert "deleted" in panels[1].get_title() and "0.0007" in panels[1].get_title()
        image = panels[2].get_images()[0]
        lo, hi = image.get_clim()
        assert lo == pytest.approx(float(exp.masks.min())) and hi == pytest.approx(0.3, abs=1e-4)
        assert image.get_cmap().name == viz.MASK_CMAP != "jet"
        assert bar[0].get_ylim() == pytest.approx((lo, hi), rel=1e-4)
    finally:
        plt.close(fig)
    exp.save(tmp_path, figures=True)
    png = tmp_path / "image_0000_figure.png"
    assert png.is_file()
    # the faint mask's peak gets the top colour of the map: the panel is not a dim blob
    pixels = np.asarray(Image.open(png).convert("RGB")).astype(int)
    top = (np.array(plt.get_cmap(viz.MASK_CMAP)(1.0)[:3]) * 255).astype(int)
    assert (np.abs(pixels - top).sum(axis=2) < 30).sum() > 20


def test_constant_mask_gets_the_unit_scale_and_a_method_without_scores_still_draws(tmp_path):
    assert viz.mask_range(np.zeros((4, 4))) == (0.0, 1.0)
    assert viz.mask_range(np.ones((4, 4))) == (0.0, 1.0)
    exp = faint_explanation()
    exp.p_original = exp.p_deleted = None
    exp.method = "gradcam"
    viz.save_figure(exp, 0, tmp_path / "f.png")
    assert Image.open(tmp_path / "f.png").size[0] > 500


def test_importing_and_writing_figures_leaves_the_users_matplotlib_alone(tmp_path):
    """The library draws its files outside pyplot: importing it keeps the user's backend (a
    notebook's inline one; pdf here, set the way a user would) and saving adds no pyplot figure,
    while ``Explanation.plot()`` gives a pyplot figure so that a notebook shows it."""
    import subprocess
    import sys
    from pathlib import Path

    code = (
        "import matplotlib.pyplot as plt, torch\n"
        "import maskscope as ms, maskscope.viz, maskscope.evaluate.plots, maskscope.analysis.adversarial\n"
        "from fixtures import TINY_SETTINGS, QuadrantClassifier, quadrant_images\n"
        "e = ms.meaningful_perturbation(QuadrantClassifier().eval(), quadrant_images(1), target=0,"
        " **TINY_SETTINGS)\n"
        f"maskscope.viz.save_figure(e, 0, {str(tmp_path / 'f.png')!r})\n"
        "print(plt.get_backend(), len(plt.get_fignums()))\n"
        "e.plot(0)\n"
        "print(len(plt.get_fignums()))\n"
    )
    tests = Path(__file__).resolve().parent
    env = {"MPLBACKEND": "pdf", "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin",
           "PYTHONPATH": f"{tests}:{tests.parent / 'src'}"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["pdf", "0", "1"]
    assert (tmp_path / "f.png").stat().st_size > 1000
