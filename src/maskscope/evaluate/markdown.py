"""Markdown writing shared by the result tables and the benchmarks: pipe tables and escaping."""

from __future__ import annotations

from typing import Any

MARKDOWN_SPECIALS = set("\\`*_[]<>#|~&")  # what can start markup mid-line (the name never starts one)


def escape_markdown(text: str) -> str:
    """``text`` shown literally in markdown: one line, with every character that could start
    emphasis, a link, a heading, HTML, code or a table cell backslash-escaped (a folder name like
    ``[x](http://…)`` or ``<img onerror=…>`` must not become markup in ``metrics.md``)."""
    flat = " ".join(str(text).split())
    return "".join("\\" + c if c in MARKDOWN_SPECIALS else c for c in flat)


def pipe_table(header: list[str], rows: list[list[Any]]) -> list[str]:
    """The lines of a GitHub markdown table (the one table writer of the package and benchmarks)."""
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + [
        "| " + " | ".join(str(c) for c in row) + " |" for row in rows
    ]
