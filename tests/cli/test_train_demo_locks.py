"""``train --out m.pt`` and ``demo --out DIR`` take the project's output locks: a second run into
the same checkpoint, or a demo into a folder that explain (or another demo) holds, stops at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from maskscope.cli.main import main
from maskscope.storage import file_lock, output_lock

pytestmark = pytest.mark.usefixtures("one_thread")
METHOD_TESTS = str(Path(__file__).parents[1] / "methods")


@pytest.fixture
def tiny(tmp_path: Path, monkeypatch):
    monkeypatch.syspath_prepend(METHOD_TESTS)
    from test_realtime import TINY_MODULE
    from test_realtime_train import make_data

    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "tinymods.py").write_text(TINY_MODULE)
    train = ["train", "--data", str(make_data(tmp_path / "d")), "--classifier", "tinymods:tiny",
             "--epochs", "1", "--batch-size", "4", "--quiet", "--max-steps", "1"]
    return tmp_path, train


def one_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.startswith("maskscope: error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_a_second_train_into_the_same_checkpoint_stops_at_once(tiny, capsys):
    tmp, train = tiny
    train = [*train, "--checkpoint-every", "1"]
    out = tmp / "m.pt"
    with file_lock(out):  # what a running train holds
        assert main([*train, "--out", str(out)]) == 2
        line = one_line(capsys)
        assert f"{out} is in use by another maskscope run" in line and not out.exists()
        assert main([*train, "--out", str(tmp / "other.pt")]) == 0  # another file of the folder: free
    assert "saved" in capsys.readouterr().out
    assert main([*train, "--out", str(out)]) == 0  # released when the run ends
    assert out.is_file()


@pytest.mark.parametrize("holder", ["explain", "demo"])
def test_demo_waits_for_no_one_in_a_folder_another_run_holds(tiny, holder, capsys):
    tmp, _ = tiny
    out = tmp / "demo"
    out.mkdir()
    with output_lock(out):  # what a running explain (or demo) holds
        assert main(["demo", "--out", str(out), "--classifier", "tinymods:tiny", "--iterations", "1"]) == 2
        assert f"{out} is in use by another maskscope run" in one_line(capsys)
    assert {p.name for p in out.iterdir()} <= {".maskscope.lock"}  # nothing written into it


def test_train_says_saved_only_when_the_checkpoint_holds_the_last_step(tiny, capsys):
    tmp, train = tiny
    out = tmp / "m.pt"
    assert main([*train, "--out", str(out)]) == 0  # --max-steps 1 stops before the first checkpoint
    said = capsys.readouterr().out
    assert not said.startswith("saved") and "stopped after 1 steps" in said and "no checkpoint yet" in said
    assert not out.exists()
    assert main([*train, "--out", str(out), "--checkpoint-every", "1"]) == 0
    assert f"saved {out} after 1 steps" in capsys.readouterr().out and out.is_file()
