"""Write docs/cli.md, the command-line reference, from the argument parser itself, so that the page
cannot drift from the commands: every subcommand, its synopsis, and every option with its help
and default. ``tests/cli/test_cli_reference.py`` regenerates it in memory and fails when the
committed page differs.

    python scripts/cli_reference.py            # rewrites docs/cli.md
    python scripts/cli_reference.py --check    # exit 1 if docs/cli.md is stale
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "cli.md"
WIDTH = 88  # the synopsis is wrapped to this many columns: no horizontal scroll bar on the site
COMMAND = "python scripts/cli_reference.py"


def _subcommands(parser: argparse.ArgumentParser) -> tuple[dict[str, argparse.ArgumentParser], dict]:
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    helps = {a.dest: a.help or "" for a in sub._choices_actions}
    return dict(sub.choices), helps


def _markdown(text: str) -> str:
    """A docstring or help string as markdown: reST ``code`` as `code`, paragraphs kept."""
    text = re.sub(r"``(.+?)``", r"`\1`", text.replace("%%", "%"))
    return "\n\n".join(" ".join(p.split()) for p in re.split(r"\n\s*\n", text.strip()) if p.strip())


def _cell(text: str) -> str:
    return _markdown(text).replace("|", "\\|").replace("<", "&lt;").replace("\n\n", " ")


def _code(value: str) -> str:
    return f"`{value}`" if "`" not in value else f"`` {value} ``"


def _default(action: argparse.Action) -> str:
    value = action.default
    if action.required or action.nargs == 0 or value is None or value is False or value == []:
        return ""
    if value == argparse.SUPPRESS:
        return ""
    return _code(str(value))


def _names(action: argparse.Action) -> str:
    if not action.option_strings:
        return _code(action.metavar or action.dest.upper())
    metavar = ""
    if action.nargs != 0:
        metavar = " " + (action.metavar or action.dest.upper())
        if action.nargs == "?":
            metavar = f" [{metavar.strip()}]"
    return ", ".join(_code(o + metavar) for o in action.option_strings)


def _help(action: argparse.Action) -> str:
    text = _cell(action.help or "")
    parts = [text + ("." if text and not text.endswith(".") else "")]
    if action.choices is not None:
        parts.append("Choices: " + ", ".join(_code(str(c)) for c in action.choices) + ".")
    if isinstance(action, argparse._AppendAction) and "repeat" not in text.lower():
        parts.append("Repeatable.")
    if action.required and action.option_strings:
        parts.append("Required.")
    return " ".join(p for p in parts if p)


def _synopsis(parser: argparse.ArgumentParser) -> str:
    """argparse's own usage line, wrapped at ``WIDTH``; options with choices show a placeholder
    (their choices are listed in the table) so that no single word is wider than the page."""
    for action in parser._actions:
        if action.choices is not None and action.metavar is None and action.option_strings:
            action.metavar = action.dest.upper()
    saved = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = str(WIDTH + 2)  # argparse wraps at COLUMNS - 2
    try:
        return parser.format_usage().strip()
    finally:
        if saved is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = saved


def _command(name: str, parser: argparse.ArgumentParser, summary: str) -> list[str]:
    lines = [f"## maskscope {name}", "", _markdown(summary).capitalize() + ".", ""]
    if parser.description:
        lines += [_markdown(parser.description), ""]
    lines += ["```text", _synopsis(parser), "```", "",
              "| argument | default | what it does |", "|---|---|---|"]
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction) or action.help == argparse.SUPPRESS:
            continue
        lines.append(f"| {_names(action)} | {_default(action)} | {_help(action)} |")
    return [*lines, ""]


def render() -> str:
    """The page's text, built from ``maskscope.cli.main.build_parser()``."""
    from maskscope.cli.main import build_parser

    parser = build_parser()
    commands, helps = _subcommands(parser)
    lines = [
        "# Command line",
        "",
        f"<!-- generated from the argument parser by `{COMMAND}`: edit the parser, not this page -->",
        "",
        "Every command takes `--help`; `maskscope --version` prints the version. Bad input",
        "(a missing or corrupt file, an unknown class, an impossible option) prints one line on",
        "stderr and exits with code 2; in a batch the good files are still processed and the bad",
        "ones are listed at the end. The same flags mean the same thing on every command",
        "(`--classifier`, `--classifier-arg`, `--device`, `--batch-size`, `--out`).",
        "",
        "| command | what it does |",
        "|---|---|",
        *[f"| [`maskscope {n}`](#maskscope-{n}) | {_cell(helps.get(n, ''))} |" for n in commands],
        "",
    ]
    for name, sub in commands.items():
        lines += _command(name, sub, helps.get(name, ""))
    return "\n".join(lines).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Write docs/cli.md from the maskscope argument parser.")
    p.add_argument("--check", action="store_true", help="only report whether docs/cli.md is stale")
    args = p.parse_args(argv)
    text = render()
    if args.check:
        stale = not PAGE.is_file() or PAGE.read_text(encoding="utf-8") != text
        print(f"{PAGE.relative_to(ROOT)} is {'stale: run ' + COMMAND if stale else 'up to date'}")
        return 1 if stale else 0
    PAGE.write_text(text, encoding="utf-8")
    print(f"wrote {PAGE.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "src"))
    sys.exit(main())
