"""The README's code runs as written, or says why it cannot.

Every fenced block is ```python, ```sh / ```bash or ```text (shown, not run). A python or shell block
runs (python blocks in order, in one namespace; shell lines are ``maskscope`` commands in a
subprocess), in a fresh working folder, unless an HTML comment on the line right above it says:

- ``<!-- not run: REASON -->``: skipped, for the reason given;
- ``<!-- synopsis: REASON -->``: not run (placeholders, alternatives, other machines), but every
  ``maskscope`` command in it must exist and take every ``--option`` written after it, and method
  names (``--method``, ``--methods``) and evaluate's ``--option METHOD.KEY=VALUE`` are checked by
  the CLI's own parsers;
- ``<!-- given: NAME, ... -->``: runs, with the files or variables the README assumes the reader
  has, provided by ``doc_blocks.GIVEN`` (the demo photos as cat.jpg and cup.png; ``path`` a tiny random
  ViT saved with ``save_pretrained``).

The README's Python example runs at the ``iterations=20`` it shows (the papers' schedules are minutes
of CPU); its comments' claims about the files it writes are checked after it.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import matplotlib
import numpy as np
import pytest
from doc_blocks import GIVEN, ROOT, Block, blocks, command_lines, run_command, run_python
from PIL import Image

README = ROOT / "README.md"
BLOCKS = blocks(README)
MARKERS = {"not run", "synopsis", "given"}
RUNS = [b for b in BLOCKS if b.kind in ("python", "sh", "bash") and b.marker in ("", "given")]
SHELL = [b for b in RUNS if b.kind != "python"]
SYNOPSES = [b for b in BLOCKS if b.marker == "synopsis"]


def _given(block: Block) -> list[str]:
    return [n.strip() for n in block.note.split(",") if n.strip()] if block.marker == "given" else []


def _give(block: Block, folder: Path, namespace: dict) -> None:
    for name in _given(block):
        GIVEN[name](folder, namespace)


def _id(block: Block) -> str:
    return f"line{block.line}"


def test_every_block_runs_or_says_why():
    text = README.read_text(encoding="utf-8")
    fences = len(re.findall(r"^```", text, re.M))
    assert fences == 2 * len(BLOCKS), "an unclosed fence, or one the block pattern misses"
    markers = re.findall(r"^<!--[ \t]*([\w -]+?):", text, re.M)
    assert len(markers) == sum(1 for b in BLOCKS if b.marker), "a marker not right above its fence"
    for block in BLOCKS:
        where = f"README.md:{block.line}"
        assert block.kind in ("python", "sh", "bash", "text"), f"{where}: say the block's language"
        assert not block.marker or block.marker in MARKERS, f"{where}: unknown marker {block.marker!r}"
        if block.marker in ("not run", "synopsis"):
            assert len(block.note) >= 10, f"{where}: say why the block is not run"
        for name in _given(block):
            assert name in GIVEN, f"{where}: nothing provides {name!r} (tests/doc_blocks.py GIVEN)"
    for block in SHELL:
        for line in command_lines(block.code):
            assert line.split()[0] == "maskscope", f"README.md:{block.line}: runs maskscope only: {line}"
    assert [b.kind for b in RUNS].count("python") >= 2 and SHELL and SYNOPSES


@pytest.mark.integration
def test_python_blocks_run(tmp_path: Path, monkeypatch, one_thread):
    matplotlib.use("Agg")
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "readme"}
    for block in RUNS:
        if block.kind == "python":
            _give(block, tmp_path, namespace)
            run_python(block, "README.md", namespace)
    matplotlib.pyplot.close("all")
    # what the first block's comments say it wrote
    out = tmp_path / "out"
    for suffix in (".npy", "_mask.png", "_overlay.png", "_figure.png", ".json"):
        assert (out / f"image_0000{suffix}").is_file(), suffix
    assert np.load(out / "image_0000.npy").shape == (224, 224)  # load_batch's images: the model's size
    for name in ("cat.jpg", "cup.png"):
        width, height = Image.open(name).size
        assert np.load(out / f"{Path(name).stem}.npy").shape == (height, width)  # each file's own size
    assert namespace["x"].masks.shape[0] == 2 * 3  # one row per image × area
    assert namespace["bb"].input_size == (224, 224)


@pytest.mark.integration
@pytest.mark.parametrize("block", SHELL, ids=[_id(b) for b in SHELL])
def test_shell_blocks_run(block: Block, tmp_path: Path):
    _give(block, tmp_path, {})
    for line in command_lines(block.code):
        run_command(line, tmp_path)


def _commands() -> dict[str, argparse.ArgumentParser]:
    from maskscope.cli.main import build_parser

    parser = build_parser()
    return next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices


# maskscope CMD, -m maskscope CMD, $(which maskscope) CMD
MAIN = re.compile(r"maskscope\)?\s+([a-z][\w|-]*)(.*)$")
OPTION = re.compile(r"(?<![\w-])--[a-z][\w-]*")


def _value(rest: str, option: str) -> list[str]:
    return re.findall(rf"(?<![\w-]){option}\s+([^\s\[\]]+)", rest)


@pytest.mark.parametrize("block", SYNOPSES, ids=[_id(b) for b in SYNOPSES])
def test_synopses_name_real_commands_options_and_methods(block: Block):
    from maskscope.cli.evaluate import parse_methods, parse_options
    from maskscope.evaluate.runner import check_options
    from maskscope.methods import METHODS
    from maskscope.methods.optimise import PRESETS

    commands = _commands()
    found = 0
    for line in command_lines(block.code):
        match = MAIN.search(line.split(" #")[0])
        if match is None:
            continue  # pip, torchrun's own options, ...
        found += 1
        rest = match[2]
        for name in match[1].split("|"):
            assert name in commands, f"README.md:{block.line}: no command {name!r}: {line}"
            known = commands[name]._option_string_actions
            for option in OPTION.findall(rest):
                assert option in known, f"README.md:{block.line}: {name} has no {option}: {line}"
        for value in _value(rest, "--method"):
            unknown = [m for m in value.split("|") if m != "..." and m not in METHODS]
            assert not unknown, f"README.md:{block.line}: unknown methods {unknown}: {line}"
        for value in _value(rest, "--methods"):
            options = parse_options(_value(rest, "--option"))
            check_options(parse_methods(value), options)
            for opts in options.values():
                assert opts.get("preset", "fong2017") in PRESETS, f"README.md:{block.line}: {line}"
    assert found, f"README.md:{block.line}: a synopsis without a maskscope command"


def test_a_front_door():
    """Short, every link leads somewhere, no project history (commit hashes, issue numbers)."""
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 250, "the README is a front door: the details go into docs/"
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[\w-]+)?\)", text):
        if "://" not in target:
            assert (ROOT / target).exists(), f"README.md links to {target}, which does not exist"
    for path in [README, ROOT / "docs" / "index.md", *sorted((ROOT / "docs" / "tutorials").glob("*.md"))]:
        page = path.read_text(encoding="utf-8")
        hashes = re.findall(r"\b(?=[0-9a-f]*[a-f])(?=[0-9a-f]*[0-9])[0-9a-f]{7,40}\b", page)
        issues = re.findall(r"\bissues? #?\d+", page, re.I)
        assert not hashes and not issues, f"{path.name}: {hashes + issues}"
