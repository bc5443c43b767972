"""``summaries.summarize_folder``: the CLI's whole run, called as a library function."""

from __future__ import annotations

import json

import numpy as np
import pytest
from fixtures import MODEL, cache_crisp_mask, parts_folder

from maskscope.errors import ConfigError, DataError
from maskscope.summaries import summarize_folder


def test_summarize_folder_without_the_cli(tmp_path):
    from maskscope.zoo import load_classifier

    folder, masks = parts_folder(tmp_path, 6)
    out = tmp_path / "out"
    entries = [cache_crisp_mask(out, folder / f"s{i:02d}.png", m, 3) for i, m in enumerate(masks)]
    skipped = []
    (folder / "broken.jpg").write_bytes(b"not an image")
    done = summarize_folder(folder, out, blackbox=load_classifier(MODEL), target=3, iterations=1,
                            crisp_iterations=1, proposals=200, proposal_mode="fast", threads=1,
                            on_skip=skipped.append)
    assert len(skipped) == 1 and "broken.jpg" in skipped[0] and done.skipped == skipped
    assert [p.name for p in done.paths] == [f"s{i:02d}.png" for i in range(6)] and done.targets == [3] * 6
    assert done.page.is_file() and done.page.parent == out
    report = json.loads((out / "summaries.json").read_text())
    assert len(report["summaries"]) == done.result.stats["summaries"] >= 1
    # the cached masks were reused, not recomputed
    assert np.array_equal(np.load(entries[0]), masks[0].astype(np.float32))
    assert (done.cache.reused, done.cache.computed, done.cache.stale) == (6, 0, 0)


def test_summarize_folder_rejects_bad_input_before_any_work(tmp_path):
    with pytest.raises(DataError, match="no such folder"):
        summarize_folder(tmp_path / "missing", tmp_path / "out")
    with pytest.raises(ConfigError, match="proposals"):
        summarize_folder(tmp_path, tmp_path / "out", proposals=0)
