"""Issue 12: faults that used to give silent wrong results, lost data or tracebacks. Each test
checks the exit code, the one-line message and that finished results are intact (by content)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from fixtures import random_photo
from PIL import Image

from maskscope.cli.main import main

pytestmark = pytest.mark.usefixtures("one_thread")
METHOD_TESTS = str(Path(__file__).parent / "methods")  # test_realtime's tiny masker, also when run alone


def one_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    lines = [ln for ln in err.splitlines() if ln.startswith("maskscope: error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


# -- item 3: explain-video -------------------------------------------------------------------------
@pytest.fixture
def video_setup(tmp_path: Path, monkeypatch):
    pytest.importorskip("imageio_ffmpeg")
    monkeypatch.syspath_prepend(METHOD_TESTS)
    from test_realtime import TINY_MODULE, tiny_blackbox, tiny_masker

    from maskscope.methods.realtime import export_weights

    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "tinymods.py").write_text(TINY_MODULE)
    masker = export_weights(tiny_masker(tiny_blackbox()), tmp_path / "m.pt")
    return tmp_path, ["--classifier", "tinymods:tiny", "--masker", str(masker), "--quiet"]


def _odd_video(path: Path, size=(161, 127), frames: int = 4) -> Path:
    import imageio_ffmpeg

    w, h = size
    writer = imageio_ffmpeg.write_frames(str(path), (w, h), fps=10, macro_block_size=1, codec="ffv1",
                                         pix_fmt_out="bgr0")
    writer.send(None)
    for i in range(frames):
        frame = np.zeros((h, w, 3), np.uint8)
        frame[:, i * 10 : i * 10 + 8] = 255
        writer.send(frame)
    writer.close()
    return path


def test_odd_sized_video_is_padded_to_even_and_encoded(video_setup, capsys):
    """Fault: explain-video: a video of odd size (161×127) — padded to even (162×128) and encoded, no
    temporary file left."""
    import imageio_ffmpeg

    tmp, flags = video_setup
    out = tmp / "o.mp4"
    code = main(["explain-video", str(_odd_video(tmp / "odd.mkv")), "--out", str(out), "--json", *flags])
    assert code == 0, capsys.readouterr().err
    info = json.loads(capsys.readouterr().out)
    assert info["frames"] == 4 and info["size"] == [161, 127] and info["encoded_size"] == [162, 128]
    assert out.stat().st_size > 0 and imageio_ffmpeg.count_frames_and_secs(str(out))[0] == 4
    assert not list(tmp.glob(".o.*"))  # no temporary file left behind


@pytest.mark.parametrize("case", ["png", "png-renamed", "no-extension", "folder"])
def test_video_input_or_output_mistakes_are_one_line_and_keep_the_old_result(video_setup, case, capsys):
    """Fault: explain-video: an image given as the video, an --out without a video extension or a folder — one
    line, exit 2, the earlier result kept."""
    tmp, flags = video_setup
    out = tmp / "o.mp4"
    out.write_bytes(b"an earlier result")
    Image.new("RGB", (40, 30), (200, 10, 10)).save(tmp / "photo.png")
    video = tmp / "photo.png"
    if case == "png-renamed":
        video = tmp / "photo.mp4"
        video.write_bytes((tmp / "photo.png").read_bytes())
    target = out
    if case in ("no-extension", "folder"):
        video = _odd_video(tmp / "odd.mkv")
        target = tmp / "noext" if case == "no-extension" else tmp
    code = main(["explain-video", str(video), "--out", str(target), *flags])
    line = one_line(capsys)
    assert code == 2
    expected = {"png": "is an image", "png-renamed": "is an image", "no-extension": "video extension",
                "folder": "is a folder"}[case]
    assert expected in line, line
    assert out.read_bytes() == b"an earlier result"
    assert not (tmp / "noext").exists()


def test_failed_encode_is_an_error_not_a_success_and_leaves_nothing(video_setup, capsys, monkeypatch):
    """Fault: explain-video: the encoder fails — an error with exit 2, not a success, and no output or
    temporary file left."""
    import maskscope.video as video_mod

    tmp, flags = video_setup
    monkeypatch.setattr(video_mod, "even_frame", lambda frame: frame)  # as before the fix: odd sizes,
    monkeypatch.setattr(video_mod, "even_size", lambda w, h: (w, h))  # which libx264 cannot encode
    out = tmp / "o.mp4"
    code = main(["explain-video", str(_odd_video(tmp / "odd.mkv")), "--out", str(out), *flags])
    line = one_line(capsys)
    assert code == 2 and "cannot encode video" in line and not out.exists()
    assert not list(tmp.glob(".o.*"))


# -- item 4: train --out ---------------------------------------------------------------------------
@pytest.fixture
def train_setup(tmp_path: Path, monkeypatch):
    monkeypatch.syspath_prepend(METHOD_TESTS)
    from test_realtime import TINY_MODULE
    from test_realtime_train import make_data

    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "tinymods.py").write_text(TINY_MODULE)
    data = make_data(tmp_path / "d")
    return tmp_path, ["train", "--data", str(data), "--classifier", "tinymods:tiny", "--epochs", "1",
                      "--batch-size", "4", "--quiet", "--checkpoint-every", "1"]


def test_train_refuses_to_replace_a_file_that_is_not_a_checkpoint(train_setup, capsys):
    """Fault: train: --out names a file that is not a checkpoint (photo.jpg) — refused, even with --overwrite;
    the file is untouched."""
    tmp, args = train_setup
    photo = tmp / "photo.jpg"
    Image.new("RGB", (20, 20), (1, 2, 3)).save(photo)
    before = photo.read_bytes()
    assert main(args + ["--out", str(photo)]) == 2
    assert "not a maskscope checkpoint" in one_line(capsys) and photo.read_bytes() == before
    assert main(args + ["--out", str(photo), "--overwrite"]) == 2  # --overwrite is for checkpoints only
    assert photo.read_bytes() == before


def test_train_needs_resume_or_overwrite_for_an_existing_checkpoint(train_setup, capsys):
    """Fault: train: --out holds a checkpoint, no --resume — refused in one line; --resume continues it,
    --overwrite replaces it."""
    tmp, args = train_setup
    ckpt = tmp / "m.pt"
    assert main(args + ["--out", str(ckpt), "--max-steps", "2"]) == 0
    capsys.readouterr()
    before = ckpt.read_bytes()
    assert main(args + ["--out", str(ckpt), "--max-steps", "1"]) == 2
    assert "--resume" in one_line(capsys) and ckpt.read_bytes() == before
    assert main(args + ["--out", str(ckpt), "--resume", "--max-steps", "3"]) == 0
    assert "after 3 steps" in capsys.readouterr().out
    assert main(args + ["--out", str(ckpt), "--overwrite", "--max-steps", "1"]) == 0
    assert "after 1 steps" in capsys.readouterr().out


@pytest.mark.parametrize("case", ["folder", "lr-nan"])
def test_train_out_folder_or_nan_lr_fail_before_training(train_setup, case, capsys):
    """Fault: train: --out is a folder, or --lr nan — one line, exit 2, before any training."""
    tmp, args = train_setup
    extra = ["--out", str(tmp)] if case == "folder" else ["--out", str(tmp / "m.pt"), "--lr", "nan"]
    assert main(args + extra) == 2
    line = one_line(capsys)
    assert ("is a folder" if case == "folder" else "learning rate") in line
    assert not list(tmp.glob("*.tmp")) and not (tmp / "m.pt").exists()


# -- items 5-7: explain output names, atomic writes and the folder lock, the manifest ---------------
SLOW_MODULE = """
import time

