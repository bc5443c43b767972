"""Issue 12: faults that used to give silent wrong results, lost data or tracebacks. Each test
checks the exit code, the one-line message and that finished results are intact (by content)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from maskscope.cli.main import main

pytestmark = pytest.mark.usefixtures("one_thread")
METHOD_TESTS = str(Path(__file__).parent / "methods")  # test_realtime's tiny masker, also when run alone


def one_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    lines = [ln for ln in err.splitlines() if ln.startswith("maskscope: error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


# -- item 3: explain-video -------------------------------------------------------------------------
@pytest.fixture
def video_setup(tmp_path: Path, monkeypatch):
    pytest.importorskip("imageio_ffmpeg")
    monkeypatch.syspath_prepend(METHOD_TESTS)
    from test_realtime import TINY_MODULE, tiny_blackbox, tiny_masker

    from maskscope.methods.realtime import export_weights

    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "tinymods.py").write_text(TINY_MODULE)
    masker = export_weights(tiny_masker(tiny_blackbox()), tmp_path / "m.pt")
    return tmp_path, ["--classifier", "tinymods:tiny", "--masker", str(masker), "--quiet"]


def _odd_video(path: Path, size=(161, 127), frames: int = 4) -> Path:
    import imageio_ffmpeg

    w, h = size
    writer = imageio_ffmpeg.write_frames(str(path), (w, h), fps=10, macro_block_size=1, codec="ffv1",
                                         pix_fmt_out="bgr0")
    writer.send(None)
    for i in range(frames):
        frame = np.zeros((h, w, 3), np.uint8)
        frame[:, i * 10 : i * 10 + 8] = 255
        writer.send(frame)
    writer.close()
    return path


def test_odd_sized_video_is_padded_to_even_and_encoded(video_setup, capsys):
    import imageio_ffmpeg

    tmp, flags = video_setup
    out = tmp / "o.mp4"
    code = main(["explain-video", str(_odd_video(tmp / "odd.mkv")), "--out", str(out), "--json", *flags])
    assert code == 0, capsys.readouterr().err
    info = json.loads(capsys.readouterr().out)
    assert info["frames"] == 4 and info["size"] == [161, 127] and info["encoded_size"] == [162, 128]
    assert out.stat().st_size > 0 and imageio_ffmpeg.count_frames_and_secs(str(out))[0] == 4
    assert not list(tmp.glob(".o.*"))  # no temporary file left behind


@pytest.mark.parametrize("case", ["png", "png-renamed", "no-extension", "folder"])
def test_video_input_or_output_mistakes_are_one_line_and_keep_the_old_result(video_setup, case, capsys):
    tmp, flags = video_setup
    out = tmp / "o.mp4"
    out.write_bytes(b"an earlier result")
    Image.new("RGB", (40, 30), (200, 10, 10)).save(tmp / "photo.png")
    video = tmp / "photo.png"
    if case == "png-renamed":
        video = tmp / "photo.mp4"
        video.write_bytes((tmp / "photo.png").read_bytes())
    target = out
    if case in ("no-extension", "folder"):
        video = _odd_video(tmp / "odd.mkv")
        target = tmp / "noext" if case == "no-extension" else tmp
    code = main(["explain-video", str(video), "--out", str(target), *flags])
    line = one_line(capsys)
    assert code == 2
    expected = {"png": "is an image", "png-renamed": "is an image", "no-extension": "video extension",
                "folder": "is a folder"}[case]
    assert expected in line, line
    assert out.read_bytes() == b"an earlier result"
    assert not (tmp / "noext").exists()


def test_failed_encode_is_an_error_not_a_success_and_leaves_nothing(video_setup, capsys, monkeypatch):
    import maskscope.video as video_mod

    tmp, flags = video_setup
    monkeypatch.setattr(video_mod, "even_frame", lambda frame: frame)  # as before the fix: odd sizes,
    monkeypatch.setattr(video_mod, "even_size", lambda w, h: (w, h))  # which libx264 cannot encode
    out = tmp / "o.mp4"
    code = main(["explain-video", str(_odd_video(tmp / "odd.mkv")), "--out", str(out), *flags])
    line = one_line(capsys)
    assert code == 2 and "cannot encode video" in line and not out.exists()
    assert not list(tmp.glob(".o.*"))


# -- item 4: train --out ---------------------------------------------------------------------------
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
    tmp, args = train_setup
    photo = tmp / "photo.jpg"
    Image.new("RGB", (20, 20), (1, 2, 3)).save(photo)
    before = photo.read_bytes()
    assert main(args + ["--out", str(photo)]) == 2
    assert "not a maskscope checkpoint" in one_line(capsys) and photo.read_bytes() == before
    assert main(args + ["--out", str(photo), "--overwrite"]) == 2  # --overwrite is for checkpoints only
    assert photo.read_bytes() == before


def test_train_needs_resume_or_overwrite_for_an_existing_checkpoint(train_setup, capsys):
    tmp, args = train_setup
    ckpt = tmp / "m.pt"
    assert main(args + ["--out", str(ckpt), "--max-steps", "2"]) == 0
    capsys.readouterr()
    before = ckpt.read_bytes()
    assert main(args + ["--out", str(ckpt), "--max-steps", "1"]) == 2
    assert "--resume" in one_line(capsys) and ckpt.read_bytes() == before
    assert main(args + ["--out", str(ckpt), "--resume", "--max-steps", "3"]) == 0
    assert "after 3 steps" in capsys.readouterr().out
    assert main(args + ["--out", str(ckpt), "--overwrite", "--max-steps", "1"]) == 0
    assert "after 1 steps" in capsys.readouterr().out


@pytest.mark.parametrize("case", ["folder", "lr-nan"])
def test_train_out_folder_or_nan_lr_fail_before_training(train_setup, case, capsys):
    tmp, args = train_setup
    extra = ["--out", str(tmp)] if case == "folder" else ["--out", str(tmp / "m.pt"), "--lr", "nan"]
    assert main(args + extra) == 2
    line = one_line(capsys)
    assert ("is a folder" if case == "folder" else "learning rate") in line
    assert not list(tmp.glob("*.tmp")) and not (tmp / "m.pt").exists()
