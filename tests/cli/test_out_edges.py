"""``--out`` at the file-system edges (cli.common.out_path, cli.evaluate.result_files, cli.explain
expand_inputs, storage.write_atomic): refused before any work in one line, and nothing of the
user's replaced or half-written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fixtures import random_photo

from maskscope.cli.main import main

OWN = ["--classifier", "fixtures:own_classifier", "--classifier-arg", "size=32"]
EVAL = ["--methods", "center", *OWN, "--quiet", "--examples", "2"]
TESTS = Path(__file__).resolve().parents[1]


def one_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.startswith("maskscope: error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def _data(folder: Path, n: int = 4) -> Path:
    for k in range(n):
        random_photo(folder / f"i{k}.png", k, size=(32, 32))
    return folder


@pytest.mark.parametrize("command", [
    ["explain", "x.png"], ["evaluate", "--data", "d"], ["summarize", "d"], ["demo"], ["adversarial"],
    ["train", "--data", "d"], ["explain-video", "v.mp4"], ["parts", "d", "--part-a", "a", "--part-b", "b"],
], ids=lambda c: c[0])
def test_an_empty_out_is_refused_on_every_command(tmp_path, monkeypatch, command, capsys):
    """Fault: every command: `--out ''` (the working folder) — one line, exit 2, nothing written."""
    monkeypatch.chdir(tmp_path)
    assert main([*command, "--out", ""]) == 2
    err = capsys.readouterr().err
    assert "--out" in err and "empty" in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


def test_evaluate_checks_that_examples_can_be_a_folder_before_any_work(tmp_path, capsys):
    """Fault: evaluate: `--out/examples` is a file — one line, exit 2, before any work (no metrics.json)."""
    data = _data(tmp_path / "d")
    out = tmp_path / "out"
    out.mkdir()
    (out / "examples").write_text("my notes")
    assert main(["evaluate", "--data", str(data), "--out", str(out), *EVAL]) == 2
    assert "examples is a file" in one_line(capsys)
    assert sorted(p.name for p in out.iterdir() if p.name[0] != ".") == ["examples"]  # no metrics.json
    assert (out / "examples").read_text() == "my notes"


def test_evaluate_never_replaces_a_results_file_it_did_not_write(tmp_path, capsys):
    """Fault: evaluate: --out holds a `metrics.md` or `details.json` it did not write (or one edited since) —
    one line, exit 2, before any work; its own results are replaced by a rerun."""
    data = _data(tmp_path / "d")
    out = tmp_path / "out"
    assert main(["evaluate", "--data", str(data), "--out", str(out), *EVAL]) == 0
    assert main(["evaluate", "--data", str(data), "--out", str(out), *EVAL]) == 0  # its own: a rerun
    capsys.readouterr()
    (out / "metrics.md").write_text("my edits")
    assert main(["evaluate", "--data", str(data), "--out", str(out), *EVAL]) == 2
    assert "metrics.md was not written by maskscope" in one_line(capsys)
    assert (out / "metrics.md").read_text() == "my edits"
    other = tmp_path / "other"
    other.mkdir()
    (other / "details.json").write_text('{"mine": 1}')
    assert main(["evaluate", "--data", str(data), "--out", str(other), *EVAL]) == 2
    assert "details.json was not written by maskscope" in one_line(capsys)
    assert (other / "details.json").read_text() == '{"mine": 1}' and not (other / "metrics.json").exists()


def test_explain_into_its_own_input_folder_never_explains_its_outputs(tmp_path, capsys):
    """Fault: explain: `explain DIR --out DIR`, run twice — the files its manifest lists are skipped as
    inputs, with one line; only the photo is explained."""
    folder = tmp_path / "photos"
    random_photo(folder / "cat.png", 1)
    flags = ["--method", "gradient", *OWN, "--json"]
    for run in range(2):
        assert main(["explain", str(folder), "--out", str(folder), *flags]) == 0
        captured = capsys.readouterr()
        records = [json.loads(line) for line in captured.out.splitlines()]
        assert [Path(r["image"]).name for r in records] == ["cat.png"], captured.err
        if run:
            assert "3 input files skipped: maskscope wrote them" in captured.err  # mask, overlay, figure
    pngs = sorted(p.name for p in folder.glob("*.png"))
    assert pngs == ["cat.png", "cat_figure.png", "cat_mask.png", "cat_overlay.png"]
    # the outputs named one by one (a shell's glob) are skipped too
    assert main(["explain", *map(str, sorted(folder.glob("*.png"))), "--out", str(folder), *flags]) == 0
    images = [json.loads(line)["image"] for line in capsys.readouterr().out.splitlines()]
    assert images == [str(folder / "cat.png")]


FULL_DISK = """
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG, as on a full disk
resource.setrlimit(resource.RLIMIT_FSIZE, (2000, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
from maskscope.cli.main import main
sys.exit(main(sys.argv[1:]))
"""


def test_train_on_a_full_disk_is_one_line_and_leaves_nothing_half_written(tmp_path):
    """Fault: train: a full disk while saving the checkpoint — one line, exit 2; no checkpoint and no
    temporary file left."""
    sys.path.insert(0, str(TESTS / "methods"))
    try:
        from test_realtime import TINY_MODULE
        from test_realtime_train import make_data
    finally:
        sys.path.remove(str(TESTS / "methods"))
    (tmp_path / "tinymods.py").write_text(TINY_MODULE)
    data = make_data(tmp_path / "d")
    import maskscope

    src = str(Path(maskscope.__file__).resolve().parents[1])  # the maskscope under test
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), src]),
           "OMP_NUM_THREADS": "1"}
    out = tmp_path / "m.pt"
    train = ["train", "--data", str(data), "--classifier", "tinymods:tiny", "--epochs", "1", "--batch-size",
             "4", "--quiet", "--max-steps", "1", "--checkpoint-every", "1", "--out", str(out)]
    run = subprocess.run([sys.executable, "-c", FULL_DISK, *train], capture_output=True, text=True, env=env,
                         cwd=tmp_path, timeout=600)
    lines = [ln for ln in run.stderr.splitlines() if ln.startswith("maskscope: error:")]
    assert run.returncode == 2 and len(lines) == 1 and "Traceback" not in run.stderr, run.stderr
    assert f"cannot write checkpoint {out}" in lines[0]
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_evaluate_that_failed_after_writing_its_tables_may_replace_them(tmp_path, capsys, monkeypatch):
    import maskscope.evaluate as evaluate
    from maskscope.errors import OutputError

    def fail(*args, **kwargs):
        raise OutputError("cannot write the plots")

    data = _data(tmp_path / "d")
    out = tmp_path / "out"
    with monkeypatch.context() as patch:
        patch.setattr(evaluate, "write_plots", fail)
        assert main(["evaluate", "--data", str(data), "--out", str(out), *EVAL]) == 2
    assert "cannot write the plots" in one_line(capsys) and (out / "metrics.json").is_file()
    assert main(["evaluate", "--data", str(data), "--out", str(out), *EVAL]) == 0
