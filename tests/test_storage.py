"""The output folder lock (storage.output_lock): a second run into a held --out is refused, and
every file stays whole."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from fixtures import error_line as one_line
from fixtures import folder_contents as _contents
from fixtures import random_photo
from PIL import Image

from maskscope.cli.main import main

pytestmark = pytest.mark.usefixtures("one_thread")


def test_a_second_run_into_a_locked_folder_is_refused_in_one_line(explain_setup, capsys):
    """Fault: explain: a second run into an --out another run holds — refused in one line naming the holder.
    """
    from maskscope.storage import output_lock

    tmp, flags = explain_setup
    out = tmp / "out"
    out.mkdir()
    (out / "earlier.json").write_text("{}")
    with output_lock(out):
        code = main(["explain", str(random_photo(tmp / "p.png", 1)), "--out", str(out), *flags])
    line = one_line(capsys)
    assert code == 2 and "in use by another maskscope run" in line and "pid" in line
    assert _contents(out) == {"earlier.json": b"{}"}  # nothing written, nothing lost


def test_two_processes_into_one_folder_every_file_whole_and_the_second_refused(explain_setup):
    """Fault: explain: two processes into one --out at once — every file whole, the second run refused."""
    import os
    import subprocess
    import sys
    import time

    tmp, _ = explain_setup
    inputs = [str(random_photo(tmp / f"i{k}.png", k)) for k in range(3)]
    out = tmp / "out"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(Path(__file__).parents[1] / "src"), str(tmp)]),
               OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "maskscope.cli.main", "explain", *inputs, "--out", str(out),
           "--classifier", "slowmods:slow", "--iterations", "25"]
    first = subprocess.Popen(cmd, cwd=tmp, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lock = out / ".maskscope.lock"
    deadline = time.monotonic() + 120
    while not (lock.is_file() and lock.read_text().startswith("pid")):
        assert first.poll() is None and time.monotonic() < deadline, first.communicate()
        time.sleep(0.05)
    second = subprocess.run(cmd, cwd=tmp, env=env, capture_output=True, text=True, timeout=120)
    _, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    assert second.returncode == 2 and "Traceback" not in second.stderr
    assert [ln for ln in second.stderr.splitlines() if "error" in ln] == [
        f"maskscope: error: {out} is in use by another maskscope run (pid {first.pid}); "
        "wait for it to finish or choose another --out"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert len(manifest["files"]) == 3 * 5 and manifest["stale"] == []
    for name in manifest["files"]:  # every file whole
        if name.endswith(".npy"):
            assert np.load(out / name).shape == (30, 40)
        elif name.endswith(".png"):
            Image.open(out / name).verify()
        else:
            assert json.loads((out / name).read_text())["files"]
    assert not [p for p in out.iterdir() if ".tmp" in p.name]


@pytest.mark.parametrize("command", ["evaluate", "summarize"])
def test_evaluate_and_summarize_lock_their_output_folder_too(tmp_path, command, capsys):
    """Fault: evaluate, summarize: a second run into a locked --out — refused in one line, as explain."""
    from maskscope.storage import output_lock

    data = tmp_path / "data"
    for k in range(2):
        random_photo(data / f"i{k}.png", k)
    out = tmp_path / "out"
    out.mkdir()
    args = (["evaluate", "--data", str(data), "--methods", "gradient"] if command == "evaluate"
            else ["summarize", str(data)])
    with output_lock(out):
        code = main([*args, "--out", str(out), "--quiet"])
    assert code == 2 and "in use by another maskscope run" in one_line(capsys)
    assert [p.name for p in out.iterdir()] == [".maskscope.lock"]
