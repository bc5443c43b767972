"""docs/cli.md is the argument parser, written out: regenerated here in memory, it must equal the
committed page (run ``python scripts/cli_reference.py`` after changing an option), and it must
name every command and option the parser has."""

from __future__ import annotations

import argparse
import importlib.util
import re

from doc_blocks import ROOT, blocks


def _generator():
    spec = importlib.util.spec_from_file_location("cli_reference", ROOT / "scripts" / "cli_reference.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_page_is_up_to_date():
    generator = _generator()
    committed = generator.PAGE.read_text(encoding="utf-8")
    assert committed == generator.render(), "docs/cli.md is stale: run python scripts/cli_reference.py"


def test_page_names_every_command_and_option_with_its_default():
    from maskscope.cli.main import build_parser

    text = _generator().render()
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    for name, parser in sub.choices.items():
        section = text.split(f"## maskscope {name}\n", 1)[1].split("\n## ", 1)[0]
        for action in parser._actions:
            if action.help == argparse.SUPPRESS:  # a deprecated spelling: works, not shown
                assert all(f"| `{o}" not in section for o in action.option_strings), name
                continue
            if isinstance(action, argparse._HelpAction):
                continue
            for option in action.option_strings:
                named = re.compile(rf"^\| (`[^|]*, )?`{re.escape(option)}[` ]")
                row = next((r for r in section.splitlines() if named.match(r)), None)
                assert row is not None, f"{name} {option} missing"
                if isinstance(action.default, (int, str)) and not isinstance(action.default, bool):
                    assert f"| `{action.default}` |" in row, f"{name} {option}: default not shown"


def test_page_is_in_the_site_and_its_synopses_fit_the_page():
    assert re.search(r"^\s*- .*: cli\.md$", (ROOT / "mkdocs.yml").read_text(encoding="utf-8"), re.M)
    page = _generator().PAGE
    for block in blocks(page):
        for line in block.code.splitlines():
            assert len(line) <= 88, f"docs/cli.md:{block.line}: {line}"
