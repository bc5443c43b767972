"""Code blocks of markdown pages, run as written: shared by the tutorial test (test_docs.py) and the
README test (test_readme.py).

A block is a fenced ```python, ```sh, ```bash or ```text block. An HTML comment on the line right
above the fence, ``<!-- kind: note -->``, says how a test treats it (test_readme.py lists the kinds).
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FENCE = re.compile(
    r"^(?:<!--[ \t]*(?P<marker>[\w -]+?):[ \t]*(?P<note>[^\n]*?)[ \t]*-->\n)?"
    r"```(?P<kind>[\w-]*)[ \t]*\n(?P<code>.*?)^```[ \t]*$",
    re.S | re.M,
)


@dataclass(frozen=True)
class Block:
    kind: str  # python, sh, bash, text, or "" (a fence without a language)
    code: str
    line: int  # of the opening fence, 1-based
    marker: str = ""  # the comment's kind ("not run", "synopsis", "given"), "" without one
    note: str = ""  # the rest of the comment: a reason, or the names a test provides


def blocks(path: Path) -> list[Block]:
    text = path.read_text(encoding="utf-8")
    out = []
    for match in FENCE.finditer(text):
        fence = match.start("kind") - 3
        out.append(Block(match["kind"], match["code"], text.count("\n", 0, fence) + 1,
                         (match["marker"] or "").strip(), (match["note"] or "").strip()))
    return out


def command_lines(code: str) -> list[str]:
    """The commands of a shell block: continuation lines joined, comments and blank lines dropped."""
    lines = code.replace("\\\n", " ").splitlines()
    return [line for line in lines if line.strip() and not line.lstrip().startswith("#")]


def run_command(line: str, cwd: Path) -> None:
    """Run one ``maskscope`` command line in ``cwd``, in a subprocess with one torch thread."""
    args = shlex.split(line, comments=True)
    assert args[0] == "maskscope", f"only maskscope commands run in docs: {line}"
    # the working folder first, for --classifier module:function
    path = os.pathsep.join([str(cwd), str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])
    env = dict(os.environ, PYTHONPATH=path, OMP_NUM_THREADS="1")
    done = subprocess.run([sys.executable, "-m", "maskscope.cli.main", *args[1:]], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{line}\n{done.stderr[-2000:]}"


def run_python(block: Block, name: str, namespace: dict) -> None:
    exec(compile(block.code, f"{name}[line {block.line}]", "exec"), namespace)
