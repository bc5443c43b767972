"""Sharded evaluation under torchrun (gloo, CPU): the same files as one process, and resumable."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from maskscope.distributed import Distributed

SRC = Path(__file__).resolve().parents[2] / "src"


@pytest.mark.parametrize("world, batch", [(2, 3), (3, 2), (1, 4)])
def test_batches_are_a_partition_in_single_process_batches(world, batch):
    items = list(range(11))
    shares = [Distributed(rank, world).batches(items, batch) for rank in range(world)]
    chunks = sorted(chunk for share in shares for chunk in share)
    assert chunks == [items[i : i + batch] for i in range(0, 11, batch)]  # the single process's batches
    assert sorted(i for r in range(world) for i in Distributed(r, world).share(items, batch)) == items


def _evaluate(out: Path, data: Path, ranks: int) -> None:
    command = ["evaluate", "--data", str(data), "--classifier", "synthetic:clean", "--methods",
               "meaningful,gradcam", "--iterations", "4", "--batch-size", "2", "--quiet", "--examples", "0",
               "--out", str(out)]
    if ranks == 1:
        launcher = [sys.executable, "-m", "maskscope"]
    else:
        launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node",
                    str(ranks), "-m", "maskscope"]
    # one thread each, so both runs add up every sum in the same order
    env = {**os.environ, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([*launcher, *command], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]


def _files(out: Path) -> dict[str, bytes]:
    """metrics.json and every cached mask and score file, by path."""
    found = {"metrics.json": (out / "metrics.json").read_bytes()}
    for path in sorted((out / "cache").rglob("*")):
        if path.suffix in (".npy", ".json"):
            found[str(path.relative_to(out))] = path.read_bytes()
    return found


@pytest.mark.integration
def test_two_ranks_write_what_one_process_writes_and_resume_from_the_cache(tmp_path):
    from maskscope.data.synthetic import write_annotated_folder
    from maskscope.data.synthetic_scenes import make_scenes

    data = write_annotated_folder(make_scenes(7, variant="clean", split="test", seed=0), tmp_path / "data")
    _evaluate(tmp_path / "single", data, 1)
    _evaluate(tmp_path / "sharded", data, 2)
    single, sharded = _files(tmp_path / "single"), _files(tmp_path / "sharded")
    assert len(single) > 20 and single == sharded  # byte for byte
    # a rank killed before it wrote its second and fourth batches (entries are written when a batch
    # is done): the rerun computes exactly those, in the same batches, so again the same bytes
    entries = sorted(p for p in (tmp_path / "sharded" / "cache" / "meaningful").glob("*.json")
                     if p.name != "settings.json")
    lost = entries[2:4] + entries[6:]
    for path in lost:
        path.unlink()
    _evaluate(tmp_path / "sharded", data, 2)
    details = json.loads((tmp_path / "sharded" / "details.json").read_text())
    assert details["info"]["computed_now"] == {"meaningful": len(lost), "gradcam": 0, "center": 0, "full": 0,
                                               "gt-boxes": 0}
    assert _files(tmp_path / "sharded") == single
