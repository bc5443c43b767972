"""Crafted masker checkpoints: every field the masker is built from is checked before anything is
built, so each bad one is a CheckpointError of one line naming the field, not a ValueError,
AttributeError or KeyError from deep in the model code."""

from __future__ import annotations

import pytest
import torch
from test_realtime import tiny_blackbox, tiny_masker

from maskscope.errors import CheckpointError
from maskscope.methods.realtime import export_weights, load_masker

pytestmark = pytest.mark.usefixtures("one_thread")


def drop(key):
    return lambda config: config.pop(key)


def put(key, value):
    return lambda config: config.__setitem__(key, value)


CONFIG_CASES = {
    "version is text": (put("version", "1"), "'version'"),
    "version is true": (put("version", True), "'version'"),
    "version is huge text": (put("version", "9" * 500), "'version'"),
    "num_classes is text": (put("num_classes", "5"), "'num_classes'"),
    "num_classes is a float": (put("num_classes", 5.0), "'num_classes'"),
    "num_classes is zero": (put("num_classes", 0), "'num_classes'"),
    "classifier is missing": (drop("classifier"), "'classifier'"),
    "encoder is a number": (put("encoder", 3), "'encoder'"),
    "encoder is auto": (put("encoder", "auto"), "'encoder'"),
    "widths are missing": (drop("widths"), "'widths'"),
    "widths are text": (put("widths", "64"), "'widths'"),
    "widths are empty": (put("widths", []), "'widths'"),
    "a width is zero": (put("widths", [0]), "'widths'"),
    "blocks are missing": (drop("blocks"), "'blocks'"),
    "blocks are a float": (put("blocks", 1.5), "'blocks'"),
    "input_size is text": (put("input_size", "32x32"), "'input_size'"),
    "input_size has one side": (put("input_size", [32]), "'input_size'"),
    "selector is unknown": (put("selector", "magic"), "'selector'"),
    "output_gate is text": (put("output_gate", "yes"), "'output_gate'"),
}


@pytest.fixture
def checkpoint(tmp_path):
    bb = tiny_blackbox()
    path = export_weights(tiny_masker(bb), tmp_path / "m.pt")
    return bb, path, torch.load(path, weights_only=True)


def expect_one_line(bb, path, field: str) -> None:
    with pytest.raises(CheckpointError) as caught:
        load_masker(bb, path)
    message = str(caught.value)
    assert str(path) in message and field in message and "\n" not in message and len(message) < 300


@pytest.mark.parametrize("case", list(CONFIG_CASES))
def test_a_crafted_config_is_one_checkpoint_error(checkpoint, case):
    bb, path, data = checkpoint
    edit, field = CONFIG_CASES[case]
    edit(data["config"])
    torch.save(data, path)
    expect_one_line(bb, path, field)


@pytest.mark.parametrize("model", [[1, 2, 3], "weights", {"layer.weight": [1.0, 2.0]}, {3: torch.zeros(1)}])
def test_a_model_that_is_not_named_tensors_is_one_checkpoint_error(checkpoint, model):
    bb, path, data = checkpoint
    data["model"] = model
    torch.save(data, path)
    expect_one_line(bb, path, "'model'")


def test_the_exported_masker_still_loads(checkpoint):
    bb, path, _ = checkpoint
    assert load_masker(bb, path).config["widths"] == torch.load(path, weights_only=True)["config"]["widths"]


def test_a_newer_format_version_says_so(checkpoint):
    bb, path, data = checkpoint
    data["config"]["version"] = 99
    data["config"].pop("widths")  # a newer layout may name things otherwise: the version speaks first
    torch.save(data, path)
    expect_one_line(bb, path, "newer maskscope")


def test_checkpoint_errors_are_cut_at_a_word_boundary(tmp_path):
    """Fault: explain: a corrupt masker checkpoint — one line, its reason cut at a word boundary."""
    from maskscope.methods.realtime.checkpoint import shorten

    text = "weights do not fit: " + " ".join(f"size mismatch for decoder.layer{i}.weight" for i in range(20))
    short = shorten(text, 160)
    assert len(short) <= 160 and short.endswith(" …")
    assert text.startswith(short[: -len(" …")]) and text[len(short) - 2] == " "  # cut between words
    assert shorten("short\nreason", 160) == "short reason"


def test_an_unreadable_checkpoint_reason_is_cut_between_words(tmp_path, monkeypatch):
    """Fault: explain: an unreadable checkpoint with a long reason — cut between words."""
    import torch

    from maskscope.errors import CheckpointError
    from maskscope.methods.realtime.checkpoint import read_checkpoint

    def load(*args, **kwargs):
        raise RuntimeError("invalid load key, " + "word " * 60)

    monkeypatch.setattr(torch, "load", load)
    path = tmp_path / "m.pt"
    path.write_bytes(b"x")
    with pytest.raises(CheckpointError) as err:
        read_checkpoint(path)
    reason = str(err.value).split("(", 1)[1][:-1]
    assert reason.endswith(" …") and set(reason.split()) <= {"invalid", "load", "key,", "word", "…"}


def test_a_failed_export_leaves_the_previous_weights_whole(tmp_path, monkeypatch):
    """Training rewrites its best weights as it goes: a write that dies half-way (a full disk, a
    killed run) must leave the file that was there loadable, not truncated."""
    bb = tiny_blackbox()
    path = export_weights(tiny_masker(bb), tmp_path / "best.pt")
    before = path.read_bytes()

    def dies_half_way(obj, handle, *args, **kwargs):
        handle.write(before[: len(before) // 2])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", dies_half_way)
    with pytest.raises(OSError):
        export_weights(tiny_masker(bb), path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert load_masker(bb, path) is not None
    assert [p.name for p in tmp_path.iterdir()] == ["best.pt"]  # no temporary file left behind
