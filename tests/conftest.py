"""Shared pytest fixtures; the tiny analytic models themselves live in ``fixtures.py``."""

from __future__ import annotations

import pytest
import torch
from fixtures import QuadrantClassifier


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
