"""Shared pytest fixtures; the tiny analytic models themselves live in ``fixtures.py``."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from fixtures import METHOD_TESTS, SLOW_MODULE, QuadrantClassifier

from maskscope.blackbox import BlackBox


@pytest.fixture
def one_thread():
    """Tiny models on a shared CPU: more torch threads only add synchronisation overhead."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def quadrant_model() -> QuadrantClassifier:
    return QuadrantClassifier().eval()


@pytest.fixture(scope="module")
def model() -> BlackBox:
    """The quadrant classifier as a black box over [0, 1] pixels (the API fault tests' model)."""
    return BlackBox(QuadrantClassifier().eval(), input_size=None, mean=(0.0,) * 3, std=(1.0,) * 3,
                    class_names=["checker", "rest"])


@pytest.fixture
def tiny(tmp_path: Path, monkeypatch):
    """test_realtime's tiny classifier, importable as ``tinymods:tiny`` for the CLI."""
    monkeypatch.syspath_prepend(METHOD_TESTS)
    from test_realtime import TINY_MODULE

    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "tinymods.py").write_text(TINY_MODULE)
    return tmp_path, ["--classifier", "tinymods:tiny"]


@pytest.fixture
def explain_setup(tmp_path: Path, monkeypatch):
    """The tiny classifier and a slow one (``slowmods:slow``), with explain's quick flags."""
    monkeypatch.syspath_prepend(METHOD_TESTS)
    from test_realtime import TINY_MODULE

    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "tinymods.py").write_text(TINY_MODULE)
    (tmp_path / "slowmods.py").write_text(SLOW_MODULE)
    return tmp_path, ["--classifier", "tinymods:tiny", "--iterations", "2", "--json"]
