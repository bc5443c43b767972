"""evaluate's mask cache is keyed by the classifier's content (``model_fingerprint``), so a model
with the same name and other weights never reuses another's masks and metrics."""

from __future__ import annotations

from pathlib import Path

import pytest
from fixtures import seeded_model
from test_evaluate import config, make_folder

from maskscope.blackbox import BlackBox
from maskscope.data.folders import load_folder
from maskscope.errors import ConfigError
from maskscope.evaluate import evaluate

pytestmark = pytest.mark.usefixtures("one_thread")


def model(seed: int) -> BlackBox:
    return seeded_model(seed, classes=5)


def _run(folder: Path, out: Path, seed: int) -> dict:
    cfg = config(methods=["gradient"], references=False)
    return evaluate(load_folder(folder, require_boxes=True), model(seed), out, cfg).info


def test_same_name_other_weights_is_refused_not_reused(tmp_path):
    data, out = make_folder(tmp_path / "data", n=3), tmp_path / "out"
    assert _run(data, out, 0)["computed_now"] == {"gradient": 3}
    assert _run(data, out, 0)["computed_now"] == {"gradient": 0}  # the same weights: reused
    with pytest.raises(ConfigError, match="other settings.*model_fingerprint"):
        _run(data, out, 1)
    assert _run(data, tmp_path / "other", 1)["computed_now"] == {"gradient": 3}
