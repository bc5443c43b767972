"""explain-video: frames in, overlay video out, bad videos → one line and exit code 2."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from fixtures import METHOD_TESTS
from fixtures import error_line as one_line
from PIL import Image

from maskscope.cli.main import main
from maskscope.methods.realtime import export_weights

imageio_ffmpeg = pytest.importorskip("imageio_ffmpeg")

sys.path.insert(0, METHOD_TESTS)  # test_realtime's tiny masker, also when run alone
from test_realtime import TINY_MODULE, tiny_blackbox, tiny_masker  # noqa: E402

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
    """Fault: explain-video: a video of odd size (161×127) — padded to even (162×128) and encoded, no
    temporary file left."""
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
    """Fault: explain-video: an image given as the video, an --out without a video extension or a folder — one
    line, exit 2, the earlier result kept."""
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
    """Fault: explain-video: the encoder fails — an error with exit 2, not a success, and no output or
    temporary file left."""
    import maskscope.video as video_mod

    tmp, flags = video_setup
    monkeypatch.setattr(video_mod, "even_frame", lambda frame: frame)  # as before the fix: odd sizes,
    monkeypatch.setattr(video_mod, "even_size", lambda w, h: (w, h))  # which libx264 cannot encode
    out = tmp / "o.mp4"
    code = main(["explain-video", str(_odd_video(tmp / "odd.mkv")), "--out", str(out), *flags])
    line = one_line(capsys)
    assert code == 2 and "cannot encode video" in line and not out.exists()
    assert not list(tmp.glob(".o.*"))
