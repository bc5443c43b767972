"""``maskscope train`` (cli/train.py): what --out may replace, and settings refused before training."""

from __future__ import annotations

from pathlib import Path

import pytest
from fixtures import METHOD_TESTS, error_line, own_error_line, random_photo
from PIL import Image

from maskscope.cli.main import main

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def train_setup(tmp_path: Path, monkeypatch):
    monkeypatch.syspath_prepend(METHOD_TESTS)
    from test_realtime import TINY_MODULE
    from test_realtime_train import make_data

    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "tinymods.py").write_text(TINY_MODULE)
    data = make_data(tmp_path / "d")
    return tmp_path, ["train", "--data", str(data), "--classifier", "tinymods:tiny", "--epochs", "1",
                      "--batch-size", "4", "--quiet", "--checkpoint-every", "1"]


def test_train_refuses_to_replace_a_file_that_is_not_a_checkpoint(train_setup, capsys):
    """Fault: train: --out names a file that is not a checkpoint (photo.jpg) — refused, even with --overwrite;
    the file is untouched."""
    tmp, args = train_setup
    photo = tmp / "photo.jpg"
    Image.new("RGB", (20, 20), (1, 2, 3)).save(photo)
    before = photo.read_bytes()
    assert main(args + ["--out", str(photo)]) == 2
    assert "not a maskscope checkpoint" in error_line(capsys) and photo.read_bytes() == before
    assert main(args + ["--out", str(photo), "--overwrite"]) == 2  # --overwrite is for checkpoints only
    assert photo.read_bytes() == before


def test_train_needs_resume_or_overwrite_for_an_existing_checkpoint(train_setup, capsys):
    """Fault: train: --out holds a checkpoint, no --resume — refused in one line; --resume continues it,
    --overwrite replaces it."""
    tmp, args = train_setup
    ckpt = tmp / "m.pt"
    assert main(args + ["--out", str(ckpt), "--max-steps", "2"]) == 0
    capsys.readouterr()
    before = ckpt.read_bytes()
    assert main(args + ["--out", str(ckpt), "--max-steps", "1"]) == 2
    assert "--resume" in error_line(capsys) and ckpt.read_bytes() == before
    assert main(args + ["--out", str(ckpt), "--resume", "--max-steps", "3"]) == 0
    assert "after 3 steps" in capsys.readouterr().out
    assert main(args + ["--out", str(ckpt), "--overwrite", "--max-steps", "1"]) == 0
    assert "after 1 steps" in capsys.readouterr().out


@pytest.mark.parametrize("case", ["folder", "lr-nan"])
def test_train_out_folder_or_nan_lr_fail_before_training(train_setup, case, capsys):
    """Fault: train: --out is a folder, or --lr nan — one line, exit 2, before any training."""
    tmp, args = train_setup
    extra = ["--out", str(tmp)] if case == "folder" else ["--out", str(tmp / "m.pt"), "--lr", "nan"]
    assert main(args + extra) == 2
    line = error_line(capsys)
    assert ("is a folder" if case == "folder" else "learning rate") in line
    assert not list(tmp.glob("*.tmp")) and not (tmp / "m.pt").exists()


def test_train_nan_lr_is_refused(tiny, capsys):
    """Fault: train: --lr nan — 'learning rate must be positive', exit 2."""
    tmp, flags = tiny
    random_photo(tmp / "d" / "a.png")
    assert main(["train", "--data", str(tmp / "d"), "--out", str(tmp / "m.pt"), "--lr", "nan", *flags]) == 2
    assert "learning rate" in own_error_line(capsys) and not (tmp / "m.pt").exists()
