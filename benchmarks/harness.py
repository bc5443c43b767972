"""What every benchmark script shares: common arguments, timing, the bare-cost reference, results.

A script builds its parser from :func:`parser` (with the parents it needs), times with
:func:`timed` / :func:`bare_forward_backward`, and hands its tables to :func:`emit`, which prints
them and, given ``--result PATH``, writes the one result format: ``PATH.result.json`` (the rows, the
command and the date) beside a generated ``PATH.md``. ``python -m benchmarks.publish`` turns the
JSON files into the docs' results pages.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import shlex
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
SHARED_DATA = ROOT.parent / "shared" / "data"


# ---- arguments ---------------------------------------------------------------------------------

def _device() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--device", default="cpu", help="torch device (cpu, cuda, cuda:N)")
    return p


def _result() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--result", type=Path, default=None,
                   help="also write the tables as PATH.result.json (rows, command, date) and PATH.md")
    return p


PARENTS = {"device": _device, "result": _result}


def parser(doc: str | None, *parents: str) -> argparse.ArgumentParser:
    """An argument parser described by the script's docstring, with the named common arguments."""
    return argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter,
                                   parents=[PARENTS[name]() for name in parents])


# ---- timing ------------------------------------------------------------------------------------

def timed(fn, repeat: int = 1) -> float:
    """Best wall-clock seconds of ``repeat`` calls (after one warm-up call)."""
    fn()
    return best_of(repeat, lambda: seconds(fn))


def seconds(fn) -> float:
    """Wall-clock seconds of one call."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def best_of(repeat: int, fn) -> float:
    """The smallest of ``repeat`` measurements ``fn()`` (the one least disturbed by other load)."""
    return min(fn() for _ in range(repeat))


def bare_forward_backward(blackbox, images, iterations: int, score: str = "prob") -> float:
    """Seconds for ``iterations`` classifier forward+backward passes (gradient w.r.t. the input).

    The physical limit of an iterative mask: every method's speed is compared with it. ``score``
    is what is differentiated (``prob``: the softmax of class 0, ``logit``: its logit), as the
    method being compared does.
    """
    import torch

    x = images.clone().requires_grad_(True)
    start = time.perf_counter()
    with blackbox.evaluating():
        for _ in range(iterations):
            out = blackbox(x)
            out = out.softmax(1) if score == "prob" else out
            torch.autograd.grad(out[:, 0].sum(), x)
    return time.perf_counter() - start


def demo_batch(size: tuple[int, int] = (224, 224)):
    """The demo photos' names and one batch of them at the model's input size."""
    import torch

    from maskscope.data.photos import demo_photos
    from maskscope.images import resize_image, to_tensor

    photos = demo_photos()
    return list(photos), torch.stack([resize_image(to_tensor(a[..., :3]), size) for a in photos.values()])


# ---- results -----------------------------------------------------------------------------------

@dataclass
class Table:
    """One table of a result: its column names, its rows (cells as printed) and a caption."""

    columns: list[str]
    rows: list[list]
    caption: str = ""


@dataclass
class Result:
    """One result file: tables plus the command that produced them and when."""

    command: str
    date: str
    tables: list[Table]
    notes: list[str] = field(default_factory=list)
    source: str = ""

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> Result:
        tables = [Table(**t) for t in data["tables"]]
        return cls(data["command"], data["date"], tables, data.get("notes", []), data.get("source", ""))


def cell(value) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def markdown_table(header: list[str], rows: list[list]) -> str:
    """A GitHub markdown table (the package's writer; a ``|`` inside a cell is escaped)."""
    from maskscope.evaluate.tables import pipe_table

    return "\n".join(pipe_table([cell(h) for h in header], [[cell(c) for c in row] for row in rows]))


def render(result: Result) -> str:
    """The markdown view of a result: notes, then each table under its caption."""
    parts = [*result.notes] if result.notes else []
    for table in result.tables:
        caption = table.caption + "\n" if table.caption else ""
        parts.append(caption + markdown_table(table.columns, table.rows))
    parts.append(f"Produced by `{result.command}` on {result.date}.")
    return "\n\n".join(parts) + "\n"


def command_line(argv: list[str] | None = None) -> str:
    """The command that is running, as one would type it from the repository root."""
    script = Path(sys.argv[0]).resolve()
    try:
        script_name = str(script.relative_to(ROOT))
    except ValueError:
        script_name = script.name
    threads = os.environ.get("OMP_NUM_THREADS")
    prefix = f"OMP_NUM_THREADS={threads} " if threads else ""
    return prefix + shlex.join(["python", script_name, *(sys.argv[1:] if argv is None else argv)])


def result_paths(path: Path) -> tuple[Path, Path]:
    """``NAME.result.json`` and ``NAME.md`` for ``path`` (given with or without a suffix)."""
    path = Path(path)
    name = path.name.removesuffix(".json").removesuffix(".result").removesuffix(".md").removesuffix(".txt")
    return path.with_name(name + ".result.json"), path.with_name(name + ".md")


def save(result: Result, path: Path) -> Path:
    """Write the JSON of ``result`` for ``path``; return its file."""
    target = result_paths(path)[0]
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(result.to_json(), indent=1, ensure_ascii=False) + "\n")
    return target