import torch
from torch import nn

from maskscope.blackbox import BlackBox


class Sleep(nn.Module):
    def forward(self, x):
        time.sleep(0.03)
        return x


def slow():
    gen = torch.Generator().manual_seed(0)
    net = nn.Sequential(Sleep(), nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2),
                        nn.Flatten(), nn.Linear(16, 3))
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.3)
    return BlackBox(net, input_size=(24, 24), mean=(0.5,) * 3, std=(0.25,) * 3,
                    class_names=["c0", "c1", "c2"], name="slow")
"""


@pytest.fixture
def explain_setup(tmp_path: Path, monkeypatch):
    monkeypatch.syspath_prepend(METHOD_TESTS)
    from test_realtime import TINY_MODULE

    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "tinymods.py").write_text(TINY_MODULE)
    (tmp_path / "slowmods.py").write_text(SLOW_MODULE)
    return tmp_path, ["--classifier", "tinymods:tiny", "--iterations", "2", "--json"]


def _records(capsys) -> list[dict]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]


def _contents(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.iterdir())
            if p.is_file() and not p.name.startswith(".")}


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


def test_rerun_with_no_figures_reports_stale_figures_and_clean_removes_them(explain_setup, capsys):
    """Fault: explain: a rerun with --no-figures into the same --out — the earlier figures are reported as
    stale in manifest.json; --clean removes them."""
    tmp, flags = explain_setup
    photo = str(random_photo(tmp / "p.png", 1))
    out = tmp / "out"
    assert main(["explain", photo, "--out", str(out), *flags]) == 0
    assert (out / "p_figure.png").is_file()
    (out / "notes.txt").write_text("mine")  # a file the user put there: never deleted
    capsys.readouterr()
    assert main(["explain", photo, "--out", str(out), "--no-figures", *flags]) == 0
    err = capsys.readouterr().err
    assert "4 files of an earlier run replaced" in err and "2 files not written by this run kept" in err
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["stale"] == ["notes.txt", "p_figure.png"] and manifest["earlier"] == ["p_figure.png"]
    assert manifest["sources"]["p.npy"] == str(Path(photo).resolve())
    assert "p_figure.png" not in manifest["files"]
    figure = (out / "p_figure.png").read_bytes()
    assert figure[:4] == b"\x89PNG"  # kept, whole, until asked
    assert main(["explain", photo, "--out", str(out), "--no-figures", "--clean", *flags]) == 0
    assert "1 stale files of an earlier run deleted (--clean)" in capsys.readouterr().err
    assert not (out / "p_figure.png").exists() and (out / "notes.txt").read_text() == "mine"


def test_clean_deletes_only_what_an_earlier_run_wrote(explain_setup, capsys):
    """Fault: explain: --clean in a folder with the user's own files — deletes only what an earlier run wrote.
    """
    tmp, flags = explain_setup
    a, b = str(random_photo(tmp / "a.png", 1)), str(random_photo(tmp / "b.png", 2))
    out = tmp / "out"
    assert main(["explain", a, b, "--out", str(out), "--no-figures", *flags]) == 0
    (out / "notes.txt").write_text("mine")
    kept = (out / "a.npy").read_bytes()
    capsys.readouterr()
    assert main(["explain", b, "--out", str(out), "--no-figures", "--clean", *flags]) == 0
    assert "4 stale files of an earlier run deleted (--clean)" in capsys.readouterr().err
    assert not (out / "a.npy").exists() and (out / "b.npy").is_file() and (out / "notes.txt").is_file()
    assert kept and json.loads((out / "manifest.json").read_text())["stale"] == ["notes.txt"]


def test_results_line_only_when_something_was_written(explain_setup, capsys):
    """Fault: explain: a run that writes nothing — no 'results in' line."""
    tmp, flags = explain_setup
    bad = tmp / "bad.png"
    bad.write_bytes(b"nope")
    out = tmp / "out"
    assert main(["explain", str(bad), "--out", str(out), *flags[:-1]]) == 2
    assert "results in" not in capsys.readouterr().err and not (out / "manifest.json").exists()


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


# -- items 8-9: bounded resources ------------------------------------------------------------------
def _big_png(path: Path, side: int) -> Path:
    """A PNG whose header claims side × side pixels (1-bit, all zero, so it is tiny on disk)."""
    Image.new("1", (side, side)).save(path)
    return path


def test_decompression_bomb_is_skipped_like_a_bad_file_and_the_batch_survives(explain_setup, capsys):
    """Fault: explain: a 15000×15000 PNG (decompression bomb) — skipped like a bad file; the rest of the batch
    is explained."""
    tmp, flags = explain_setup
    bomb = _big_png(tmp / "bomb.png", 15000)  # above Pillow's own limit
    good = random_photo(tmp / "good.png", 1)
    out = tmp / "out"
    code = main(["explain", str(bomb), str(good), "--out", str(out), "--no-figures", *flags,
                 "--max-pixels", str(10**9)])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and "DecompressionBomb" not in err
    assert "bomb.png: image too large to decode safely" in err
    assert np.load(out / "good.npy").shape == (30, 40)  # the rest of the batch is finished


def test_max_pixels_skips_big_images_with_one_line_each(explain_setup, capsys):
    """Fault: explain: images above --max-pixels — skipped, one line each."""
    tmp, flags = explain_setup
    big = random_photo(tmp / "big.png", 2)  # 30 × 40 = 1200 px
    small = tmp / "small.png"
    Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(small)
    out = tmp / "out"
    assert main(["explain", str(big), str(small), "--out", str(out), "--max-pixels", "1000", *flags]) == 2
    err = capsys.readouterr().err
    assert "big.png: image is 40x30 (0 megapixels), above the limit of 0.001 (--max-pixels)" in err
    assert (out / "small.npy").is_file() and not (out / "big.npy").exists()


def test_large_jpeg_is_decoded_reduced_but_the_mask_has_the_files_size(tmp_path):
    """Fault: explain: a large JPEG — decoded reduced, but the mask has the file's size."""
    from maskscope.images import load_image_reduced

    path = tmp_path / "large.jpg"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (1600, 2400, 3), dtype=np.uint8)).save(path)
    array, native = load_image_reduced(path, (224, 224))
    assert native == (1600, 2400) and array.shape[0] >= 224 and array.shape[1] >= 224
    assert array.shape[0] * array.shape[1] <= 1600 * 2400 // 16  # decoded at 1/4 or less per side
    png = tmp_path / "large.png"
    Image.fromarray(np.zeros((900, 700, 3), np.uint8)).save(png)
    array, native = load_image_reduced(png, (224, 224))
    assert native == (900, 700) and array.shape[:2] == (300, 234)  # reduce(3), rounded up: still ≥ 224


