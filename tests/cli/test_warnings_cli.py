"""Warnings on the command line: one line each, ``maskscope: warning: …``, never a Python source
line, never inside a progress bar."""

from __future__ import annotations

import warnings

import numpy as np
from fixtures import own_images
from PIL import Image

from maskscope.cli.main import main, one_line_warnings


def test_a_warning_is_one_line_after_any_bar(tmp_path, capsys):
    for i in range(3):
        x = own_images(seed=i)[0]
        pixels = (x.permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)
        Image.fromarray(pixels).save(tmp_path / f"b{i}.png")
    code = main(["explain", str(tmp_path / "b0.png"), str(tmp_path / "b1.png"), str(tmp_path / "b2.png"),
                 "--classifier", "fixtures:own_classifier", "--method", "gradcam", "--batch-size", "1",
                 "--out", str(tmp_path / "out"), "--no-figures"])
    err = capsys.readouterr().err
    assert code == 0, err
    lines = [line for line in err.split("\n") if "maskscope: warning" in line]
    assert len(lines) == 1, err  # once, not once per batch
    assert lines[0].split("\r")[-1].startswith("maskscope: warning: Grad-CAM: no layer given, using mix")
    assert "UserWarning" not in err and ".py:" not in err and "warnings.warn" not in err


def test_the_handler_is_restored_and_multiline_messages_become_one_line(capsys):
    before = warnings.showwarning
    with one_line_warnings(), warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.warn("first line\n  second line", stacklevel=1)
    assert warnings.showwarning is before
    assert capsys.readouterr().err == "maskscope: warning: first line second line\n"
