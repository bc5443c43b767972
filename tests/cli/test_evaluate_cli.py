"""``maskscope evaluate`` (cli/evaluate.py): its own options refused in one line."""

from __future__ import annotations

import pytest
from fixtures import error_line as one_line

from maskscope.cli.main import main

pytestmark = pytest.mark.usefixtures("one_thread")


def test_negative_examples_is_refused(tmp_path, capsys):
    """Fault: evaluate: --examples -1 — refused in one line."""
    assert main(["evaluate", "--data", "d", "--examples", "-1", "--out", str(tmp_path / "o")]) == 2
    assert "--examples" in one_line(capsys)
