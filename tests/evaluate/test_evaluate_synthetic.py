"""The synthetic evaluation's notes (evaluate/synthetic.py)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.usefixtures("one_thread")


def test_synthetic_notes_say_zero_not_none_for_too_few_scenes():
    """Fault: evaluate --synthetic --scenes 1 — the notes say 0 spurious-class images (not None) and ask for
    more scenes."""
    from maskscope.evaluate.synthetic import synthetic_markdown, synthetic_rows

    rows = synthetic_rows({"center": {"n_report": 1}}, {"center": {"background": {}}}, 3, 4)
    assert rows["center"]["n_spurious_class"] == 0
    info = {"scenes": 1, "seed": 0, "tune_fraction": 0.3, "pointing_tolerance": 4.3,
            "report_clean": 1, "n_spurious_class": 0}
    text = synthetic_markdown(rows, info)
    assert "None" not in text and "1 clean and 0 spurious-class images reported; too few" in text
