"""Per-image early stopping in the shared optimisation loop (``optimise.EarlyStop``)."""

import json

import pytest
import torch
from fixtures import TINY_SETTINGS, QuadrantClassifier, quadrant_images

import maskscope as ms
from maskscope.errors import ConfigError
from maskscope.methods.optimise import EarlyStop

# a rule loose enough that the toy's images stop at different iterations within 80
QUICK = EarlyStop(window=5, tolerance=2e-2, min_iterations=10)


def different_images(n: int = 4) -> torch.Tensor:
    images = quadrant_images(4, seed=3)
    images[1] = images[1].flip(-1)
    images[2] = images[2] * 0.7
    return images[:n]


def test_images_stop_at_different_times_and_batch_mates_do_not_matter(quadrant_model):
    images = different_images()
    batched = ms.meaningful_perturbation(quadrant_model, images, target=0, early_stop=QUICK, **TINY_SETTINGS)
    used = batched.iterations_used.tolist()
    assert len(set(used)) > 1 and max(used) <= TINY_SETTINGS["iterations"]
    assert min(used) < TINY_SETTINGS["iterations"]
    for i in range(4):
        one = ms.meaningful_perturbation(quadrant_model, images[i : i + 1], target=0, early_stop=QUICK,
                                         **TINY_SETTINGS)
        assert int(one.iterations_used[0]) == used[i]
        assert torch.allclose(batched.masks[i], one.masks[0], atol=1e-4)
        run = batched.history[: used[i], i]
        assert torch.allclose(run, one.history[: used[i], 0], atol=1e-4)
        assert bool(batched.history[used[i] :, i].isnan().all())  # not run after it stopped


def test_fixed_schedule_runs_every_iteration(quadrant_model):
    e = ms.meaningful_perturbation(quadrant_model, different_images(2), target=0, early_stop=False,
                                   **TINY_SETTINGS)
    assert e.iterations_used.tolist() == [TINY_SETTINGS["iterations"]] * 2
    assert not bool(e.history.isnan().any())
    assert e.params["early_stop"] is False


def test_early_stopped_mask_is_as_good_as_the_full_run(quadrant_model):
    images = different_images(2)
    full = ms.meaningful_perturbation(quadrant_model, images, target=0, early_stop=False, **TINY_SETTINGS)
    short = ms.meaningful_perturbation(quadrant_model, images, target=0, early_stop=True, **TINY_SETTINGS)
    # the reported (best) loss of the stopped run is within the default tolerance's reach of the full one
    best_full = full.history.nan_to_num(float("inf")).min(0).values
    best_short = short.history.nan_to_num(float("inf")).min(0).values
    assert bool((best_short <= best_full + 0.05 * best_full.abs()).all())
    assert float((short.masks - full.masks).abs().mean()) < 0.02  # mean over pixels in [0, 1]
    assert bool((short.iterations_used < full.iterations_used).all())


def test_crisp_counts_both_stages(quadrant_model):
    e = ms.crisp_mask(quadrant_model, different_images(2), target=0, early_stop=False,
                      settings=ms.methods.optimise.Settings(iterations=6, mask_scale=4), crisp_iterations=4)
    assert e.iterations_used.tolist() == [10, 10]


def test_extremal_rows_stop_independently():
    model = QuadrantClassifier().eval()
    with torch.no_grad():
        model.scale.fill_(5.0)
    images = different_images(3)
    options = dict(areas=(0.05, 0.2), iterations=60, step=14.0, flip=False,
                   early_stop=EarlyStop(window=5, tolerance=5e-3, min_iterations=10))
    batched = ms.extremal_perturbation(model, images, target=0, **options)
    assert bool((batched.iterations_used < 60).any())
    for i in range(3):
        one = ms.extremal_perturbation(model, images[i : i + 1], target=0, **options)
        assert batched.iterations_used[2 * i : 2 * i + 2].tolist() == one.iterations_used.tolist()
        assert torch.allclose(batched.masks[2 * i : 2 * i + 2], one.masks, atol=1e-4)


def test_iterations_used_reaches_the_json(quadrant_model, tmp_path):
    e = ms.meaningful_perturbation(quadrant_model, different_images(1), target=0, early_stop=QUICK,
                                   **TINY_SETTINGS)
    e.save(tmp_path, figures=False)
    record = json.loads(next(tmp_path.glob("*.json")).read_text())
    assert record["iterations_used"] == int(e.iterations_used[0])
    assert record["params"]["early_stop"] is True and record["params"]["early_stop_window"] == 5


@pytest.mark.parametrize("rule", [dict(window=0), dict(tolerance=-1.0), dict(min_iterations=-1)])
def test_bad_rule_is_a_config_error(rule):
    with pytest.raises(ConfigError):
        EarlyStop(**rule)
