"""Issue 12, items 10-14 and 17: the CLI's remaining tracebacks, silent acceptances and garbled
messages. Each test checks the exit code, the one-line message and that finished results are intact."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from fixtures import random_photo

from maskscope.cli.main import main

pytestmark = pytest.mark.usefixtures("one_thread")
METHOD_TESTS = str(Path(__file__).parent / "methods")


def one_line(capsys) -> str:
    """The run's single error line; it must start a line of its own (not glued to a progress bar)."""
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if "maskscope: error:" in ln]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("maskscope: error:"), repr(lines[0])
    return lines[0]


@pytest.fixture
def tiny(tmp_path: Path, monkeypatch):
    monkeypatch.syspath_prepend(METHOD_TESTS)
    from test_realtime import TINY_MODULE

    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "tinymods.py").write_text(TINY_MODULE)
    return tmp_path, ["--classifier", "tinymods:tiny"]


# -- item 10: devices, train's learning rate and annotations ------------------------------------------
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
    line = one_line(capsys)
    assert "--device" in line and expected in line and not out.exists()


def test_train_nan_lr_is_refused(tiny, capsys):
    """Fault: train: --lr nan — 'learning rate must be positive', exit 2."""
    tmp, flags = tiny
    random_photo(tmp / "d" / "a.png")
    assert main(["train", "--data", str(tmp / "d"), "--out", str(tmp / "m.pt"), "--lr", "nan", *flags]) == 2
    assert "learning rate" in one_line(capsys) and not (tmp / "m.pt").exists()


@pytest.mark.parametrize("entry, expected", [
    ([1, 2], "expected an object, got list"),
    ({"class_index": "3"}, "'class_index' must be an integer of at least 0, got '3'"),
    ({"class_index": 2.0}, "'class_index' must be an integer of at least 0, got 2.0"),
    ({"class_index": -1}, "'class_index' must be an integer of at least 0, got -1"),  # item 13
    ({"class_index": 1, "width": "wide", "height": 4}, "'width' must be an integer"),
])
def test_train_annotation_entries_are_checked(tiny, entry, expected, capsys):
    """Fault: train: an annotation entry that is a list, a class_index that is a string or negative — one line
    naming the entry."""
    tmp, flags = tiny
    data = tmp / "d"
    for i in range(2):
        random_photo(data / f"i{i}.png", i)
    (data / "annotations.json").write_text(json.dumps({"i0.png": {"class_index": 1}, "i1.png": entry}))
    ckpt = tmp / "m.pt"
    args = ["train", "--data", str(data), "--out", str(ckpt), "--epochs", "1", "--batch-size", "2", "--quiet"]
    assert main([*args, *flags]) == 2
    line = one_line(capsys)
    assert "entry 'i1.png'" in line and expected in line, line
    assert not ckpt.exists()


def test_train_labels_from_annotations_are_used(tiny):
    """Fault: train: labels from annotations.json — used as the training targets."""
    from maskscope.methods.realtime.data import read_folder

    tmp, _ = tiny
    data = tmp / "d"
    for i in range(2):
        random_photo(data / f"i{i}.png", i)
    notes = {"i0.png": {"class_index": 3, "width": 40, "height": 30}}
    (data / "annotations.json").write_text(json.dumps(notes))
    samples = read_folder(data)
    assert [(s.label, s.size) for s in samples] == [(3, (30, 40)), (None, None)]


# -- item 11: demo re-copies a truncated photo ---------------------------------------------------------
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


# -- item 12: ambiguous class names ---------------------------------------------------------------------
@pytest.mark.parametrize("name, expected", [("crane", ["134 (crane)", "517 (crane)"]),
                                            ("panda", ["387 (lesser panda)", "388 (giant panda)"])])
def test_ambiguous_class_names_list_the_candidates(tmp_path, name, expected, capsys):
    """Fault: explain: --target crane or panda (names of several classes) — lists the candidates and stops."""
    from maskscope.blackbox import BlackBox
    from maskscope.errors import TargetError
    from maskscope.zoo import imagenet_class_names

    bb = BlackBox(lambda x: x.flatten(1)[:, :1000], class_names=imagenet_class_names())
    with pytest.raises(TargetError, match="ambiguous") as err:
        bb.check_target(name)
    assert all(e in str(err.value) for e in expected)
    assert bb.check_target("giant panda") == 388 and bb.check_target("maillot") == 638  # full names
    assert bb.check_target("tank suit") == 639 and bb.check_target(517) == 517
    photo = random_photo(tmp_path / "p.png")
    assert main(["explain", str(photo), "--target", name, "--out", str(tmp_path / "o")]) == 2
    line = one_line(capsys)
    assert all(e in line for e in expected) and "give the index" in line
    assert not (tmp_path / "o").exists()  # nothing written: the folder it created is removed again


