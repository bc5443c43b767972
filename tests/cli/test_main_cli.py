"""The command line's entry (cli/main.py): an error during a run is one line of its own."""

from __future__ import annotations

import pytest
from fixtures import own_error_line as one_line
from fixtures import random_photo

from maskscope.cli.main import main

pytestmark = pytest.mark.usefixtures("one_thread")


def test_an_error_during_the_run_starts_its_own_line(tiny, monkeypatch, capsys):
    """Fault: explain: an error in the middle of a run — starts its own line, not glued to the progress bar.
    """
    from maskscope.errors import TargetError
    from maskscope.target import Target

    tmp, flags = tiny

    def fail(self, blackbox, images):
        raise TargetError(f"cannot take the top 9 of {blackbox.num_classes} classes")

    monkeypatch.setattr(Target, "resolve", fail)  # where every method resolves its targets
    code = main(["explain", str(random_photo(tmp / "p.png")), "--out", str(tmp / "o"), "--iterations", "1",
                 *flags])
    assert code == 2
    assert one_line(capsys) == "maskscope: error: cannot take the top 9 of 5 classes"
