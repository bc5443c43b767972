"""Training the masker: exact resumption, data-parallel (2 CPU processes), bad data (tiny, CPU)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from test_realtime import TINY_MODULE, tiny_blackbox  # tests/ is on sys.path under pytest

from maskscope.cli.main import main
from maskscope.methods.realtime import TrainConfig, load_masker, train_masker
from maskscope.methods.realtime.data import read_folder
from maskscope.methods.realtime.train import weights_digest

pytestmark = pytest.mark.usefixtures("one_thread")


def make_data(folder: Path, n: int = 12, labelled: int = 8) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    notes = {}
    for i in range(n):
        Image.fromarray((rng.random((40, 48, 3)) * 255).astype("uint8")).save(folder / f"img{i:02d}.png")
        if i < labelled:
            notes[f"img{i:02d}.png"] = {
                "class_index": i % 5,
                "boxes": [[4, 6, 30, 28]],
                "width": 48,
                "height": 40,
            }
    (folder / "annotations.json").write_text(json.dumps(notes))
    return folder


def config(**kw) -> TrainConfig:
    base = dict(epochs=3, batch_size=4, checkpoint_every=2, val_every=100, lr=3e-3)
    return TrainConfig(**(base | kw))


def test_labels_from_annotations_or_top1(tmp_path: Path):
    samples = read_folder(make_data(tmp_path / "d"))
    assert [s.label for s in samples[:8]] == [i % 5 for i in range(8)] and samples[9].label is None
    from maskscope.methods.realtime.data import fill_labels, load_pixels

    bb = tiny_blackbox()
    pixels, kept = load_pixels(samples, 32, progress=False)
    labels = fill_labels(bb, pixels, kept)
    assert labels[:8].tolist() == [i % 5 for i in range(8)]
    assert labels[8:].tolist() == bb(pixels[8:].float() / 255).argmax(1).tolist()


def test_resume_after_interruption_gives_identical_weights(tmp_path: Path):
    bb = tiny_blackbox()
    samples = read_folder(make_data(tmp_path / "d"))
    before = {k: v.clone() for k, v in bb.state_dict().items()}
    full = train_masker(bb, samples, tmp_path / "full.pt", config(), val_samples=samples, progress=False)
    # "killed" after step 5: the last checkpoint is from step 4, mid-epoch 2 (3 steps per epoch)
    part = train_masker(bb, samples, tmp_path / "part.pt", config(max_steps=5), progress=False)
    assert part["steps"] == 5
    assert torch.load(tmp_path / "part.pt", weights_only=True)["step"] == 4
    resumed = train_masker(
        bb, samples, tmp_path / "part.pt", config(), resume=tmp_path / "part.pt", progress=False
    )
    assert resumed["steps"] == full["steps"] == 9
    assert resumed["rank_digests"] == full["rank_digests"]
    on_disk = [weights_digest(load_masker(bb, tmp_path / name)) for name in ("part.pt", "full.pt")]
    assert on_disk[0] == on_disk[1]
    other_seed = train_masker(bb, samples, tmp_path / "seed1.pt", config(seed=1), progress=False)
    assert other_seed["rank_digests"] != full["rank_digests"]  # the comparison can fail
    assert all(torch.equal(v, bb.state_dict()[k]) for k, v in before.items())  # classifier untouched
    assert all(p.requires_grad and p.grad is None for p in bb.parameters())
    log = json.loads((tmp_path / "full.pt.log.json").read_text())
    assert {"val_loc_error", "val_saliency_metric", "loss", "area"} <= set(log[-1])
    assert (tmp_path / "full.pt.log.csv").read_text().startswith("step,")


def _env(tmp_path: Path) -> dict:
    (tmp_path / "tinymods.py").write_text(TINY_MODULE)
    env = dict(os.environ, PYTHONPATH=str(tmp_path), OMP_NUM_THREADS="1")
    return env


def _rank_failures(output: str) -> str:
    """torchrun's output cut to what explains a failure: each rank's last lines and the summary."""
    lines = output.splitlines()
    ranks = {line.split("]:", 1)[0] for line in lines if line.startswith("[default")}
    shown = [
        "\n".join([line for line in lines if line.startswith(rank + "]:")][-25:]) for rank in sorted(ranks)
    ]
    return "\n---\n".join(shown + ["\n".join(lines[-25:])])


def test_cli_train_distributed_two_processes_identical_weights(tmp_path: Path):
    data = make_data(tmp_path / "d")
    maskscope = shutil.which("maskscope", path=str(Path(sys.executable).parent))
    if maskscope is None:
        pytest.skip("the maskscope console script is not installed")
    out = tmp_path / "ddp.pt"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc-per-node",
        "2",
        "--standalone",  # a free port of its own: no clash with another run on this machine
        "--tee",
        "3",  # every rank's output, prefixed with its rank, so a failure shows which one and why
        maskscope,
        "train",
        "--data",
        str(data),
        "--classifier",
        "tinymods:tiny",
        "--out",
        str(out),
        "--epochs",
        "2",
        "--batch-size",
        "4",
        "--quiet",
        "--threads",
        "1",
    ]
    proc = subprocess.run(cmd, env=_env(tmp_path), cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, _rank_failures(proc.stdout + proc.stderr)
    summary = json.loads((tmp_path / "ddp.pt.summary.json").read_text())
    assert summary["world_size"] == 2 and summary["steps"] == 6
    digests = summary["rank_digests"]
    assert len(digests) == 2 and digests[0] == digests[1]


def test_cli_train_and_resume_flags(tmp_path: Path, monkeypatch, capsys):
    monkeypatch.syspath_prepend(str(tmp_path))
    _env(tmp_path)
    data = make_data(tmp_path / "d")
    args = [
        "train",
        "--data",
        str(data),
        "--classifier",
        "tinymods:tiny",
        "--out",
        str(tmp_path / "m.pt"),
        "--epochs",
        "2",
        "--batch-size",
        "4",
        "--quiet",
        "--checkpoint-every",
        "2",
    ]
    assert main(args + ["--max-steps", "3"]) == 0
    assert main(args + ["--resume"]) == 0
    assert "after 6 steps" in capsys.readouterr().out


@pytest.mark.parametrize("case", ["empty", "missing", "foreign-resume"])
def test_cli_train_bad_input_exits_2(tmp_path: Path, case: str, monkeypatch, capsys):
    monkeypatch.syspath_prepend(str(tmp_path))
    _env(tmp_path)
    data = tmp_path / "empty"
    data.mkdir()
    extra = []
    if case == "missing":
        data = tmp_path / "nope"
    if case == "foreign-resume":
        data = make_data(tmp_path / "d")
        bad = tmp_path / "bad.pt"
        bad.write_bytes(b"\x00garbage")
        extra = ["--resume", str(bad)]
    code = main(
        [
            "train",
            "--data",
            str(data),
            "--classifier",
            "tinymods:tiny",
            "--out",
            str(tmp_path / "m.pt"),
            "--quiet",
            *extra,
        ]
    )
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and err.startswith("maskscope: error:"), err
