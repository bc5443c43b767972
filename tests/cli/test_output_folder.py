"""``--out`` (cli.common.output_folder): a command that fails before writing anything leaves no empty
folder behind, and never removes a folder it did not create or one holding something."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from fixtures import own_images
from PIL import Image

from maskscope.cli.main import main

OWN = ["--classifier", "fixtures:own_classifier", "--classifier-arg", "size=32"]


def _board(path: Path, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    x = own_images(1, (32, 32), seed=seed)[0]
    Image.fromarray((x.permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)).save(path)
    return path


def _run(capsys, args: list[str]) -> tuple[int, str]:
    code = main(args)
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, err


@pytest.mark.parametrize(
    ("command", "message"),
    [
        (["explain", "{image}", "--method", "center", "--target", "99", *OWN], "out of range"),
        (["explain", "{missing}", "--method", "center", *OWN], "no such file"),  # only bad files
        (["evaluate", "--data", "{missing}", "--methods", "center", *OWN], "no such"),
        (["summarize", "{folder}", "--target", "no such class", *OWN], "no such class"),
        (["demo", "--classifier", "no_such_module:build"], "cannot import classifier"),
    ],
    ids=["explain-target", "explain-bad-files", "evaluate-data", "summarize-target", "demo-classifier"],
)
def test_a_failed_command_leaves_no_folder_it_created(tmp_path, capsys, command, message):
    image = _board(tmp_path / "in" / "board.png")
    _board(tmp_path / "in" / "board2.png", seed=1)  # summarize needs two
    out = tmp_path / "new" / "deeper" / "out"
    values = {"image": str(image), "missing": str(tmp_path / "missing"), "folder": str(image.parent)}
    code, err = _run(capsys, [a.format(**values) for a in command] + ["--out", str(out)])
    assert code == 2 and message in err, err
    assert not (tmp_path / "new").exists()


def test_a_folder_that_was_there_or_holds_output_is_kept(tmp_path, capsys):
    image = _board(tmp_path / "board.png")
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _ = _run(capsys, ["explain", str(image), "--method", "center", "--target", "99", *OWN,
                            "--out", str(empty)])
    assert code == 2 and empty.is_dir()  # the user's own folder, even though empty
    out = tmp_path / "out"
    code, err = _run(capsys, ["explain", str(image), str(tmp_path / "missing.png"), "--method", "center",
                              *OWN, "--no-figures", "--out", str(out)])
    assert code == 2 and "missing.png" in err  # one bad file: a failure, but the good one was written
    assert (out / "board.npy").is_file()
