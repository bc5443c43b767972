"""The tutorials in docs/tutorials run as written: every ```python block, in order, in one namespace
(and every ```sh block, a ``maskscope`` command, in a subprocess), in a fresh working folder.
```text blocks are shown, not run. The API reference is checked by ``mkdocs build --strict`` (make test).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib
import pytest
from doc_blocks import ROOT, blocks, command_lines, run_command, run_python

TUTORIALS = sorted((ROOT / "docs" / "tutorials").glob("*.md"))


def test_every_tutorial_is_in_the_site_and_has_code():
    nav = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    assert len(TUTORIALS) == 5
    for path in TUTORIALS:
        assert f"tutorials/{path.name}" in nav, path.name
        assert any(b.kind == "python" for b in blocks(path)), path.name


@pytest.mark.parametrize("path", TUTORIALS, ids=[p.stem for p in TUTORIALS])
def test_tutorial_runs(path: Path, tmp_path: Path, monkeypatch, one_thread):
    matplotlib.use("Agg")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))  # modules the tutorial writes (mymodels.py)
    namespace: dict = {"__name__": f"docs_{path.stem.replace('-', '_')}"}
    for block in blocks(path):
        assert block.kind in ("python", "sh", "text") and not block.marker, f"{path.name}:{block.line}"
        if block.kind == "python":
            run_python(block, path.name, namespace)
        elif block.kind == "sh":
            for line in command_lines(block.code):
                run_command(line, tmp_path)
    matplotlib.pyplot.close("all")
