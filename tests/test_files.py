"""``explain_files`` (files.py): its batch size checked, one path taken as one file, every file once."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from fixtures import QuadrantClassifier
from PIL import Image

from maskscope import ConfigError, explain_files
from maskscope.blackbox import BlackBox

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def files_model() -> BlackBox:
    return BlackBox(QuadrantClassifier().eval(), input_size=(64, 64), mean=(0.0,) * 3, std=(1.0,) * 3)


def _photo(path: Path, seed: int) -> Path:
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (30, 40, 3), dtype=np.uint8)).save(path)
    return path


@pytest.mark.parametrize("batch_size", [0, -1, 1.5, True])
def test_explain_files_bad_batch_size(files_model, tmp_path, batch_size):
    """Fault: API: explain_files(batch_size=0, -1, 1.5 or True) — ConfigError."""
    with pytest.raises(ConfigError, match="batch_size"):
        list(explain_files(files_model, [_photo(tmp_path / "a.png", 0)], "center", batch_size=batch_size))


@pytest.mark.parametrize("as_type", [str, Path])
def test_explain_files_with_one_path_explains_that_file(files_model, tmp_path, as_type):
    """Fault: API: explain_files('p.png') with one path, str or Path — explains that file (not its
    characters)."""
    path = _photo(tmp_path / "a.png", 0)
    results = list(explain_files(files_model, as_type(path), "center"))
    assert len(results) == 1 and not results[0].failures
    assert results[0].explanation.sources == [str(path)]


def test_explain_files_batches_cover_every_file(files_model, tmp_path):
    """Fault: API: explain_files over several batches — every file explained once."""
    paths = [_photo(tmp_path / f"{k}.png", k) for k in range(5)]
    results = list(explain_files(files_model, paths, "center", batch_size=2))
    assert [s for r in results for s in r.explanation.sources] == [str(p) for p in paths]
