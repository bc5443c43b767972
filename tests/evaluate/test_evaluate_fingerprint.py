"""evaluate's mask cache is keyed by the classifier's content (``model_fingerprint``), so a model
with the same name and other weights never reuses another's masks and metrics."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from test_evaluate import config, make_folder
from torch import nn

from maskscope.blackbox import BlackBox
from maskscope.data.folders import load_folder
from maskscope.errors import ConfigError
from maskscope.evaluate import evaluate

pytestmark = pytest.mark.usefixtures("one_thread")


def model(seed: int) -> BlackBox:
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(),
                        nn.Linear(16, 5))
    return BlackBox(net.eval(), input_size=(32, 32), mean=(0.5,) * 3, std=(0.25,) * 3, name="mymodel")


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
