"""Sharded evaluation under torchrun (gloo, CPU): the same files as one process, and resumable."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
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


TESTS = Path(__file__).resolve().parents[1]


def _launcher(ranks: int) -> list[str]:
    """``maskscope`` in one process, or under torchrun with ``ranks`` processes."""
    if ranks == 1:
        return [sys.executable, "-m", "maskscope"]
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(ranks),
            "-m", "maskscope"]


def _env() -> dict[str, str]:
    # fixtures.py importable for --classifier fixtures:...; one thread: the same sums in the same order
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), str(TESTS)]), "OMP_NUM_THREADS": "1"}


def _run_ok(command: list[str]) -> None:
    done = subprocess.run(command, env=_env(), capture_output=True, text=True, timeout=600)
    # a rank's own last words (e.g. a C++ abort's "terminate called ...") come before torchrun's
    # own traceback (the last one) and summary, which would otherwise fill the message
    said = done.stderr.rsplit("Traceback (most recent call last)", 1)[0].splitlines()[-15:]
    assert done.returncode == 0, "\n".join(said) + "\n" + done.stderr[-1500:]


def _evaluate(out: Path, data: Path, ranks: int) -> None:
    _run_ok([*_launcher(ranks), "evaluate", "--data", str(data), "--classifier", "synthetic:clean",
             "--methods", "meaningful,gradcam", "--iterations", "4", "--batch-size", "2", "--quiet",
             "--examples", "0", "--out", str(out)])


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


# -- a rank really killed (SIGKILL), then the same command again ------------------------------------
KILL_METHODS = ("meaningful", "gradient")
ROWS = (*KILL_METHODS, "center", "full")  # the reference rows too (a plain folder: no gt-boxes)
N_IMAGES, BATCH = 8, 2
OWN = ["--classifier", "fixtures:own_classifier"]


def _torchrun_works() -> bool:
    import torch.distributed as dist

    return dist.is_available() and dist.is_gloo_available()


def _launch(ranks: int, out: Path, data: Path, classifier: list[str]) -> list[str]:
    return [*_launcher(ranks), "evaluate", "--data", str(data), *classifier,
            "--methods", ",".join(KILL_METHODS), "--iterations", "5", "--batch-size", str(BATCH), "--quiet",
            "--examples", "0", "--out", str(out)]


def _children() -> dict[int, list[int]]:
    """Every process's children, from /proc."""
    out: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile
        out.setdefault(ppid, []).append(int(stat.parent.name))
    return out


def _worker_pid(launcher: int, rank: int) -> int | None:
    """The process below ``launcher`` (torchrun) whose environment says ``RANK=rank``."""
    children, todo = _children(), [launcher]
    while todo:
        pid = todo.pop()
        todo += children.get(pid, [])
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if pid != launcher and f"RANK={rank}".encode() in environ:
            return pid
    return None


def _entries(out: Path) -> dict[str, tuple[int, bytes]]:
    """Every complete cache entry's files (json, npy; settings excluded): path → (mtime_ns, bytes)."""
    found = {}
    for method in ROWS:
        for meta in sorted((out / "cache" / method).glob("*.json")):
            if meta.name != "settings.json":
                for path in (meta, meta.with_suffix(".npy")):
                    found[str(path.relative_to(out))] = (path.stat().st_mtime_ns, path.read_bytes())
    return found


@pytest.fixture(scope="module")
def one_process(tmp_path_factory) -> tuple[Path, Path]:
    """The images (a plain folder: targets are the model's top-1) and one process's run on them."""
    from fixtures import own_images
    from PIL import Image

    root = tmp_path_factory.mktemp("killed")
    data = root / "data"
    data.mkdir()
    for i in range(N_IMAGES):
        x = own_images(1, seed=i)[0]
        x = x.flip(-1) if i % 2 else x  # the evidence elsewhere: other targets, other masks
        Image.fromarray((x.permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)).save(data / f"img{i}.png")
    _run_ok(_launch(1, root / "single", data, OWN))
    return data, root / "single"


@pytest.mark.integration
@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="finds the workers in /proc (Linux)")
@pytest.mark.skipif(not _torchrun_works(), reason="torch.distributed with gloo is not available")
@pytest.mark.parametrize("killed", [0, 1])
def test_a_rank_killed_with_sigkill_resumes_and_ends_as_one_process_would(one_process, tmp_path, killed):
    """torchrun with two ranks; rank ``killed`` is SIGKILLed after caching its first batch, when the
    other rank has cached its whole share and waits for it (the barrier before rank 0 scores). The
    same command again reuses what was cached and ends with one process's files."""
    data, single = one_process
    # batch k (images 2k, 2k+1) is rank k mod 2's: the killed rank stalls in its next forward pass once
    # its first batch is cached, and is SIGKILLed there once the other rank's last entry is cached too
    out = tmp_path / "sharded"
    first = out / "cache" / "meaningful" / f"img{BATCH * killed + BATCH - 1}.json"
    other_last = out / "cache" / ROWS[-1] / f"img{N_IMAGES - BATCH * killed - 1}.json"
    stalling = ["--classifier", "fixtures:stalling_classifier", "--classifier-arg", f"after={first}",
                "--classifier-arg", f"rank={killed}"]
    run = subprocess.Popen(_launch(2, out, data, stalling), env=_env(), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 600
        pid = None
        while pid is None and run.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
            pid = _worker_pid(run.pid, killed) if first.exists() and other_last.exists() else None
        if pid is None:
            os.killpg(run.pid, signal.SIGKILL)
            pytest.fail(f"the ranks never got there: {run.communicate()[1][-2000:]}")
        os.kill(pid, signal.SIGKILL)
        _, stderr = run.communicate(timeout=600)  # torchrun stops the other rank, waiting for this one
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
            run.wait()
    assert run.returncode != 0, stderr[-2000:]
    assert not (out / "metrics.json").exists()

    # nothing half-written (at worst a stray *.tmp, or a mask whose json did not follow: recomputed)
    kept = _entries(out)
    assert str(first.relative_to(out)) in kept
    for path in (out / "cache").rglob("*"):
        if path.suffix == ".json":
            json.loads(path.read_text())
        elif path.suffix == ".npy":
            assert np.load(path).shape == (64, 64)
    reused = {m: sum(p.startswith(f"cache/{m}/") and p.endswith(".json") for p in kept) for m in ROWS}
    half = N_IMAGES // 2  # the other rank's share, all rows; the killed rank's first batch
    assert reused == {"meaningful": half + BATCH, "gradient": half, "center": half, "full": half}

    _run_ok(_launch(2, out, data, OWN))  # no stale lock, no leftover blocks the rerun
    details = json.loads((out / "details.json").read_text())
    assert details["info"]["computed_now"] == {m: N_IMAGES - reused[m] for m in ROWS}
    assert {p: v for p, v in _entries(out).items() if p in kept} == kept  # reused as they were, not rewritten
    assert _files(out) == _files(single)  # metrics.json and every mask: byte for byte
