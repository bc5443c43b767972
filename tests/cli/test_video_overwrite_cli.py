"""explain-video never replaces its input, and replaces an existing --out only with --overwrite."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from fixtures import METHOD_TESTS

from maskscope.cli.main import main

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def setup(tmp_path: Path, monkeypatch):
    imageio_ffmpeg = pytest.importorskip("imageio_ffmpeg")
    monkeypatch.syspath_prepend(METHOD_TESTS)
    from test_realtime import TINY_MODULE, tiny_blackbox, tiny_masker

    from maskscope.methods.realtime import export_weights

    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "tinymods.py").write_text(TINY_MODULE)
    masker = export_weights(tiny_masker(tiny_blackbox()), tmp_path / "m.pt")
    video = tmp_path / "in.mp4"
    writer = imageio_ffmpeg.write_frames(str(video), (32, 24), fps=10, macro_block_size=1)
    writer.send(None)
    for i in range(3):
        writer.send(bytes([40 * i]) * (32 * 24 * 3))
    writer.close()
    return tmp_path, video, ["--classifier", "tinymods:tiny", "--masker", str(masker), "--quiet"]


def one_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.startswith("maskscope: error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.mark.parametrize("spelling", ["same", "dotted", "link", "hardlink"])
def test_the_input_video_is_never_the_output(setup, spelling, capsys):
    tmp, video, flags = setup
    before = video.read_bytes()
    out = {"same": video, "dotted": tmp / "." / "in.mp4", "link": tmp / "link.mp4",
           "hardlink": tmp / "hard.mp4"}[spelling]
    if spelling == "link":
        out.symlink_to(video)
    if spelling == "hardlink":
        os.link(video, out)
    for extra in ([], ["--overwrite"]):
        assert main(["explain-video", str(video), "--out", str(out), *flags, *extra]) == 2
        assert "is the input video" in one_line(capsys)
    assert video.read_bytes() == before


def test_an_existing_out_needs_overwrite(setup, capsys):
    tmp, video, flags = setup
    out = tmp / "o.mp4"
    out.write_bytes(b"an earlier result")
    assert main(["explain-video", str(video), "--out", str(out), *flags]) == 2
    line = one_line(capsys)
    assert "already exists" in line and "--overwrite" in line and out.read_bytes() == b"an earlier result"
    assert main(["explain-video", str(video), "--out", str(out), "--overwrite", *flags]) == 0
    assert out.read_bytes() != b"an earlier result" and out.stat().st_size > 0
