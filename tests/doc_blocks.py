"""Code blocks of markdown pages, run as written: shared by the tutorial test (test_docs.py) and the
README test (test_readme.py).

A block is a fenced ```python, ```sh, ```bash or ```text block. An HTML comment on the line right
above the fence, ``<!-- kind: note -->``, says how a test treats it (test_readme.py lists the kinds).
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TUTORIALS = ROOT / "docs" / "tutorials"
# a tutorial shows what its code wrote: figures/<page>/<path> is the file <path> of the page's
# working folder, copied next to the page by scripts/tutorial_figures.py
SHOWN = re.compile(r"(?:!\[[^\]]*\]\(|<img [^>]*src=\")figures/(?P<page>[\w-]+)/(?P<path>[^)\"\s]+)")
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


def _photo(name: str, picture: str):
    def give(folder: Path, namespace: dict) -> None:
        from PIL import Image

        from maskscope.data.photos import demo_photos

        Image.fromarray(demo_photos()[picture]).save(folder / name)

    return give


def _saved_vit(folder: Path, namespace: dict) -> None:
    import pytest

    transformers = pytest.importorskip("transformers")
    config = transformers.ViTConfig(image_size=224, patch_size=32, hidden_size=32, num_hidden_layers=1,
                                    num_attention_heads=2, intermediate_size=37, num_labels=10)
    transformers.ViTForImageClassification(config).save_pretrained(folder / "vit")
    namespace["path"] = str(folder / "vit")


# what a ``<!-- given: ... -->`` block may assume: name -> give(working folder, python namespace)
GIVEN = {"cat.jpg": _photo("cat.jpg", "chelsea"), "cup.png": _photo("cup.png", "coffee"), "path": _saved_vit}


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


def shown_figures(path: Path) -> list[str]:
    """The files a tutorial shows, as paths in its working folder (``figures/<page>/<path>``)."""
    found = []
    for match in SHOWN.finditer(path.read_text(encoding="utf-8")):
        assert match["page"] == path.stem, f"{path.name}: {match[0]} belongs to another page"
        found.append(match["path"])
    return found


@contextlib.contextmanager
def working_folder(folder: Path) -> Iterator[None]:
    """Run in ``folder``, with it first on ``sys.path`` (modules a page writes: mymodels.py)."""
    before = Path.cwd()
    os.chdir(folder)
    sys.path.insert(0, str(folder))
    try:
        yield
    finally:
        sys.path.remove(str(folder))
        os.chdir(before)


def run_page(path: Path, folder: Path) -> dict:
    """Every ```python block of a page in order, in one namespace, and every ```sh block's
    ``maskscope`` commands, in ``folder``; returns the namespace."""
    path, folder = path.resolve(), folder.resolve()
    namespace: dict = {"__name__": f"docs_{path.stem.replace('-', '_')}"}
    with working_folder(folder):
        for block in blocks(path):
            if block.kind == "python":
                run_python(block, path.name, namespace)
            elif block.kind == "sh":
                for line in command_lines(block.code):
                    run_command(line, folder)
    return namespace
