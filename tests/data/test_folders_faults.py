"""A key twice in ``annotations.json`` is refused by every reader of it (evaluate's folders, train's
data, summarize's labels), with one line naming the key: the JSON reader would keep the last."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from maskscope.errors import DataError


def entry(label: int) -> str:
    return f'{{"class_index": {label}, "boxes": [[2, 3, 20, 15]], "width": 32, "height": 24}}'


def folder(root: Path, text: str) -> Path:
    (root / "images").mkdir(parents=True)
    for name in ("a.png", "b.png"):
        Image.fromarray(np.full((24, 32, 3), 127, np.uint8)).save(root / "images" / name)
    (root / "annotations.json").write_text(text)
    return root


DUPLICATE_IMAGE = f'{{"a.png": {entry(1)}, "b.png": {entry(2)}, "a.png": {entry(3)}}}'
DUPLICATE_FIELD = '{"a.png": {"class_index": 1, "class_index": 5, "width": 32, "height": 24}}'


@pytest.mark.parametrize("text, key", [(DUPLICATE_IMAGE, "a.png"), (DUPLICATE_FIELD, "class_index")])
def test_every_reader_refuses_a_duplicate_key(tmp_path, text, key):
    from maskscope.data.folders import load_folder
    from maskscope.methods.realtime.data import read_folder
    from maskscope.summaries.masks import read_annotations

    root = folder(tmp_path, text)
    readers = (lambda: load_folder(root), lambda: read_folder(root),
               lambda: read_annotations(root / "images"))
    for read in readers:
        with pytest.raises(DataError) as caught:
            read()
        message = str(caught.value)
        assert f"key {key!r} appears twice" in message and "\n" not in message


def test_a_duplicate_key_is_one_line_from_the_cli(tmp_path, capsys):
    from maskscope.cli.main import main

    root = folder(tmp_path / "d", DUPLICATE_IMAGE)
    assert main(["evaluate", "--data", str(root), "--methods", "center", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.startswith("maskscope: error")]
    assert len(lines) == 1 and "'a.png' appears twice" in lines[0] and "Traceback" not in err
