"""explain-video: frames in, overlay video out, bad videos → one line and exit code 2."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from maskscope.cli.main import main
from maskscope.methods.realtime import export_weights

imageio_ffmpeg = pytest.importorskip("imageio_ffmpeg")

from test_realtime import TINY_MODULE, tiny_blackbox, tiny_masker  # noqa: E402  (tests/ is on sys.path)

pytestmark = pytest.mark.usefixtures("one_thread")


def write_video(path: Path, frames: int = 10, size: tuple[int, int] = (48, 32)) -> Path:
    w, h = size
    writer = imageio_ffmpeg.write_frames(str(path), (w, h), fps=10, macro_block_size=1)
    writer.send(None)
    for i in range(frames):
        frame = np.zeros((h, w, 3), np.uint8)
        frame[:, (i * 4) % w : (i * 4) % w + 8] = 255  # a moving bar
        writer.send(frame)
    writer.close()
    return path


@pytest.fixture
def setup(tmp_path: Path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "tinymods.py").write_text(TINY_MODULE)
    masker = export_weights(tiny_masker(tiny_blackbox()), tmp_path / "m.pt")
    return tmp_path, masker


def test_explain_video_writes_every_frame(setup, capsys):
    tmp_path, masker = setup
    video = write_video(tmp_path / "in.mp4")
    out = tmp_path / "out" / "o.mp4"
    code = main(
        [
            "explain-video",
            str(video),
            "--out",
            str(out),
            "--classifier",
            "tinymods:tiny",
            "--masker",
            str(masker),
            "--target",
            "c3",
            "--batch-size",
            "4",
            "--quiet",
            "--json",
        ]
    )
    assert code == 0
    info = json.loads(capsys.readouterr().out)
    assert info["frames"] == 10 and info["targets"] == [3] * 10 and info["size"] == [48, 32]
    assert imageio_ffmpeg.count_frames_and_secs(str(out))[0] == 10
    meta = next(imageio_ffmpeg.read_frames(str(out)))
    assert tuple(meta["size"]) == (48, 32)


@pytest.mark.parametrize("case", ["garbage", "missing", "bad-target"])
def test_bad_video_input_exits_2(setup, case: str, capsys):
    tmp_path, masker = setup
    video = tmp_path / "in.mp4"
    extra = []
    if case == "garbage":
        video.write_bytes(b"this is not a video" * 50)
    elif case == "bad-target":
        write_video(video)
        extra = ["--target", "no-such-class"]
    code = main(
        [
            "explain-video",
            str(video),
            "--out",
            str(tmp_path / "o.mp4"),
            "--classifier",
            "tinymods:tiny",
            "--masker",
            str(masker),
            "--quiet",
            *extra,
        ]
    )
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and err.startswith("maskscope: error:"), err
