"""Issue 12, item 1: the crisp-mask cache is keyed by file content + target + settings."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from fixtures import tiny_model
from PIL import Image

from maskscope.summaries.masks import CacheReport, cached_crisp_masks

pytestmark = pytest.mark.usefixtures("one_thread")


def _image(path: Path, shade: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rgb = np.full((40, 48, 3), 30, np.uint8)
    rgb[5:25, 8:30, 0] = shade
    Image.fromarray(rgb).save(path)
    return path


def _run(paths, targets, cache, **kw) -> tuple[np.ndarray, CacheReport]:
    report = CacheReport()
    masks = cached_crisp_masks(tiny_model(), paths, targets, cache, iterations=1, crisp_iterations=1,
                               progress=False, report=report, **kw)
    return masks, report


def _entries(cache: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(cache.glob("*.npy"))}


def test_same_stem_in_another_folder_or_extension_never_shares_an_entry(tmp_path):
    cache = tmp_path / "out" / "masks"
    a = [_image(tmp_path / "one" / "x.png", 250), _image(tmp_path / "one" / "y.png", 200)]
    _, first = _run(a, [0, 0], cache)
    assert (first.reused, first.computed, first.stale) == (0, 2, 0)
    before = _entries(cache)
    # another folder, same file names, other pixels: computed, and the first folder's entries kept
    b = [_image(tmp_path / "two" / "x.png", 90), _image(tmp_path / "two" / "y.png", 120)]
    _, second = _run(b, [0, 0], cache)
    assert (second.reused, second.computed) == (0, 2)
    after = _entries(cache)
    assert len(after) == 4 and all(after[k] == v for k, v in before.items())
    # a.jpg beside a.png: two entries
    c = [_image(tmp_path / "three" / "a.png", 250), _image(tmp_path / "three" / "a.jpg", 250)]
    _, third = _run(c, [0, 0], cache)
    assert third.computed == 2 and len(_entries(cache)) == 6
    # a rerun of the first folder reuses exactly its own masks
    masks, again = _run(a, [0, 0], cache)
    assert (again.reused, again.computed) == (2, 0)
    assert np.array_equal(masks[0], np.load(cache / sorted(before)[0]))


def test_edited_pixels_or_target_recompute_exactly_those_entries(tmp_path):
    cache = tmp_path / "masks"
    paths = [_image(tmp_path / "img" / f"s{i}.png", 100 + 40 * i) for i in range(3)]
    _run(paths, [0, 0, 0], cache)
    _image(paths[1], 10)  # new pixels, same name
    _, report = _run(paths, [0, 0, 0], cache)
    assert (report.reused, report.computed, report.stale) == (2, 1, 1)
    _, report = _run(paths, [0, 0, 1], cache)  # another target for s2
    assert (report.reused, report.computed, report.stale) == (2, 1, 1)
    assert "1 stale entries recomputed" in report.line("crisp masks")


@pytest.mark.parametrize("garbage", [b"not a numpy file", "pickle"])
def test_garbage_or_pickled_cache_entry_is_recomputed_never_loaded(tmp_path, garbage):
    cache = tmp_path / "masks"
    paths = [_image(tmp_path / "img" / "s0.png", 200)]
    _run(paths, [0], cache)
    npy = next(cache.glob("*.npy"))
    if garbage == "pickle":
        np.save(npy, np.array([{"evil": 1}], dtype=object), allow_pickle=True)
    else:
        npy.write_bytes(garbage)
    masks, report = _run(paths, [0], cache)
    assert (report.computed, report.stale) == (1, 1)
    assert masks.dtype == np.float32 and np.load(npy).dtype == np.float32
    meta = json.loads(npy.with_suffix(".json").read_text())
    assert meta["file"] == str(paths[0].resolve()) and len(meta["sha256"]) == 64