def write_result(path: Path, tables: list[Table], notes: list[str] | None = None,
                 command: str | None = None, date: str | None = None) -> Result:
    """Write the one result format for ``path``: ``NAME.result.json`` plus its generated ``NAME.md``."""
    result = Result(command or command_line(), date or datetime.date.today().isoformat(), tables, notes or [])
    save(result, path)
    result_paths(path)[1].write_text(render(result))
    return result


def read_result(path: Path) -> Result:
    return Result.from_json(json.loads(result_paths(path)[0].read_text()))


class Report:
    """What a script prints, kept: with ``--result PATH`` its tables and notes are written at the end.

    Scripts print their tables as markdown as they go; ``close`` parses what was printed (the tables
    exactly as printed) into the one result format.
    """

    def __init__(self, result: Path | None):
        self.result = result
        self.parts: list[str] = []

    def print(self, *text: object, **kwargs) -> None:
        print(*text, flush=True, **kwargs)
        if kwargs.get("file") is None:
            self.parts.append(" ".join(str(t) for t in text))

    def record(self, text: str) -> None:
        """Keep ``text`` for the result without printing it (a script that printed it piece by piece)."""
        self.parts.append(text)

    def close(self) -> Result | None:
        if self.result is None:
            return None
        tables, notes = parse_tables("\n".join(self.parts))
        written = write_result(self.result, tables, notes)
        print(f"written to {result_paths(self.result)[0]}")
        return written


def emit(tables: list[Table], result: Path | None, notes: list[str] | None = None) -> None:
    """Print the tables; with ``--result PATH`` also write them in the one result format."""
    report = Report(result)
    for note in notes or []:
        report.print(note + "\n")
    for table in tables:
        caption = "\n" + table.caption + "\n" if table.caption else ""
        report.print(caption + markdown_table(table.columns, table.rows))
    report.close()


_SEPARATOR = re.compile(r"^\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$")


def split_row(line: str) -> list[str]:
    """The cells of one markdown table line (``\\|`` stays inside a cell)."""
    body = line.strip()
    body = body[1:] if body.startswith("|") else body
    body = body[:-1] if body.endswith("|") and not body.endswith("\\|") else body
    return [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", body)]


def parse_tables(text: str) -> tuple[list[Table], list[str]]:
    """The markdown tables of ``text`` (each with the line just above it as caption) and its other lines.

    Reads the tables that evaluate and the scripts write, so that their outputs land in the one
    result format without a number being retyped.
    """
    lines = text.splitlines()
    tables: list[Table] = []
    notes: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.lstrip().startswith("|") and i + 1 < len(lines) and _SEPARATOR.match(lines[i + 1].strip()):
            caption = ""
            if notes and notes[-1].strip() and not notes[-1].lstrip().startswith("|"):
                caption = notes.pop()
            columns = split_row(line)
            rows = []
            i += 2
            while i < len(lines) and lines[i].lstrip().startswith("|"):
                rows.append(split_row(lines[i]))
                i += 1
            tables.append(Table(columns, rows, caption))
            continue
        notes.append(line)
        i += 1
    return tables, [n.strip("\n") for n in "\n".join(notes).split("\n\n") if n.strip()]
