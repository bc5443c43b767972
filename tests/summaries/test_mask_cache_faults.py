"""The crisp-mask cache is keyed by the classifier's content, not its name, and never trusts a bad
entry: another model with the same name (other weights), a wrong-shape, NaN-filled or integer
entry are all recomputed, and counted as stale."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from fixtures import seeded_model
from PIL import Image

from maskscope.blackbox import BlackBox
from maskscope.summaries.masks import CacheReport, cached_crisp_masks

pytestmark = pytest.mark.usefixtures("one_thread")


def model(seed: int) -> BlackBox:
    return seeded_model(seed, classes=3)


def _images(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    paths = []
    for i in range(2):
        path = folder / f"s{i}.png"
        Image.fromarray(rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)).save(path)
        paths.append(path)
    return paths


def _run(bb, paths, cache) -> tuple[np.ndarray, CacheReport]:
    report = CacheReport()
    masks = cached_crisp_masks(bb, paths, [0] * len(paths), cache, iterations=2, crisp_iterations=1,
                               progress=False, report=report)
    return masks, report


def test_a_model_with_other_weights_and_the_same_name_recomputes(tmp_path):
    paths, cache = _images(tmp_path / "img"), tmp_path / "masks"
    first, _ = _run(model(0), paths, cache)
    _, again = _run(model(0), paths, cache)
    assert (again.reused, again.computed) == (2, 0)  # same weights: reused
    second, other = _run(model(1), paths, cache)
    assert (other.reused, other.computed, other.stale) == (0, 2, 2)
    assert not np.array_equal(first, second)


@pytest.mark.parametrize("bad", ["shape", "nan", "int"])
def test_a_bad_entry_is_recomputed_and_said_so(tmp_path, bad):
    paths, cache = _images(tmp_path / "img"), tmp_path / "masks"
    good, _ = _run(model(0), paths, cache)
    npy = sorted(cache.glob("*.npy"))[0]
    entry = {"shape": np.zeros((7, 5), np.float32), "nan": np.full((224, 224), np.nan, np.float32),
             "int": np.zeros((224, 224), np.int64)}[bad]
    np.save(npy, entry)
    masks, report = _run(model(0), paths, cache)
    assert (report.reused, report.computed, report.stale) == (1, 1, 1)
    assert "1 stale entries recomputed" in report.line("crisp masks")
    assert np.isfinite(masks).all() and np.allclose(masks, good, atol=1e-5)
    assert np.load(npy).shape == (224, 224) and np.isfinite(np.load(npy)).all()
