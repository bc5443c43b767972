"""A masker records the fingerprint of the classifier it was trained for (the hash of its weights),
so that it is refused for another classifier of the same architecture, name and class count."""

from __future__ import annotations

import copy
import json
import warnings

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from maskscope.accelerate import accelerate
from maskscope.blackbox import BlackBox
from maskscope.cli.main import main
from maskscope.errors import CheckpointError
from maskscope.methods.realtime import (
    build_masker,
    classifier_fingerprint,
    export_weights,
    load_masker,
    masker_config,
    realtime_saliency,
)

pytestmark = pytest.mark.usefixtures("one_thread")


def tiny(seed: int = 0) -> BlackBox:
    """The same architecture, name and class count for every seed; only the weights differ."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                            nn.AdaptiveAvgPool2d(4), nn.Flatten(), nn.Linear(128, 5))
    return BlackBox(net.eval(), input_size=(32, 32), mean=(0.5,) * 3, std=(0.25,) * 3, name="tiny")


def _masker_file(path, bb: BlackBox):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1)
        masker = build_masker(bb, masker_config(bb, "small"))
    return export_weights(masker, path)


def test_fingerprint_is_the_weights_not_the_object():
    bb = tiny()
    fingerprint = classifier_fingerprint(bb)
    assert fingerprint == classifier_fingerprint(copy.deepcopy(bb).requires_grad_(False))
    assert fingerprint == classifier_fingerprint(accelerate(bb, channels_last=True))  # a private copy
    assert fingerprint != classifier_fingerprint(tiny(seed=1))
    other = copy.deepcopy(bb)
    with torch.no_grad():
        other.model[1].running_mean[0] += 1e-3  # a buffer counts too
    assert fingerprint != classifier_fingerprint(other)
    assert classifier_fingerprint(BlackBox(lambda x: x.mean((2, 3)), input_size=None)) is None


def test_a_masker_for_other_weights_is_refused_naming_both(tmp_path):
    path = _masker_file(tmp_path / "m.pt", tiny())
    assert load_masker(tiny(), path).config["classifier_fingerprint"] == classifier_fingerprint(tiny())
    other = tiny(seed=1)
    with pytest.raises(CheckpointError) as info:
        load_masker(other, path)
    message = str(info.value)
    assert classifier_fingerprint(tiny())[:12] in message and classifier_fingerprint(other)[:12] in message
    assert "allow_other_classifier=True" in message and "\n" not in message
    with pytest.raises(CheckpointError, match="trained for classifier"):
        realtime_saliency(other, torch.rand(1, 3, 32, 32), masker=path)
    e = realtime_saliency(other, torch.rand(1, 3, 32, 32), masker=path, allow_other_classifier=True)
    assert e.masks.shape == (1, 1, 32, 32)


def test_an_old_checkpoint_without_fingerprint_warns_once_and_loads(tmp_path):
    path = _masker_file(tmp_path / "old.pt", tiny())
    data = torch.load(path, weights_only=True)
    del data["config"]["classifier_fingerprint"]
    torch.save(data, path)
    with pytest.warns(UserWarning, match="without a classifier fingerprint"):
        load_masker(tiny(seed=1), path)  # cannot be told apart: accepted, by its name
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_masker(tiny(), path)  # once per file


def test_the_shipped_masker_loads_without_a_warning():
    from maskscope.zoo import load_classifier

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        masker = load_masker(load_classifier())
    assert masker.config["classifier"] == "efficientnet-lite0"


def _photo(tmp_path):
    path = tmp_path / "noise.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(path)
    return path


def test_cli_a_mismatched_masker_is_one_line_and_exit_2_unless_overridden(tmp_path, capsys):
    masker = _masker_file(tmp_path / "m.pt", tiny())
    command = ["explain", str(_photo(tmp_path)), "--classifier", "test_masker_fingerprint:tiny",
               "--classifier-arg", "seed=1", "--method", "realtime", "--masker", str(masker),
               "--out", str(tmp_path / "out"), "--json", "--no-figures"]
    assert main(command) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--masker-any-classifier" in err and "weights" in err, err
    assert main([*command, "--masker-any-classifier"]) == 0, capsys.readouterr().err
    [record] = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert record["method"] == "realtime"
