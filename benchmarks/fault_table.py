"""The fault table: a view of the fault tests, read from their descriptions (nothing is run here).

Every test that guards a fault case starts its docstring with ``Fault: COMMAND: CASE — HANDLING``;
this module collects them from ``tests/`` into one table, so the table cannot list a case that no
test checks, nor miss one that a test does.

    python benchmarks/fault_table.py [--result benchmarks/results/faults]
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a file: import the harness
from benchmarks.harness import ROOT, Table, emit, parser  # noqa: E402

COLUMNS = ["command", "fault", "what maskscope does", "test", "cases"]


def _cases(node: ast.FunctionDef) -> int:
    """How many parametrised cases the test runs (the product of its literal parametrize lists)."""
    count = 1
    for deco in node.decorator_list:
        parametrize = isinstance(deco, ast.Call) and getattr(deco.func, "attr", "") == "parametrize"
        if parametrize and len(deco.args) > 1:
            values = deco.args[1]
            if isinstance(values, (ast.List, ast.Tuple)):
                count *= len(values.elts)
    return count


def split_description(doc: str) -> tuple[str, str, str]:
    """``Fault: COMMAND: CASE — HANDLING`` as (command, case, handling)."""
    text = " ".join(doc.split()).removeprefix("Fault:").strip()
    fault, _, handling = text.partition(" — ")
    command, sep, case = fault.partition(": ")
    return (command, case, handling) if sep else (fault, "", handling)


def fault_rows(tests: Path = ROOT / "tests") -> list[list[str]]:
    """One row per fault test under ``tests``, in file and line order."""
    rows = []
    for path in sorted(tests.rglob("test_*.py")):
        for node in ast.parse(path.read_text()).body:
            doc = ast.get_docstring(node) if isinstance(node, ast.FunctionDef) else None
            if doc and doc.startswith("Fault:"):
                command, case, handling = split_description(doc)
                test = f"`{path.relative_to(ROOT).as_posix()}::{node.name}`"
                rows.append([command, case, handling, test, str(_cases(node))])
    return rows


def fault_table(tests: Path = ROOT / "tests") -> Table:
    return Table(COLUMNS, fault_rows(tests))


def main(argv: list[str] | None = None) -> int:
    args = parser(__doc__, "result").parse_args(argv)
    emit([fault_table()], args.result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