@pytest.mark.parametrize("command", ["explain", "evaluate", "summarize"])
def test_absurd_iterations_are_refused_before_any_work(tmp_path, command, capsys):
    """Fault: explain, evaluate, summarize: --iterations 1000000000 — refused before any work (at most 20000).
    """
    args = {"explain": ["explain", "x.png"], "evaluate": ["evaluate", "--data", "d"],
            "summarize": ["summarize", "d"]}[command]
    assert main([*args, "--iterations", "1000000000", "--out", str(tmp_path / "o")]) == 2
    line = one_line(capsys)
    assert "--iterations" in line and "at most 20000" in line and not (tmp_path / "o").exists()


def test_negative_examples_is_refused(tmp_path, capsys):
    """Fault: evaluate: --examples -1 — refused in one line."""
    assert main(["evaluate", "--data", "d", "--examples", "-1", "--out", str(tmp_path / "o")]) == 2
    assert "--examples" in one_line(capsys)


# -- item 13 (part): annotation keys may not leave images/ ------------------------------------------
@pytest.mark.parametrize("key", ["../../x.png", "../x.png", "/etc/x.png"])
def test_evaluate_annotation_keys_outside_images_are_refused(tmp_path, key, capsys):
    """Fault: evaluate: an annotation key outside the images folder (../../x.png, ../x.png, /etc/x.png) —
    refused in one line."""
    from maskscope.data.folders import load_folder
    from maskscope.errors import DataError

    data = tmp_path / "a" / "b" / "d"
    random_photo(data / "images" / "ok.png", 0)
    random_photo(tmp_path / "a" / "x.png", 1)  # what ../../x.png would read
    ann = {"ok.png": {"class_index": 0}, key: {"class_index": 1}}
    (data / "annotations.json").write_text(json.dumps(ann))
    with pytest.raises(DataError, match="must lie inside"):
        load_folder(data)
    assert main(["evaluate", "--data", str(data), "--out", str(tmp_path / "o"), "--quiet"]) == 2
    assert "must lie inside" in one_line(capsys)
