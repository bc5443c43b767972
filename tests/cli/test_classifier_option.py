"""``--classifier module:function`` (and ``--classifier-arg``) on every command, with a tiny model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from fixtures import own_classifier, own_images
from PIL import Image

from maskscope import __version__
from maskscope.cli.main import build_parser, main
from maskscope.images import load_image, to_tensor

OWN = ["--classifier", "fixtures:own_classifier"]


def _boards(folder: Path, n: int, size: int = 64) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        x = own_images(1, (size, size), seed=i)[0]
        if i % 2:
            x = x.flip(-1)  # the evidence in another quadrant: a weaker prediction
        path = folder / f"board{i}.png"
        Image.fromarray((x.permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)).save(path)
        paths.append(path)
    return paths


def _own_p(path: Path, size: int = 64) -> float:
    with torch.no_grad():
        return float(own_classifier(size).probabilities(to_tensor(load_image(path))[None])[0, 0])


def test_explain_with_your_own_classifier(tmp_path, capsys):
    [path] = _boards(tmp_path / "in", 1)
    code = main(["explain", str(path), *OWN, "--classifier-arg", "form=probabilities",
                 "--method", "gradient", "--target", "0", "--out", str(tmp_path / "out"), "--json"])
    assert code == 0
    [record] = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert record["p_original"] == pytest.approx(_own_p(path), abs=1e-4)  # softmax not applied twice


def test_evaluate_with_your_own_classifier(tmp_path, capsys):
    _boards(tmp_path / "data", 4)
    out = tmp_path / "eval"
    code = main(["evaluate", "--data", str(tmp_path / "data"), "--methods", "center,gradient", *OWN,
                 "--out", str(out), "--quiet", "--examples", "0"])
    assert code == 0, capsys.readouterr().err
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics) >= {"center", "gradient"}


def test_summarize_with_your_own_classifier_and_the_old_flag(tmp_path, capsys):
    _boards(tmp_path / "imgs", 3, size=112)
    out = tmp_path / "summ"
    code = main(["summarize", str(tmp_path / "imgs"), "--model", "fixtures:own_classifier",
                 "--classifier-arg", "size=112", "--target", "0", "--out", str(out), "--iterations", "2",
                 "--crisp-iterations", "2", "--proposals", "50", "--proposal-mode", "fast", "--quiet",
                 "--threads", "1"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "--model is deprecated; use --classifier" in err
    payload = json.loads((out / "summaries.json").read_text())
    assert payload["stats"]["images"] == 3


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--classifier-arg", "fail=true"], "own_classifier failed: RuntimeError: weights"),
        (["--classifier-arg", "colour=1"], "unexpected keyword argument 'colour'"),
        (["--classifier-arg", "novalue"], "expected KEY=VALUE"),
        (["--classifier", "no_such_module:build"], "cannot import classifier"),
        (["--classifier", "efficientnet-lite0", "--classifier-arg", "a=1"], "module:function"),
    ],
)
def test_bad_classifiers_are_one_line_exit_2(tmp_path, capsys, extra, message):
    [path] = _boards(tmp_path / "in", 1)
    args = ["explain", str(path), "--method", "center", "--out", str(tmp_path / "out")]
    code = main([*args, *OWN, *extra] if "--classifier" not in extra else [*args, *extra])
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("command", [["explain", "x.png"], ["evaluate", "--data", "d"], ["summarize", "d",
                                     "--out", "o"], ["train", "--data", "d", "--out", "o.pt"],
                                     ["explain-video", "v.mp4", "--out", "o.mp4"]])
def test_every_command_speaks_the_same_classifier_words(command):
    args = build_parser().parse_args([*command, *OWN, "--classifier-arg", "size=32", "--device", "cpu"])
    assert args.classifier == "fixtures:own_classifier" and args.classifier_arg == [("size", 32)]


def test_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"maskscope {__version__}"
