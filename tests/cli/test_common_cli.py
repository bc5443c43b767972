"""The options every command shares (cli/common.py): devices and iteration limits, refused before any work."""

from __future__ import annotations

import pytest
from fixtures import error_line, own_error_line

from maskscope.cli.main import main

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("command", ["explain", "evaluate", "summarize"])
def test_absurd_iterations_are_refused_before_any_work(tmp_path, command, capsys):
    """Fault: explain, evaluate, summarize: --iterations 1000000000 — refused before any work (at most 20000).
    """
    args = {"explain": ["explain", "x.png"], "evaluate": ["evaluate", "--data", "d"],
            "summarize": ["summarize", "d"]}[command]
    assert main([*args, "--iterations", "1000000000", "--out", str(tmp_path / "o")]) == 2
    line = error_line(capsys)
    assert "--iterations" in line and "at most 20000" in line and not (tmp_path / "o").exists()


@pytest.mark.parametrize("device, expected", [("meta", "cannot run a model"), ("mps", "not available"),
                                              ("nonsense", "unknown device"), ("cuda:7", "cuda")])
@pytest.mark.parametrize("command", ["explain", "train", "explain-video", "evaluate", "summarize"])
def test_bad_devices_are_one_line_before_any_work(tmp_path, command, device, expected, capsys):
    """Fault: every command: --device meta, mps or cuda:7 (absent), nonsense — one line, exit 2, before
    any work."""
    import torch

    if device == "cuda:7" and torch.cuda.device_count() > 7:
        pytest.skip("this machine has 8 GPUs")
    if device == "mps" and getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        pytest.skip("mps is available here")
    out = tmp_path / "o"
    args = {"explain": ["explain", "x.png", "--out", str(out)],
            "train": ["train", "--data", "d", "--out", str(out / "m.pt")],
            "explain-video": ["explain-video", "v.mp4", "--out", str(out / "v.mp4")],
            "evaluate": ["evaluate", "--data", "d", "--out", str(out)],
            "summarize": ["summarize", "d", "--out", str(out)]}[command]
    assert main([*args, "--device", device]) == 2
    line = own_error_line(capsys)
    assert "--device" in line and expected in line and not out.exists()
