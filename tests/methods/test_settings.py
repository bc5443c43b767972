"""Method settings (methods/settings.py and each method's options): bad values are ConfigErrors naming the
setting; numpy integers are accepted."""

from __future__ import annotations

import numpy as np
import pytest
from fixtures import quadrant_images
from fixtures import run_fast as run

from maskscope import ConfigError
from maskscope.methods.optimise import Settings

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("name, option, value, message", [
    ("meaningful", "mask_scale", 0, "mask_scale"), ("meaningful", "score", "foo", "score"),
    ("meaningful", "lr", float("nan"), "lr"), ("meaningful", "iterations", 2.5, "iterations"),
    ("meaningful", "jitter", -1, "jitter"), ("meaningful", "l1", float("inf"), "l1"),
    ("crisp", "iterations", 2.5, "iterations"), ("crisp", "crisp_iterations", 1.5, "crisp_iterations"),
    ("crisp", "settings", Settings(mask_scale=0), "mask_scale"),
    ("meaningful", "alternate", "smudge", "alternate"), ("meaningful", "harden", 1.5, "harden"),
    ("extremal", "lr", float("nan"), "lr"), ("extremal", "iterations", 2.5, "iterations"),
    ("extremal", "score", "odds", "score"), ("extremal", "blur_sigma", 0.0, "blur_sigma"),
    ("gradient", "score", "foo", "score"), ("occlusion", "score", "foo", "score"),
])
def test_bad_settings_are_config_errors(model, name, option, value, message):
    """Fault: API: bad settings (mask_scale=0, score='foo', lr=nan, iterations=2.5, ...) — ConfigError naming
    the setting."""
    with pytest.raises(ConfigError, match=message):
        run(name, model, quadrant_images(1), **{option: value})


def test_numpy_integer_settings_are_accepted(model):
    """Fault: API: numpy integer settings — accepted."""
    result = run("meaningful", model, quadrant_images(1), iterations=np.int64(1), mask_scale=np.int64(8))
    assert result.masks.shape == (1, 1, 64, 64)
