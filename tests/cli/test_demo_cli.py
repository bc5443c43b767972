"""``maskscope demo`` (cli/demo.py): a truncated photo is written again and every photo explained."""

from __future__ import annotations

import numpy as np
import pytest

from maskscope.cli.main import main

pytestmark = pytest.mark.usefixtures("one_thread")


def test_demo_rewrites_a_truncated_photo_and_explains_all(tiny, monkeypatch, capsys):
    """Fault: demo: a truncated photo in --out/photos — written again, and every photo explained."""
    import maskscope.cli.demo as demo

    tmp, flags = tiny
    rng = np.random.default_rng(0)  # three small photos stand in for the seven bundled ones (speed)
    photos = {f"photo{k}": rng.integers(0, 255, (30, 40, 3), dtype=np.uint8) for k in range(3)}
    monkeypatch.setattr(demo, "demo_photos", lambda: photos)
    write_photos = demo.write_photos
    out = tmp / "demo"
    paths, rewritten = write_photos(out / "photos")
    assert rewritten == 0
    whole = {p.name: p.read_bytes() for p in paths}
    victim = paths[1]
    victim.write_bytes(whole[victim.name][: len(whole[victim.name]) // 2])  # a truncated copy
    code = main(["demo", "--out", str(out), "--iterations", "1", "--batch-size", "1", *flags])
    err = capsys.readouterr().err
    assert code == 0 and "Traceback" not in err, err
    assert "1 photos in" in err and "written again" in err
    assert {p.name: p.read_bytes() for p in paths} == whole
    index = (out / "index.html").read_text()
    assert all(f"{p.name} — " in index for p in paths)  # none silently dropped
