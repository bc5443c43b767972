"""The masker's training data (methods/realtime/data.py): annotation entries checked, their labels used."""

from __future__ import annotations

import json

import pytest
from fixtures import own_error_line as one_line
from fixtures import random_photo

from maskscope.cli.main import main

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("entry, expected", [
    ([1, 2], "expected an object, got list"),
    ({"class_index": "3"}, "'class_index' must be an integer of at least 0, got '3'"),
    ({"class_index": 2.0}, "'class_index' must be an integer of at least 0, got 2.0"),
    ({"class_index": -1}, "'class_index' must be an integer of at least 0, got -1"),  # item 13
    ({"class_index": 1, "width": "wide", "height": 4}, "'width' must be an integer"),
])
def test_train_annotation_entries_are_checked(tiny, entry, expected, capsys):
    """Fault: train: an annotation entry that is a list, a class_index that is a string or negative — one line
    naming the entry."""
    tmp, flags = tiny
    data = tmp / "d"
    for i in range(2):
        random_photo(data / f"i{i}.png", i)
    (data / "annotations.json").write_text(json.dumps({"i0.png": {"class_index": 1}, "i1.png": entry}))
    ckpt = tmp / "m.pt"
    args = ["train", "--data", str(data), "--out", str(ckpt), "--epochs", "1", "--batch-size", "2", "--quiet"]
    assert main([*args, *flags]) == 2
    line = one_line(capsys)
    assert "entry 'i1.png'" in line and expected in line, line
    assert not ckpt.exists()


def test_train_labels_from_annotations_are_used(tiny):
    """Fault: train: labels from annotations.json — used as the training targets."""
    from maskscope.methods.realtime.data import read_folder

    tmp, _ = tiny
    data = tmp / "d"
    for i in range(2):
        random_photo(data / f"i{i}.png", i)
    notes = {"i0.png": {"class_index": 3, "width": 40, "height": 30}}
    (data / "annotations.json").write_text(json.dumps(notes))
    samples = read_folder(data)
    assert [(s.label, s.size) for s in samples] == [(3, (30, 40)), (None, None)]
