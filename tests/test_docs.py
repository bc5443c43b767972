"""The docs site's pages run as written and show what they promise.

- The tutorials in docs/tutorials run: every ```python block, in order, in one namespace (and
  every ```sh block, a ``maskscope`` command, in a subprocess), in a fresh working folder.
  ```text blocks are shown, not run.
- Each tutorial shows the figures its own code writes: ``figures/<page>/<path>`` is the file
  ``<path>`` of the page's working folder, copied next to the page by
  ``python scripts/tutorial_figures.py``; the run must write it, the copy must be committed, and
  the built site (``mkdocs build --strict``) must display it.
- The home page's example runs, its install story is the README's, and no page installs
  maskscope from a package index it is not on.
- Code lines fit the page (at most 88 characters): no horizontal scroll bar.

The API reference is checked by ``mkdocs build --strict`` (make test, and the site test here).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import matplotlib
import pytest
from doc_blocks import GIVEN, ROOT, TUTORIALS, blocks, run_page, run_python, shown_figures

PAGES = sorted(TUTORIALS.glob("*.md"))
INDEX = ROOT / "docs" / "index.md"
README = ROOT / "README.md"
WIDTH = 88


def test_every_tutorial_is_in_the_site_has_code_and_shows_figures():
    nav = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    assert len(PAGES) == 5
    for path in PAGES:
        assert f"tutorials/{path.name}" in nav, path.name
        assert any(b.kind == "python" for b in blocks(path)), path.name
        assert shown_figures(path), f"{path.name} shows none of its results"
        for relative in shown_figures(path):
            copy = path.parent / "figures" / path.stem / relative
            assert copy.is_file(), f"{copy} missing: run python scripts/tutorial_figures.py {path.stem}"


@pytest.mark.parametrize("path", PAGES, ids=[p.stem for p in PAGES])
def test_tutorial_runs_and_writes_what_it_shows(path: Path, tmp_path: Path, one_thread):
    matplotlib.use("Agg")
    for block in blocks(path):
        assert block.kind in ("python", "sh", "text") and not block.marker, f"{path.name}:{block.line}"
    run_page(path, tmp_path)
    matplotlib.pyplot.close("all")
    for relative in shown_figures(path):
        assert (tmp_path / relative).is_file(), f"{path.name} shows {relative}, which its code does not write"


def test_home_page_example_runs(tmp_path: Path, monkeypatch, one_thread):
    matplotlib.use("Agg")
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "docs_index"}
    ran = 0
    for block in blocks(INDEX):
        assert block.kind in ("python", "sh", "text"), f"index.md:{block.line}: say the language"
        if block.kind == "python":
            assert block.marker in ("", "given"), f"index.md:{block.line}"
            for name in filter(None, (n.strip() for n in block.note.split(","))):
                GIVEN[name](tmp_path, namespace)
            run_python(block, "index.md", namespace)
            ran += 1
        else:
            assert block.marker == "not run" and len(block.note) >= 10, f"index.md:{block.line}: why not run?"
    matplotlib.pyplot.close("all")
    assert ran and namespace["e"].masks.shape == (1, 1, 224, 224)


def _section(path: Path, heading: str) -> str:
    return heading + path.read_text(encoding="utf-8").split(f"\n{heading}\n", 1)[1].split("\n## ", 1)[0]


def test_install_story_is_one_and_installs_what_exists():
    readme, index = _section(README, "## Install"), _section(INDEX, "## Install")
    assert readme.strip() == index.strip(), "README.md and docs/index.md tell different install stories"
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    version = re.search(r'^version = "([^"]+)"', pyproject, re.M)[1]
    assert f"dist/maskscope-{version}-py3-none-any.whl" in readme, "the wheel `make wheel` builds"
    assert re.search(r"^wheel:", (ROOT / "Makefile").read_text(encoding="utf-8"), re.M)
    extras = pyproject.split("[project.optional-dependencies]", 1)[1].split("\n[", 1)[0]
    names = re.findall(r"^([\w-]+) = \[", extras, re.M)
    assert {"all", "baselines", "dev"} <= set(names)
    for extra in names:
        assert f"`{extra}`" in readme, f"the install section does not say what extra {extra!r} brings"


def test_no_page_installs_maskscope_from_an_index():
    """maskscope is not on a package index: ``pip install 'maskscope[...]'`` cannot work."""
    for path in [README, INDEX, *PAGES]:
        text = path.read_text(encoding="utf-8")
        bad = re.findall(r"pip install\s+['\"]?maskscope\b[^\n`]*", text)
        assert not bad, f"{path.name}: {bad}"


def test_code_lines_fit_the_page():
    written = [p for p in (ROOT / "docs").glob("*.md") if p.name != "cli.md"]  # cli.md: its own test
    for path in [*written, *PAGES]:
        for block in blocks(path):
            for k, line in enumerate(block.code.splitlines(), start=1):
                assert len(line) <= WIDTH, f"{path.name}:{block.line + k}: {len(line)} characters"
    for block in blocks(README):
        if block.kind in ("python", "sh", "bash"):  # shown output (```text) may run longer
            for k, line in enumerate(block.code.splitlines(), start=1):
                assert len(line) <= WIDTH, f"README.md:{block.line + k}: {len(line)} characters"


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The docs site, built strictly (as ``make docs`` does)."""
    pytest.importorskip("mkdocs")
    pytest.importorskip("mkdocstrings_handlers.python")
    site = tmp_path_factory.mktemp("docs") / "site"
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(site)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    return site


def test_built_site_shows_every_tutorial_figure(site: Path):
    for path in PAGES:
        page = site / "tutorials" / path.stem / "index.html"
        sources = re.findall(r'<img [^>]*src="([^"]+)"', page.read_text(encoding="utf-8"))
        assert len(sources) == len(shown_figures(path)), f"{path.name}: {sources}"
        for src in sources:
            assert (page.parent / src).resolve().is_file(), f"{path.name}: {src} not in the built site"


# no code block of these pages scrolls sideways in a window of these sizes
SCROLL_FREE = [(1400, 1000), (1000, 800)]
SCROLLS = """() => [...document.querySelectorAll('.md-typeset pre > code')]
    .filter(e => e.scrollWidth > e.clientWidth + 1).map(e => e.textContent.slice(0, 50))"""


@pytest.mark.integration
def test_code_blocks_do_not_scroll_in_a_browser(site: Path):
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    chromium = next((p for p in ("/usr/bin/chromium", shutil.which("chromium")) if p and Path(p).is_file()),
                    None)
    if chromium is None:
        pytest.skip("no chromium found (apt-get install chromium)")
    pages = ["index.html", "cli/index.html", "runs/index.html",
             *[f"tutorials/{p.stem}/index.html" for p in PAGES]]
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True, args=["--no-sandbox"])
        try:
            for width, height in SCROLL_FREE:
                view = browser.new_page(viewport={"width": width, "height": height})
                for page in pages:
                    view.goto((site / page).as_uri())
                    assert view.evaluate(SCROLLS) == [], f"{page} at {width} × {height}"
                view.close()
        finally:
            browser.close()
