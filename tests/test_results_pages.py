"""The docs' results pages are generated from the result files: regenerate them and compare.

Only result files and templates are read (no benchmark runs), so this is quick.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import publish  # noqa: E402
from benchmarks.fault_table import fault_rows, split_description  # noqa: E402
from benchmarks.harness import Table, parse_tables, read_result, result_paths, write_result  # noqa: E402

DOCS = ROOT / "docs" / "results"
PAGES = ["quality", "holdup", "masker", "speed", "summaries", "analyses", "reliability"]


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("results")
    publish.publish(out)
    return out


@pytest.mark.parametrize("name", PAGES)
def test_committed_page_is_what_the_result_files_give(generated, name):
    fresh, committed = (generated / f"{name}.md").read_text(), (DOCS / f"{name}.md").read_text()
    assert fresh == committed, f"docs/results/{name}.md is stale: run python -m benchmarks.publish"


def test_no_page_without_a_template_and_every_image_is_there(generated):
    assert sorted(p.stem for p in DOCS.glob("*.md")) == sorted(PAGES)
    for page in PAGES:
        for image in re.findall(r"\]\((img/[^)]+)\)", (DOCS / f"{page}.md").read_text()):
            assert (DOCS / image).is_file(), image
            if not Path(image).name.startswith("plot-"):  # copies are byte-identical; plots are drawn
                assert (DOCS / image).read_bytes() == (generated / image).read_bytes(), image


@pytest.mark.parametrize("name", PAGES)
def test_every_table_says_its_command_and_date_and_no_issue_is_named(name):
    text = (DOCS / f"{name}.md").read_text()
    template = (publish.PAGES / f"{name}.md").read_text()
    produced = re.findall(r"^\*Produced by `[^`]+` on \d{4}-\d\d-\d\d\.\*$", text, re.M)
    assert len(produced) == template.count("{{ table ")
    assert not re.search(r"\bissues?\b", text, re.I)


def test_a_result_round_trips_through_its_json_and_its_markdown(tmp_path):
    rows = [["meaningful", "x|y", "0.088"], ["center", "", "-1"]]
    table = Table(["method", "a | b", "value"], rows, "caption")
    written = write_result(tmp_path / "run", [table], notes=["a note"], command="python x.py --n 2",
                           date="2026-01-02")
    json_path, md_path = result_paths(tmp_path / "run")
    assert json_path.name == "run.result.json" and md_path.name == "run.md"
    assert read_result(tmp_path / "run") == written
    assert json.loads(json_path.read_text())["command"] == "python x.py --n 2"
    tables, notes = parse_tables(md_path.read_text())
    assert [(t.columns, t.rows, t.caption) for t in tables] == [(table.columns, table.rows, "caption")]
    assert notes[0] == "a note" and "`python x.py --n 2` on 2026-01-02" in notes[-1]


def test_fault_descriptions_split_into_command_case_and_handling():
    assert split_description("Fault: train: --lr nan — one line,\n    exit 2.") == ("train", "--lr nan",
                                                                                  "one line, exit 2.")
    no_case = split_description("Fault: evaluate --synthetic — a note.")
    assert no_case == ("evaluate --synthetic", "", "a note.")


def test_the_fault_table_lists_each_fault_test_once():
    rows = fault_rows()
    tests = [r[3] for r in rows]
    assert len(tests) == len(set(tests)) and len(rows) >= 40
    assert all(r[0] and r[2] for r in rows)  # every description names a command and what is done
    locked = next(r for r in rows if "locked_folder" in r[3])
    assert locked[0] == "explain" and locked[4] == "1"
    devices = next(r for r in rows if "bad_devices" in r[3])
    assert devices[4] == str(4 * 5)  # four devices × five commands
