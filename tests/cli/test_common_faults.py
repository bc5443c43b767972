"""``--classifier`` loading and the model's forward seen from the command line: a factory that
exits, a model that raises, runs out of memory, returns integers, sits on the meta device, or
returns NaN or inf, is one line and exit 2, and no file holding a non-finite value is written."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from maskscope.cli.main import main

pytestmark = pytest.mark.usefixtures("one_thread")

MODELS = textwrap.dedent(
    """
    import sys
    import torch
    from torch import nn
    from maskscope.blackbox import BlackBox

    class Net(nn.Module):
        def __init__(self, mode):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3, padding=1)
            self.head = nn.Linear(4, 3)
            self.mode = mode

        def forward(self, x):
            out = self.head(self.conv(x).mean((2, 3)))
            bright = x.flatten(1).mean(1) > 0.5
            if self.mode == "raises":
                raise RuntimeError("boom inside forward")
            if self.mode == "oom":
                raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
            if self.mode == "int":
                return out.long()
            if self.mode in ("nan", "inf"):
                out = out.clone()
                out[bright, 0] = float(self.mode)
            return out

    def build(mode="clean", seed=0):
        torch.manual_seed(seed)
        net = Net(mode).eval()
        if mode == "meta":
            net = net.to("meta")
        return BlackBox(net, input_size=(32, 32), mean=(0.5,) * 3, std=(0.25,) * 3, name=f"net-{mode}")

    def exits():
        sys.exit(7)
    """
)


@pytest.fixture
def setup(tmp_path: Path, monkeypatch):
    (tmp_path / "faultmods.py").write_text(MODELS)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    images = tmp_path / "in"
    images.mkdir()
    rng = np.random.default_rng(0)
    for name, level in (("dark", 40), ("bright", 220), ("dim", 60)):
        pixels = np.clip(rng.normal(level, 10, (32, 32, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(images / f"{name}.png")
    return tmp_path


def error_lines(capsys) -> tuple[list[str], str]:
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    return [ln for ln in err.splitlines() if ln.startswith("maskscope: error:")], err


def finite_files(folder: Path) -> None:
    """Every .npy and .json under ``folder`` holds finite numbers only."""
    for path in folder.rglob("*.npy"):
        assert np.isfinite(np.load(path)).all(), path
    for path in folder.rglob("*.json"):
        text = path.read_text()
        assert "NaN" not in text and "Infinity" not in text, path


def test_a_factory_calling_sys_exit_is_one_line_not_a_silent_exit(setup, capsys):
    code = main(["explain", "in/dark.png", "--classifier", "faultmods:exits", "--method", "center"])
    lines, _ = error_lines(capsys)
    assert code == 2 and len(lines) == 1 and "sys.exit(7)" in lines[0]


@pytest.mark.parametrize("mode, expected", [
    ("raises", "RuntimeError: boom inside forward"), ("oom", "lower --batch-size"),
    ("int", "int64 scores"), ("meta", "meta device"),
])
@pytest.mark.parametrize("method", ["gradient", "center"])
def test_model_failures_are_one_line(setup, capsys, mode, expected, method):
    code = main(["explain", "in", "--classifier", "faultmods:build", "--classifier-arg", f"mode={mode}",
                 "--method", method, "--out", "out"])
    lines, err = error_lines(capsys)
    assert code == 2 and len(lines) == 1 and expected in lines[0], err
    assert not list(setup.glob("out/*.npy"))


@pytest.mark.parametrize("mode", ["nan", "inf"])
@pytest.mark.parametrize("method", ["gradient", "meaningful", "occlusion"])
def test_explain_lists_the_image_with_non_finite_scores_and_explains_the_rest(setup, capsys, mode, method):
    steps = ["--iterations", "2"] if method == "meaningful" else []
    code = main(["explain", "in", "--classifier", "faultmods:build", "--classifier-arg", f"mode={mode}",
                 "--method", method, *steps, "--out", "out", "--no-figures", "--json"])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    assert code == 2
    skipped = [ln for ln in captured.err.splitlines() if ln.startswith("  in")]
    assert len(skipped) == 1 and "bright.png" in skipped[0] and "non-finite" in skipped[0], captured.err
    records = [json.loads(ln) for ln in captured.out.splitlines() if ln.startswith("{")]
    assert sorted(Path(r["image"]).name for r in records) == ["dark.png", "dim.png"]
    assert not list((setup / "out").glob("bright*"))
    finite_files(setup / "out")


@pytest.mark.parametrize("mode", ["nan", "inf"])
def test_evaluate_and_summarize_stop_with_one_line_and_write_no_non_finite_value(setup, capsys, mode):
    model = ["--classifier", "faultmods:build", "--classifier-arg", f"mode={mode}"]
    code = main(["evaluate", "--data", "in", "--methods", "center,gradient", *model, "--out", "ev",
                 "--quiet", "--examples", "0"])
    lines, err = error_lines(capsys)
    assert code == 2 and len(lines) == 1 and "non-finite" in lines[0], err
    finite_files(setup / "ev")
