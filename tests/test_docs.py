"""The tutorials in docs/tutorials run as written: every ```python block, in order, in one namespace
(and every ```sh block, a ``maskscope`` command, in a subprocess), in a fresh working folder.
```text blocks are shown, not run. The API reference is checked by ``mkdocs build --strict`` (make test).
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import matplotlib
import pytest

ROOT = Path(__file__).resolve().parents[1]
TUTORIALS = sorted((ROOT / "docs" / "tutorials").glob("*.md"))
BLOCK = re.compile(r"^```(python|sh)\n(.*?)^```", re.S | re.M)


def blocks(path: Path) -> list[tuple[str, str]]:
    return BLOCK.findall(path.read_text(encoding="utf-8"))


def run_command(line: str, cwd: Path) -> None:
    args = shlex.split(line)
    assert args[0] == "maskscope", f"only maskscope commands run in docs: {line}"
    # the working folder first, for --classifier module:function
    path = os.pathsep.join([str(cwd), str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])
    env = dict(os.environ, PYTHONPATH=path, OMP_NUM_THREADS="1")
    done = subprocess.run([sys.executable, "-m", "maskscope.cli.main", *args[1:]], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{line}\n{done.stderr[-2000:]}"


def test_every_tutorial_is_in_the_site_and_has_code():
    nav = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    assert len(TUTORIALS) == 5
    for path in TUTORIALS:
        assert f"tutorials/{path.name}" in nav, path.name
        assert any(kind == "python" for kind, _ in blocks(path)), path.name


@pytest.mark.parametrize("path", TUTORIALS, ids=[p.stem for p in TUTORIALS])
def test_tutorial_runs(path: Path, tmp_path: Path, monkeypatch, one_thread):
    matplotlib.use("Agg")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))  # modules the tutorial writes (mymodels.py)
    namespace: dict = {"__name__": f"docs_{path.stem.replace('-', '_')}"}
    for i, (kind, code) in enumerate(blocks(path)):
        if kind == "python":
            exec(compile(code, f"{path.name}[block {i}]", "exec"), namespace)
        else:
            for line in code.replace("\\\n", " ").splitlines():
                if line.strip() and not line.lstrip().startswith("#"):
                    run_command(line, tmp_path)
    matplotlib.pyplot.close("all")