# -- item 14: metrics.md escapes the folder name ---------------------------------------------------------
def test_metrics_heading_escapes_the_data_folder_name(tiny, capsys):
    """Fault: evaluate: a --data folder named like markup ('[x](http:evil) <b>*bold*') — escaped in
    metrics.md."""
    tmp, flags = tiny
    data = tmp / "[x](http:evil) <b>*bold*<i> #1 |"
    for i in range(3):
        random_photo(data / f"i{i}.png", i, (32, 32))
    out = tmp / "o"
    assert main(["evaluate", "--data", str(data), "--methods", "center", "--out", str(out), "--quiet",
                 "--examples", "0", *flags]) == 0
    heading = (out / "metrics.md").read_text().splitlines()[0]
    assert heading == r"# maskscope evaluation: \[x\](http:evil) \<b\>\*bold\*\<i\> \#1 \|"


def test_escape_markdown_keeps_plain_names_readable():
    """Fault: evaluate: plain folder names — left readable by the markdown escaping."""
    from maskscope.evaluate.tables import escape_markdown

    assert escape_markdown("imagenet-val-sample") == "imagenet-val-sample"
    assert escape_markdown("a\nb_c") == r"a b\_c"


# -- item 17: cosmetics ------------------------------------------------------------------------------------
def test_an_error_during_the_run_starts_its_own_line(tiny, monkeypatch, capsys):
    """Fault: explain: an error in the middle of a run — starts its own line, not glued to the progress bar.
    """
    from maskscope.errors import TargetError
    from maskscope.target import Target

    tmp, flags = tiny

    def fail(self, blackbox, images):
        raise TargetError(f"cannot take the top 9 of {blackbox.num_classes} classes")

    monkeypatch.setattr(Target, "resolve", fail)  # where every method resolves its targets
    code = main(["explain", str(random_photo(tmp / "p.png")), "--out", str(tmp / "o"), "--iterations", "1",
                 *flags])
    assert code == 2
    assert one_line(capsys) == "maskscope: error: cannot take the top 9 of 5 classes"


def test_checkpoint_errors_are_cut_at_a_word_boundary(tmp_path):
    """Fault: explain: a corrupt masker checkpoint — one line, its reason cut at a word boundary."""
    from maskscope.methods.realtime.checkpoint import shorten

    text = "weights do not fit: " + " ".join(f"size mismatch for decoder.layer{i}.weight" for i in range(20))
    short = shorten(text, 160)
    assert len(short) <= 160 and short.endswith(" …")
    assert text.startswith(short[: -len(" …")]) and text[len(short) - 2] == " "  # cut between words
    assert shorten("short\nreason", 160) == "short reason"


def test_an_unreadable_checkpoint_reason_is_cut_between_words(tmp_path, monkeypatch):
    """Fault: explain: an unreadable checkpoint with a long reason — cut between words."""
    import torch

    from maskscope.errors import CheckpointError
    from maskscope.methods.realtime.checkpoint import read_checkpoint

    def load(*args, **kwargs):
        raise RuntimeError("invalid load key, " + "word " * 60)

    monkeypatch.setattr(torch, "load", load)
    path = tmp_path / "m.pt"
    path.write_bytes(b"x")
    with pytest.raises(CheckpointError) as err:
        read_checkpoint(path)
    reason = str(err.value).split("(", 1)[1][:-1]
    assert reason.endswith(" …") and set(reason.split()) <= {"invalid", "load", "key,", "word", "…"}


@pytest.mark.parametrize("kind, expected", [("loop", "symbolic link loop"),
                                            ("broken", "broken symbolic link"), ("missing", "no such file")])
def test_symlink_loops_and_broken_links_are_named(tiny, kind, expected, capsys):
    """Fault: explain: a symbolic link loop or a broken link — skipped with its cause named."""
    tmp, flags = tiny
    target = tmp / "in.png"
    if kind == "loop":
        os.symlink(tmp / "other.png", target)
        os.symlink(target, tmp / "other.png")
    elif kind == "broken":
        os.symlink(tmp / "gone.png", target)
    good = random_photo(tmp / "good.png")
    out = tmp / "o"
    code = main(["explain", str(target), str(good), "--out", str(out), "--iterations", "1", "--no-figures",
                 *flags])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and f"in.png: {expected}" in err, err
    assert np.load(out / "good.npy").shape == (30, 40)  # the rest of the batch is finished


def test_synthetic_notes_say_zero_not_none_for_too_few_scenes():
    """Fault: evaluate --synthetic --scenes 1 — the notes say 0 spurious-class images (not None) and ask for
    more scenes."""
    from maskscope.evaluate.synthetic import synthetic_markdown, synthetic_rows

    rows = synthetic_rows({"center": {"n_report": 1}}, {"center": {"background": {}}}, 3, 4)
    assert rows["center"]["n_spurious_class"] == 0
    info = {"scenes": 1, "seed": 0, "tune_fraction": 0.3, "pointing_tolerance": 4.3,
            "report_clean": 1, "n_spurious_class": 0}
    text = synthetic_markdown(rows, info)
    assert "None" not in text and "1 clean and 0 spurious-class images reported; too few" in text


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
