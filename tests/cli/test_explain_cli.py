"""CLI behaviour on the real default model (few iterations, small images)."""

import json
from pathlib import Path

import numpy as np
import pytest
from fixtures import folder_contents as _contents
from fixtures import json_records as _records
from fixtures import random_photo
from PIL import Image

from maskscope.cli.main import main

pytestmark = pytest.mark.integration


@pytest.fixture
def photo(tmp_path):
    rng = np.random.default_rng(1)
    path = tmp_path / "photo.png"
    Image.fromarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)).save(path)
    return path


def error_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("maskscope: error")]


def test_good_and_bad_files_mixed(tmp_path, photo, capsys):
    bad = tmp_path / "fake.jpg"
    bad.write_text("not an image")
    out = tmp_path / "out"
    code = main(
        [
            "explain",
            str(bad),
            str(photo),
            str(tmp_path / "missing.jpg"),
            "--iterations",
            "2",
            "--out",
            str(out),
            "--no-figures",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert "Traceback" not in err
    assert "fake.jpg: not a readable image" in err and "missing.jpg: no such file" in err
    mask = np.load(out / "photo.npy")
    assert mask.shape == (48, 64) and mask.dtype == np.float32  # the file's own pixels
    assert 0 <= mask.min() and mask.max() <= 1
    record = json.loads((out / "photo.json").read_text())
    assert record["p_original"] > 0 and (out / "photo_overlay.png").exists()


def test_json_records_on_stdout(tmp_path, photo, capsys):
    code = main(
        [
            "explain",
            str(photo),
            "--iterations",
            "2",
            "--out",
            str(tmp_path / "o"),
            "--json",
            "--target",
            "tabby cat",
        ]
    )
    assert code == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]
    assert len(lines) == 1 and lines[0]["target"] == 281 and lines[0]["class_name"] == "tabby"
    assert (tmp_path / "o" / "photo_figure.png").exists()


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--target", "1000"], "out of range"),
        (["--target", "not a real class"], "unknown class name"),
        (["--iterations", "0"], "at least 1"),
        (["--iterations", "-5"], "at least 1"),
        (["--method", "magic"], "invalid choice"),
    ],
)
def test_bad_options_one_line_exit_2(tmp_path, photo, capsys, extra, message):
    code = main(["explain", str(photo), "--out", str(tmp_path / "o"), *extra])
    err = capsys.readouterr().err
    assert code == 2
    assert len(error_lines(err)) == 1 and message in err and "Traceback" not in err


def test_unwritable_output(tmp_path, photo, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    code = main(["explain", str(photo), "--out", str(blocker / "sub")])
    err = capsys.readouterr().err
    assert code == 2 and len(error_lines(err)) == 1 and "cannot write" in err


@pytest.mark.parametrize("extra, schedule",
                         [([], True), (["--early-stop"], True), (["--fixed-schedule"], False)])
def test_schedule_and_speed_flags_reach_the_json(tmp_path, photo, capsys, extra, schedule):
    code = main(["explain", str(photo), "--iterations", "3", "--out", str(tmp_path / "o"), "--json",
                 "--no-figures", "--amp", "--channels-last", *extra])
    assert code == 0
    record = json.loads(capsys.readouterr().out.strip().splitlines()[0])
    assert record["iterations_used"] == 3  # 3 is below the early-stopping rule's minimum
    assert record["params"]["early_stop"] is schedule


def test_fp16_on_cpu_is_one_line_exit_2(tmp_path, photo, capsys):
    code = main(["explain", str(photo), "--out", str(tmp_path / "o"), "--amp", "fp16"])
    err = capsys.readouterr().err
    assert code == 2 and len(error_lines(err)) == 1 and "GPU" in err


def test_colliding_stems_get_unique_deterministic_names_with_the_source_recorded(explain_setup, capsys):
    """Fault: explain: inputs whose names collide (a/x.jpg, b/x.png, 'good 1.png', good_1.png) — distinct
    masks named with a short hash of the source path."""
    tmp, flags = explain_setup
    inputs = [random_photo(tmp / "a" / "x.jpg", 1), random_photo(tmp / "b" / "x.png", 2),
              random_photo(tmp / "good 1.png", 3), random_photo(tmp / "good_1.png", 4),
              random_photo(tmp / "solo.png", 5)]
    out = tmp / "out"
    assert main(["explain", *map(str, inputs), "--out", str(out), "--no-figures", *flags]) == 0
    records = _records(capsys)
    stems = [Path(r["files"]["mask_npy"]).stem for r in records]
    assert len(set(stems)) == 5 and "solo" in stems and "x" not in stems and "good_1" not in stems
    for rec, src in zip(records, inputs):
        assert rec["source"] == str(src.resolve())
        saved = json.loads((out / f"{Path(rec['files']['mask_npy']).stem}.json").read_text())
        assert saved["source"] == rec["source"]
    first = _contents(out)
    capsys.readouterr()
    assert main(["explain", *map(str, inputs), "--out", str(tmp / "again"), "--no-figures", *flags]) == 0
    assert sorted(_contents(tmp / "again")) == sorted(first)  # the same names on every run


def test_results_line_only_when_something_was_written(explain_setup, capsys):
    """Fault: explain: a run that writes nothing — no 'results in' line."""
    tmp, flags = explain_setup
    bad = tmp / "bad.png"
    bad.write_bytes(b"nope")
    out = tmp / "out"
    assert main(["explain", str(bad), "--out", str(out), *flags[:-1]]) == 2
    assert "results in" not in capsys.readouterr().err and not (out / "manifest.json").exists()
