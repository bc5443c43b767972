"""The command line's edges: an empty folder among the inputs is listed like a bad file and the rest
explained; options that would do nothing are refused; huge or odd numbers (seeds, targets, radii,
fractional or uncapped counts through --option) are one line and exit 2, before any work."""

from __future__ import annotations

import json

import numpy as np
import pytest
from fixtures import random_photo

from maskscope.cli.main import main

pytestmark = pytest.mark.usefixtures("one_thread")
OWN = ["--classifier", "fixtures:own_classifier"]


def one_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.startswith("maskscope: error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


# -- an empty folder among the inputs --------------------------------------------------------------------
def test_an_empty_folder_is_listed_and_the_other_inputs_are_explained(tmp_path, capsys):
    good = random_photo(tmp_path / "good.png")
    empty = tmp_path / "empty_dir.jpg"
    empty.mkdir()
    out = tmp_path / "out"
    code = main(["explain", str(good), str(empty), "--method", "center", *OWN, "--out", str(out), "--json"])
    captured = capsys.readouterr()
    assert code == 2 and "Traceback" not in captured.err
    assert f"{empty}: folder contains no images" in captured.err
    [record] = [json.loads(ln) for ln in captured.out.splitlines() if ln.startswith("{")]
    assert record["image"] == str(good) and np.load(out / "good.npy").shape == (30, 40)


def test_only_empty_folders_leave_no_output_folder(tmp_path, capsys):
    (tmp_path / "a").mkdir()
    code = main(["explain", str(tmp_path / "a"), "--method", "center", *OWN, "--out", str(tmp_path / "out")])
    assert code == 2 and "folder contains no images" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


# -- options that would do nothing ------------------------------------------------------------------------
@pytest.mark.parametrize("method, flags", [
    ("gradient", ["--masker", "m.pt"]), ("gradient", ["--perturbation", "blur"]),
    ("realtime", ["--iterations", "3"]), ("realtime", ["--preset", "fong2017"]),
    ("center", ["--game", "preserve"]), ("extremal", ["--preset", "fong2017"]),
])
def test_options_the_method_does_not_take_are_refused(tmp_path, capsys, method, flags):
    code = main(["explain", str(random_photo(tmp_path / "p.png")), "--method", method, *flags, *OWN,
                 "--out", str(tmp_path / "out")])
    assert code == 2
    assert one_line(capsys) == f"maskscope: error: {flags[0]} does not apply to --method {method}"
    assert not (tmp_path / "out").exists()


def test_the_default_preset_still_reaches_the_methods_that_take_it(tmp_path, capsys):
    photo = random_photo(tmp_path / "p.png")
    code = main(["explain", str(photo), "--method", "meaningful", "--iterations", "1", *OWN,
                 "--out", str(tmp_path / "out"), "--json", "--no-figures"])
    assert code == 0
    [record] = [json.loads(ln) for ln in capsys.readouterr().out.splitlines() if ln.startswith("{")]
    assert record["params"]["preset"] == "fong2017"


# -- huge or odd numbers ---------------------------------------------------------------------------------
@pytest.mark.parametrize("flags, expected", [
    (["--seed", "99999999999999999999999"], "--seed: a seed is at most"),
    (["--seed", "1e30"], "--seed: expected an integer"),
    (["--target", "1000000000000000000000000000000"], "out of range"),
    (["--target", "top²"], "top²"),
    (["--target", "²"], "²"),
])
def test_explain_huge_or_odd_numbers_are_one_line(tmp_path, capsys, flags, expected):
    code = main(["explain", str(random_photo(tmp_path / "p.png")), "--method", "center", *flags, *OWN,
                 "--out", str(tmp_path / "out")])
    assert code == 2 and expected in one_line(capsys)


@pytest.mark.parametrize("argv, expected", [
    (["train", "--data", "d", "--out", "m.pt", "--seed", "1e30"], "--seed"),
    (["train", "--data", "d", "--out", "m.pt", "--seed", "99999999999999999999999"], "--seed"),
    (["summarize", "d", "--out", "o", "--region-closing", "nan"], "--region-closing"),
    (["summarize", "d", "--out", "o", "--region-closing", "inf"], "--region-closing"),
    (["summarize", "d", "--out", "o", "--region-closing", "1e9"], "--region-closing"),
    (["summarize", "d", "--out", "o", "--batch-size", "0"], "--batch-size"),
    (["adversarial", "d", "--epsilon", "1e7"], "--epsilon"),
    (["adversarial", "d", "--epsilon", "nan"], "--epsilon"),
    (["evaluate", "--data", "d", "--seed", "-1"], "--seed"),
])
def test_other_commands_refuse_huge_or_odd_numbers_while_parsing(tmp_path, capsys, argv, expected):
    assert main(argv) == 2 and expected in one_line(capsys)


@pytest.fixture
def data(tmp_path):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parents[1] / "evaluate"))
    try:
        from test_evaluate import make_folder
    finally:
        sys.path.pop(0)
    return make_folder(tmp_path / "data", n=3)


@pytest.mark.parametrize("option, expected", [
    ("occlusion.stride=1.5", "occlusion.stride must be a whole number"),
    ("occlusion.window=0", "occlusion.window must be a whole number of at least 1"),
    ("meaningful.iterations=1000000000", "at most 20000"),
    ("crisp.crisp_iterations=1000000000", "at most 20000"),
    ("rise.n_masks=2.5", "rise.n_masks"),
])
def test_evaluate_options_are_whole_and_capped_before_any_work(data, tmp_path, capsys, option, expected):
    method = option.split(".")[0]
    code = main(["evaluate", "--data", str(data), "--methods", method, "--option", option, *OWN,
                 "--out", str(tmp_path / "ev"), "--quiet"])
    assert code == 2 and expected in one_line(capsys)
    assert not (tmp_path / "ev" / "cache").exists()


@pytest.mark.parametrize("options", [{"iterations": 1_000_000_000}, {"iterations": 20_001}])
@pytest.mark.parametrize("name", ["meaningful", "crisp", "extremal"])
def test_the_api_has_the_same_iteration_cap(name, options):
    import torch

    from maskscope import ConfigError, get_method
    from maskscope.blackbox import BlackBox

    model = BlackBox(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.LazyLinear(2)), input_size=None)
    with pytest.raises(ConfigError, match="at most 20000"):
        get_method(name)(model, torch.rand(1, 3, 8, 8), target=0, **options)


@pytest.mark.parametrize("kwargs, expected", [({"epsilon": 1e7}, "epsilon"),
                                              ({"iterations": 10**9}, "at most")])
def test_the_attack_api_refuses_runaway_steps(kwargs, expected):
    import torch

    from maskscope import ConfigError
    from maskscope.analysis.adversarial import iterative_fgsm
    from maskscope.blackbox import BlackBox

    model = BlackBox(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(192, 2)), input_size=None)
    with pytest.raises(ConfigError, match=expected):
        iterative_fgsm(model, torch.rand(1, 3, 8, 8), **kwargs)
