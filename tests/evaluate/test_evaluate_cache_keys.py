"""Issue 12, item 2: evaluate cache entries are keyed by the image's content hash and its target."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from fixtures import tiny_model
from PIL import Image
from test_evaluate import config, make_folder

from maskscope.cli.main import main
from maskscope.data.folders import load_folder
from maskscope.evaluate import evaluate
from maskscope.evaluate.cache import MaskCache

pytestmark = pytest.mark.usefixtures("one_thread")
METHODS = ["gradient", "occlusion"]


def _run(folder: Path, out: Path, lines: list[str] | None = None):
    cfg = config(methods=METHODS, references=False, report=(lines.append if lines is not None else None))
    return evaluate(load_folder(folder, require_boxes=True), tiny_model(), out, cfg).info


def _entries(out: Path, method: str) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((out / "cache" / method).glob("s[0-9]*.*"))}


def _changed(before: dict[str, bytes], after: dict[str, bytes]) -> set[str]:
    return {Path(k).stem for k in set(before) | set(after) if before.get(k) != after.get(k)}


@pytest.fixture()
def data(tmp_path) -> Path:
    return make_folder(tmp_path / "data", n=6)


def test_new_pixels_recompute_exactly_that_entry(data, tmp_path):
    out = tmp_path / "out"
    first = _run(data, out)
    assert first["computed_now"] == dict.fromkeys(METHODS, 6)
    before = {m: _entries(out, m) for m in METHODS}
    img = np.asarray(Image.open(data / "images" / "s1.png")).copy()
    img[:10] = 255 - img[:10]  # same name, same size, other pixels
    Image.fromarray(img).save(data / "images" / "s1.png")
    lines: list[str] = []
    info = _run(data, out, lines)
    assert info["computed_now"] == dict.fromkeys(METHODS, 1)
    assert info["stale_recomputed_now"] == dict.fromkeys(METHODS, 1)
    for m in METHODS:
        assert _changed(before[m], _entries(out, m)) == {"s1"}
    assert len(lines) == len(METHODS) and all("1 stale cache entries recomputed" in x for x in lines)
    # and the record says which bytes it was made from
    rec = json.loads((out / "cache" / "gradient" / "s1.json").read_text())
    assert len(rec["sha256"]) == 64 and rec["target"] == 1


def test_a_changed_label_recomputes_exactly_that_entry(data, tmp_path):
    out = tmp_path / "out"
    _run(data, out)
    before = {m: _entries(out, m) for m in METHODS}
    ann = json.loads((data / "annotations.json").read_text())
    ann["s2.png"]["class_index"] = 1 - ann["s2.png"]["class_index"]
    (data / "annotations.json").write_text(json.dumps(ann))
    info = _run(data, out)
    assert info["stale_recomputed_now"] == dict.fromkeys(METHODS, 1)
    for m in METHODS:
        assert _changed(before[m], _entries(out, m)) == {"s2"}
        record = json.loads((out / "cache" / m / "s2.json").read_text())
        assert record["target"] == ann["s2.png"]["class_index"]


def test_another_extension_recomputes_exactly_that_entry(data, tmp_path):
    out = tmp_path / "out"
    _run(data, out)
    before = {m: _entries(out, m) for m in METHODS}
    Image.open(data / "images" / "s3.png").convert("RGB").save(data / "images" / "s3.jpg", quality=70)
    (data / "images" / "s3.png").unlink()
    ann = json.loads((data / "annotations.json").read_text())
    ann["s3.jpg"] = ann.pop("s3.png")
    (data / "annotations.json").write_text(json.dumps(ann))
    info = _run(data, out)
    assert info["computed_now"] == dict.fromkeys(METHODS, 1)
    for m in METHODS:
        assert _changed(before[m], _entries(out, m)) == {"s3"}


def test_nothing_changed_reuses_every_entry_byte_identically(data, tmp_path):
    out = tmp_path / "out"
    _run(data, out)
    metrics = {m: _entries(out, m) for m in METHODS}
    info = _run(data, out)
    assert info["computed_now"] == dict.fromkeys(METHODS, 0)
    assert {m: _entries(out, m) for m in METHODS} == metrics


def test_legacy_entries_without_a_hash_are_adopted_only_when_the_image_is_not_newer(data, tmp_path):
    out = tmp_path / "out"
    _run(data, out)
    folder = out / "cache" / "gradient"
    for meta in folder.glob("s[0-9]*.json"):  # as written before entries carried the content hash
        rec = json.loads(meta.read_text())
        del rec["sha256"]
        meta.write_text(json.dumps(rec))
    masks = {p.name: p.read_bytes() for p in folder.glob("s[0-9]*.npy")}
    img = np.asarray(Image.open(data / "images" / "s4.png")).copy()
    img[:5] = 0
    Image.fromarray(img).save(data / "images" / "s4.png")  # edited after its legacy entry was written
    lines: list[str] = []
    info = _run(data, out, lines)
    assert info["legacy_adopted_now"]["gradient"] == 5 and info["stale_recomputed_now"]["gradient"] == 1
    assert info["computed_now"]["gradient"] == 1 and info["stale_recomputed_now"]["occlusion"] == 1
    assert any("5 entries from before content keys adopted" in x for x in lines)
    assert all(masks[n] == (folder / n).read_bytes() for n in masks if n != "s4.npy")  # masks untouched


def test_names_that_differ_only_in_unsafe_characters_get_two_entries(tmp_path):
    cache = MaskCache(tmp_path, "gradient", {"x": 1})
    cache.put("good 1", np.zeros((4, 4)), {"target": 0, "sha256": "a"})
    cache.put("good_1", np.ones((4, 4)), {"target": 0, "sha256": "b"})
    assert cache.get("good 1")[0].max() == 0 and cache.get("good_1")[0].min() == 1
    assert cache.status("good 1", "a", 0) == "ok" and cache.status("good 1", "b", 0) == "stale"
    assert cache.status("good 1", "a", 1) == "stale" and cache.status("bad", "a", 0) == "missing"


def test_cli_says_how_many_entries_were_recomputed(data, tmp_path, capsys, monkeypatch):
    from maskscope.cli import evaluate as cli_evaluate

    monkeypatch.setattr(cli_evaluate, "load_model", lambda args: tiny_model())
    out = tmp_path / "out"
    args = ["evaluate", "--data", str(data), "--methods", "gradient", "--out", str(out), "--quiet",
            "--examples", "0"]
    assert main(args) == 0
    assert "stale" not in capsys.readouterr().err
    img = np.asarray(Image.open(data / "images" / "s0.png")).copy()
    img[-4:] = 7
    Image.fromarray(img).save(data / "images" / "s0.png")
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "gradient: 1 stale cache entries recomputed (image pixels or label changed)" in err


@pytest.mark.parametrize("method, options, schedule", [
    ("meaningful", {}, "early-stop"), ("meaningful", {"early_stop": True}, "early-stop"),
    ("meaningful", {"early_stop": False}, "fixed"),
    ("crisp", {}, "fixed"), ("crisp", {"early_stop": True}, "early-stop"), ("extremal", {}, "fixed"),
    ("extremal", {"early_stop": True}, "early-stop"),
])
def test_cache_settings_name_the_schedule(tmp_path, method, options, schedule):
    """Masks of the fixed schedule (meaningful's only one before early stopping) are never mixed
    with early-stopped ones: the schedule is part of what a cache folder was made with, and the
    same schedule asked for or left at its default is the same cache."""
    from maskscope.evaluate.cache import cache_settings
    from maskscope.evaluate.runner import method_options

    folder = make_folder(tmp_path / "data", 2)
    settings = cache_settings(method, method_options(method, None, {method: options} if options else {}),
                              tiny_model(), load_folder(folder), (64, 64))
    assert settings["schedule"] == schedule
    assert "early_stop" not in settings["options"]
    assert "schedule" not in cache_settings("gradient", method_options("gradient", None), tiny_model(),
                                            load_folder(folder), (64, 64))


def test_a_fixed_schedule_cache_of_an_earlier_release_is_refused_with_the_flag_that_reuses_it(
        data, tmp_path, capsys, monkeypatch):
    """meaningful now stops early by default: a cache folder that an earlier release filled with
    fixed-schedule masks is not silently reused for it, and the message names --fixed-schedule,
    with which the same folder is reused (nothing recomputed)."""
    from maskscope.cli import evaluate as cli_evaluate
    from maskscope.cli.main import main

    monkeypatch.setattr(cli_evaluate, "load_model", lambda args: tiny_model())
    out = tmp_path / "out"
    args = ["evaluate", "--data", str(data), "--methods", "meaningful", "--iterations", "3",
            "--out", str(out), "--quiet", "--examples", "0"]
    assert main([*args, "--fixed-schedule"]) == 0
    capsys.readouterr()
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "fixed schedule: --fixed-schedule reuses it" in err
    assert main([*args, "--fixed-schedule"]) == 0
    info = json.loads((out / "details.json").read_text())["info"]
    assert info["computed_now"]["meaningful"] == 0


def test_a_cache_older_than_the_schedule_key_gets_no_flag_it_could_not_keep(
        data, tmp_path, capsys, monkeypatch):
    """A cache folder written before caches named their schedule matches neither schedule now: it is
    refused, and the line does not promise that --fixed-schedule would reuse it."""
    from maskscope.cli import evaluate as cli_evaluate
    from maskscope.cli.main import main

    monkeypatch.setattr(cli_evaluate, "load_model", lambda args: tiny_model())
    out = tmp_path / "out"
    args = ["evaluate", "--data", str(data), "--methods", "meaningful", "--iterations", "3",
            "--out", str(out), "--quiet", "--examples", "0", "--fixed-schedule"]
    assert main(args) == 0
    stored = out / "cache" / "meaningful" / "settings.json"
    settings = json.loads(stored.read_text())
    del settings["schedule"]
    stored.write_text(json.dumps(settings))
    capsys.readouterr()
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "other settings (schedule)" in err and "reuses it" not in err


def test_a_cache_that_said_its_schedule_twice_is_reused(data, tmp_path, capsys, monkeypatch):
    """Caches of the previous release kept an explicit early_stop in their options beside the
    "schedule" that says the same: the same masks, so reused (nothing recomputed)."""
    from maskscope.cli import evaluate as cli_evaluate
    from maskscope.cli.main import main

    monkeypatch.setattr(cli_evaluate, "load_model", lambda args: tiny_model())
    out = tmp_path / "out"
    args = ["evaluate", "--data", str(data), "--methods", "meaningful", "--iterations", "3",
            "--out", str(out), "--quiet", "--examples", "0"]
    assert main(args) == 0
    stored = out / "cache" / "meaningful" / "settings.json"
    settings = json.loads(stored.read_text())
    assert settings["schedule"] == "early-stop"
    settings["options"]["early_stop"] = True
    stored.write_text(json.dumps(settings))
    assert main(args) == 0
    assert json.loads((out / "details.json").read_text())["info"]["computed_now"]["meaningful"] == 0


@pytest.mark.parametrize("garbage", [b"", b"not a numpy file", "pickle"])
def test_a_garbage_or_pickled_evaluate_cache_entry_is_one_line_never_unpickled(tmp_path, garbage):
    """Fault: evaluate: a garbage or pickled cache entry — one line, never unpickled."""
    from maskscope.errors import OutputError
    from maskscope.evaluate.cache import MaskCache

    cache = MaskCache(tmp_path, "gradient", {"a": 1})
    cache.put("img", np.zeros((4, 4), np.float32), {"p": 1.0})
    npy, _ = cache._paths("img")
    if garbage == "pickle":
        np.save(npy, np.array([{"evil": 1}], dtype=object), allow_pickle=True)
    else:
        npy.write_bytes(garbage)
    with pytest.raises(OutputError, match="corrupt cache entry"):
        cache.get("img")
