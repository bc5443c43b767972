"""The explorer in a real browser: Playwright driving Debian's chromium (headless).

Run ``MASKSCOPE_SCREENSHOTS=docs/explorer pytest tests/app/test_browser.py`` to refresh the
screenshots in ``docs/explorer/`` (each page at 1400 × 1000 and 1000 × 800); otherwise they go to a
temporary folder. Every screenshot is taken only after the page is checked for overflowing elements.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

pytestmark = pytest.mark.integration

SIZES = ((1400, 1000), (1000, 800))
# Every visible element must fit its parent, and its content must fit it, unless the parent is an
# explicit scroll box (overflow auto or scroll: the metrics tables, the class list) or the element
# is drawn inside an SVG or a select; a table cell (which may span rows) must fit its table.
# Returns one line per offender.
OVERFLOWS = """() => {
  const scrolls = (e) => ["auto", "scroll"].includes(getComputedStyle(e).overflowX);
  const name = (e) => e.tagName.toLowerCase() + (e.id ? "#" + e.id : "") +
    (e.classList.length ? "." + [...e.classList].join(".") : "");
  const bad = [];
  for (const e of document.querySelectorAll("body *")) {
    if (["SCRIPT", "BR", "OPTION", "OPTGROUP"].includes(e.tagName) || e.closest("select")) continue;
    if (e instanceof SVGElement && e.tagName.toLowerCase() !== "svg") continue;
    const r = e.getBoundingClientRect();
    if ((r.width === 0 && r.height === 0) || !e.checkVisibility()) continue;
    const parent = e.parentElement;
    if (!["INPUT", "TEXTAREA", "SELECT"].includes(e.tagName) && !scrolls(e) && e.clientWidth > 0 &&
        e.scrollWidth > e.clientWidth + 1) bad.push(`${name(e)}: ${e.scrollWidth}px in ${e.clientWidth}px`);
    if (parent === document.body || scrolls(parent)) continue;
    const q = (parent.tagName === "TR" ? parent.closest("table") : parent).getBoundingClientRect();
    if (r.left < q.left - 1 || r.right > q.right + 1 || r.top < q.top - 1 || r.bottom > q.bottom + 1)
      bad.push(`${name(e)} [${Math.round(r.left)}, ${Math.round(r.right)}] out of ${name(parent)} ` +
               `[${Math.round(q.left)}, ${Math.round(q.right)}]`);
  }
  const root = document.documentElement;
  if (root.scrollWidth > root.clientWidth) bad.push(`the page scrolls sideways: ${root.scrollWidth}px`);
  return bad;
}"""
CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/lib/chromium/chromium")


def chromium_path() -> str | None:
    found = [p for p in CANDIDATES if Path(p).is_file()] + [shutil.which("chromium") or ""]
    return next((p for p in found if p), None)


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    path = chromium_path()
    if path is None:
        pytest.skip("no chromium found (apt-get install chromium); the browser tests need Debian's chromium")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=path, headless=True, args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def server(default_model, photo_folder, evaluation_folder, summaries_folder):
    """The explorer on a free port of 127.0.0.1, in a thread of this process."""
    from maskscope.app import Explorer
    from maskscope.app.catalog import Catalog

    explorer = Explorer(default_model, Catalog([photo_folder]), evaluation=evaluation_folder,
                        summaries=summaries_folder)
    with serving(explorer) as url:
        yield url


@contextlib.contextmanager
def serving(explorer) -> Iterator[str]:
    """``explorer`` served by uvicorn on a free port of 127.0.0.1, in a thread, until the block ends."""
    import uvicorn

    from maskscope.app import create_app

    config = uvicorn.Config(create_app(explorer), host="127.0.0.1", port=0, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    folder = Path(os.environ.get("MASKSCOPE_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def page(browser):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.console_errors = errors
    outside: list[str] = []  # every asset is local: the pages work offline
    local = ("http://127.0.0.1:", "data:")
    page.on("request", lambda r: None if r.url.startswith(local) else outside.append(r.url))
    yield page
    page.close()
    assert errors == [], f"console errors: {errors}"
    assert outside == [], f"requests that leave the machine: {outside}"


def snap(page, shots: Path, name: str) -> None:
    """At each size: nothing overflows, then a full-page screenshot ``name-WxH.png``."""
    for width, height in SIZES:
        page.set_viewport_size({"width": width, "height": height})
        page.wait_for_function("[...document.images].every(i => i.complete)")
        bad = page.evaluate(OVERFLOWS)
        assert bad == [], f"{name} at {width}x{height}: {bad}"
        page.screenshot(path=str(shots / f"{name}-{width}x{height}.png"), full_page=True)
    page.set_viewport_size({"width": SIZES[0][0], "height": SIZES[0][1]})


def choose_cat(page, server):
    page.goto(f"{server}/explain")
    page.select_option("#image", label="chelsea.png")
    page.wait_for_selector("#top5 li")


def test_masker_then_threshold_box(page, server, shots):
    choose_cat(page, server)
    assert "cat" in page.inner_text("#top5").lower()
    page.click("#explain")
    card = page.wait_for_selector("article.result[data-method=realtime]")
    assert card.query_selector(".class-name").inner_text() == page.inner_text("#target-name").split(" (")[0]
    assert "p=0." in card.query_selector(".score").inner_text()
    page.wait_for_function("document.querySelector('article.result img.mask').naturalWidth > 0")
    page.wait_for_function("document.querySelector('article.result .box').style.width !== ''")
    box = card.query_selector(".box")
    before = box.get_attribute("style")
    page.locator("#threshold").fill("0.9")
    after = box.get_attribute("style")
    assert after != before and page.inner_text("#threshold-value") == "0.90"
    page.locator("#threshold").fill("0.1")
    assert box.get_attribute("style") not in (before, after)
    page.locator("#threshold").fill("0.5")
    page.locator("#opacity").fill("0.3")
    assert card.query_selector("img.heat").evaluate("img => img.style.opacity") == "0.3"
    # labelled time and settings, the command line's method name
    chips = card.query_selector(".chips").inner_text()
    assert re.search(r"time \d+\.\d\d s", chips), chips
    assert "encoder" in chips and card.query_selector(".method").inner_text() == "realtime"
    assert "masker" not in page.inner_text("#methods") and "masker" not in card.inner_text()
    # the centre box: its outline over the visible image, no opaque heat map
    page.uncheck("#methods input[value=realtime]")
    page.check("#methods input[value=center]")
    page.check("#methods input[value=gradcam]")
    page.click("#explain")
    centre = page.wait_for_selector("article.result[data-method=center] .stack.binary")
    assert centre.query_selector("img.heat").evaluate("img => getComputedStyle(img).display") == "none"
    assert centre.query_selector(".box").evaluate("b => b.style.width") not in ("", "100.00%")
    page.wait_for_selector("article.result[data-method=gradcam]", timeout=120_000)
    page.wait_for_function("document.querySelectorAll('article.result img.mask[src^=data]').length === 3")
    assert page.locator("article.result").count() == 3 and page.is_hidden("#empty")
    snap(page, shots, "explain")


def test_empty_state_and_number_formats(page, server, shots):
    page.goto(f"{server}/explain")
    assert page.is_visible("#empty") and "Choose an image" in page.inner_text("#empty")
    snap(page, shots, "explain-empty")
    cells = page.evaluate("[fmtP(0.788), fmtP(0.0012), fmtP(3.2e-5), fmtP(0), fmtSeconds(0.5471)]")
    assert cells == ["0.788", "0.001", "3.2e−5", "0.000", "time 0.55 s"]
    choose_cat(page, server)
    assert "press Explain" in page.inner_text("#empty-title")
    cells = page.query_selector_all("#methods label")
    tops = {round(c.bounding_box()["x"]) for c in cells}
    assert len(tops) <= 2 and len({round(c.bounding_box()["width"]) for c in cells}) == 1  # a grid


def test_meaningful_job_shows_progress(page, server):
    choose_cat(page, server)
    page.uncheck("#methods input[value=realtime]")
    page.check("#methods input[value=meaningful]")
    page.fill("#iterations", "12")
    page.evaluate("""() => { window.seen = []; setInterval(() => {
        const bar = document.querySelector('.job progress');
        if (bar) window.seen.push(bar.value); }, 20); }""")
    page.click("#explain")
    card = page.wait_for_selector("article.result[data-method=meaningful]", timeout=120_000)
    seen = page.evaluate("window.seen")
    assert any(0 < v < 1 for v in seen), f"the progress bar never moved: {sorted(set(seen))}"
    assert "deleted: p=" in card.inner_text()
    assert "iterations 12" in card.inner_text() and "game delete" in card.inner_text()


def test_bad_upload_shows_a_message(page, server, tmp_path):
    page.goto(f"{server}/explain")
    bad = tmp_path / "notes.jpg"
    bad.write_text("not an image")
    page.set_input_files("#upload", str(bad))
    with page.expect_response("**/api/images") as answer:
        page.click("#upload-form button")
    assert answer.value.status == 415
    page.wait_for_selector("#message:not([hidden])")
    assert page.inner_text("#message") == "notes.jpg: not a readable image"
    # the browser itself logs the refused request as a console error: that one is expected
    assert [e for e in page.console_errors if "status of 415" not in e] == []
    page.console_errors.clear()


def test_evaluation_filtered_to_failures(page, server, shots):
    page.goto(f"{server}/evaluation")
    page.wait_for_selector(".eval-image")
    total = len(page.query_selector_all(".eval-image"))
    page.select_option("#eval-method", "full")
    page.select_option("#eval-filter", "localisation")
    shown = page.query_selector_all(".eval-image")
    assert 0 < len(shown) <= total
    assert all("localisation miss" in f.inner_text() for f in shown)
    assert all(f.query_selector("rect.gt") and f.query_selector("rect.pred") for f in shown)
    page.click("#metrics th[data-key=method]")
    names = [td.inner_text() for td in page.query_selector_all("#metrics tbody td:first-child")]
    assert names == sorted(names)
    heads = [th.inner_text() for th in page.query_selector_all("table.metrics th")]
    assert not [h for h in heads if "_" in h or h.startswith("loc ")], heads
    column = {k.get_attribute("data-key"): int(k.get_attribute("data-col"))
              for k in page.query_selector_all("#metrics th[data-col]")}
    rows = [[td.inner_text() for td in tr.query_selector_all("td")]
            for tr in page.query_selector_all("#metrics tbody tr")]
    counts = [row[column["n_report"]] for row in rows]
    assert all(re.fullmatch(r"\d+", c) for c in counts), counts
    centre = next(row for row in rows if row[0] == "center")
    assert centre[column["loc_error_value"]] == "100.0"  # a percentage, as metrics.md
    # the full image's box lies on the image border: its 2 px line is drawn inside the picture
    insets = page.evaluate("""[...document.querySelectorAll('.eval-image')].map(f => {
        const s = f.querySelector('svg').getBoundingClientRect();
        const r = f.querySelector('rect.pred').getBoundingClientRect();
        return Math.min(r.left - s.left, r.top - s.top, s.right - r.right, s.bottom - r.bottom); })""")
    assert min(insets) >= 1, insets
    captions = [f.query_selector(".class-name").inner_text() for f in shown]
    assert captions and not [c for c in captions if c.startswith("class ")], captions
    snap(page, shots, "evaluation")


def test_compare_and_other_pages(page, server, shots):
    page.goto(f"{server}/compare")
    page.select_option("#compare-images", label="photos0 / chelsea.png")
    page.click("#compare-run")
    page.wait_for_function("document.querySelectorAll('#compare-grid img.heat').length === 3")
    page.wait_for_function("[...document.querySelectorAll('#compare-grid img')].every(i => i.complete)")
    page.wait_for_selector("#compare-grid .stack.binary .box")  # the centre box, as an outline
    assert "masker" not in page.inner_text("#compare-grid") and "realtime" in page.inner_text("#compare-grid")
    snap(page, shots, "compare")
    page.goto(f"{server}/summaries")
    page.wait_for_function("[...document.querySelectorAll('.tiles img')].every(i => i.naturalWidth > 0)")
    assert "<i>cats</i>" in page.inner_text("h1")  # shown as text, not markup
    snap(page, shots, "summaries")


def _left_half(model, images, target):
    masks = torch.zeros(images.shape[0], 1, *images.shape[-2:])
    masks[..., : images.shape[-1] // 2] = 1.0
    return masks


def test_many_methods_keep_the_layout(page, server):
    """Fifteen more methods, one with a long name without a break: the check boxes stay a grid of
    equal cells and nothing overflows, on both pages and at both sizes."""
    from maskscope.methods import METHODS, register_method, unregister_method

    names = [f"user-method-{i}" for i in range(14)] + ["a_method_with_a_rather_long_name_and_no_spaces"]
    for i, name in enumerate(names):
        register_method(name, _left_half, immediate=i % 2 == 0)
    try:
        for path in ("/explain", "/compare"):
            page.goto(f"{server}{path}")
            for width, height in SIZES:
                page.set_viewport_size({"width": width, "height": height})
                assert page.evaluate(OVERFLOWS) == [], (path, width)
                cells = page.query_selector_all(".method-grid label")
                assert len(cells) == len(METHODS)
                assert len({round(c.bounding_box()["width"]) for c in cells}) == 1, (path, width)
    finally:
        for name in names:
            unregister_method(name)
