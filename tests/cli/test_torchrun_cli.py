"""``explain`` and ``summarize`` under ``torchrun --nproc-per-node 2`` (gloo, CPU) write what one
process writes (``evaluate``: ``tests/evaluate/test_distributed.py``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from fixtures import cache_crisp_mask, parts_folder
from PIL import Image

pytestmark = pytest.mark.integration

SRC = Path(__file__).resolve().parents[2] / "src"


def maskscope(ranks: int, *command: str) -> subprocess.CompletedProcess:
    if ranks == 1:
        launcher = [sys.executable, "-m", "maskscope"]
    else:
        launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node",
                    str(ranks), "-m", "maskscope"]
    env = {**os.environ, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1"}  # same sums in the same order
    done = subprocess.run([*launcher, *command], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return done


def test_explain_shards_the_images_and_writes_one_manifest(tmp_path):
    rng = np.random.default_rng(0)
    for i in range(5):
        Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(tmp_path / f"img{i}.png")
    images = [str(tmp_path / f"img{i}.png") for i in range(5)]
    common = ["--classifier", "synthetic:clean", "--iterations", "3", "--batch-size", "2", "--no-figures"]
    maskscope(1, "explain", *images, *common, "--out", str(tmp_path / "single"))
    maskscope(2, "explain", *images, *common, "--out", str(tmp_path / "sharded"))
    single = {p.name: p.read_bytes() for p in (tmp_path / "single").iterdir() if not p.name.startswith(".")}
    sharded = {p.name: p.read_bytes() for p in (tmp_path / "sharded").iterdir() if not p.name.startswith(".")}
    assert len(single) == 5 * 4 + 1 and single == sharded  # mask npy/png, overlay, json per image; manifest


def test_summarize_shares_the_crisp_masks_and_rank_0_writes_the_report(tmp_path):
    folder, masks = parts_folder(tmp_path, 8)
    fast = ["--target", "3", "--proposals", "200", "--proposal-mode", "fast", "--iterations", "1",
            "--crisp-iterations", "1", "--quiet", "--threads", "1", "--batch-size", "1"]
    reports = {}
    for ranks, name in ((1, "single"), (2, "sharded")):
        out = tmp_path / name
        for i, m in enumerate(masks[:6]):  # six cached (the objects), two computed now, one per rank
            cache_crisp_mask(out, folder / f"s{i:02d}.png", m, 3)
        maskscope(ranks, "summarize", str(folder), "--out", str(out), *fast)
        payload = json.loads((out / "summaries.json").read_text())
        payload.pop("timings_s")
        reports[name] = payload
    assert reports["single"] == reports["sharded"]
    computed = {p.name: p.read_bytes() for p in (tmp_path / "single" / "masks").glob("s0[67]-*.npy")}
    assert len(computed) == 2
    assert computed == {p.name: p.read_bytes() for p in (tmp_path / "sharded" / "masks").glob("s0[67]-*.npy")}
