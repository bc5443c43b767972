"""evaluate's cache never trusts a bad entry: a mask of the wrong shape, NaN-filled or of integers
is stale, recomputed and counted, instead of a misleading box error or a traceback."""

from __future__ import annotations

import numpy as np
import pytest
from fixtures import tiny_model
from test_evaluate import config, make_folder

from maskscope.data.folders import load_folder
from maskscope.evaluate import evaluate

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("bad", ["shape", "nan", "int"])
def test_a_bad_mask_entry_is_recomputed_and_counted(tmp_path, bad):
    data, out = make_folder(tmp_path / "data", n=3), tmp_path / "out"

    def run():
        cfg = config(methods=["gradient"], references=False)
        return evaluate(load_folder(data, require_boxes=True), tiny_model(), out, cfg).info

    first = run()
    npy = out / "cache" / "gradient" / "s1.npy"
    good = np.load(npy)
    entry = {"shape": np.zeros((7, 5), np.float16), "nan": np.full(good.shape, np.nan, np.float16),
             "int": np.zeros(good.shape, np.int64)}[bad]
    np.save(npy, entry)
    info = run()
    assert info["computed_now"] == {"gradient": 1} and info["stale_recomputed_now"] == {"gradient": 1}
    assert np.array_equal(np.load(npy), good)
    assert first["computed_now"] == {"gradient": 3}
