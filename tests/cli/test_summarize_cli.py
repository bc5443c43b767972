"""`maskscope summarize`: the report end to end, bad input, and the page in a real browser."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from fixtures import cache_crisp_mask, parts_folder
from PIL import Image

from maskscope.cli.main import main
from maskscope.summaries.masks import WORK_SIZE

FAST = ["--iterations", "1", "--crisp-iterations", "1", "--quiet", "--threads", "1"]


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("summ")
    folder, masks = parts_folder(tmp, 8)
    out = tmp / "out"
    for i, m in enumerate(masks):
        cache_crisp_mask(out, folder / f"s{i:02d}.png", m, 3)
    code = main(
        [
            "summarize",
            str(folder),
            "--target",
            "3",
            "--out",
            str(out),
            "--proposals",
            "200",
            "--proposal-mode",
            "fast",
            *FAST,
        ]
    )
    assert code == 0
    return out


def test_report_lists_summaries_with_members_regions_and_parts(report: Path, capsys):
    payload = json.loads((report / "summaries.json").read_text())
    assert payload["stats"]["images"] == 8
    assert payload["stats"]["summaries"] == len(payload["summaries"]) >= 1
    assert set(payload["timings_s"]) >= {"regions", "proposals", "features", "flow", "clustering"}
    names = {im["name"] for im in payload["images"]}
    for s in payload["summaries"]:
        assert s["num_images"] == len(set(s["images"])) >= 3
        for m in s["members"]:
            assert m["image"] in names and len(m["region"]["box"]) == 4
            for part in m["parts"]:
                x0, y0, x1, y1 = part["box"]
                rx0, ry0, rx1, ry1 = m["region"]["box"]
                assert x0 < x1 and y0 < y1 and isinstance(part["score"], float)
                # a part lies (mostly) inside its region's box
                assert min(x1, rx1) - max(x0, rx0) > 0 and min(y1, ry1) - max(y0, ry0) > 0
    page = (report / "index.html").read_text()
    assert f"{payload['stats']['summaries']} summaries" in page
    sources = [s.split('"')[0] for s in page.split('<img src="')[1:]]
    assert len(sources) == sum(s["num_images"] for s in payload["summaries"])
    assert all((report / s).is_file() for s in sources)
    assert len(list((report / "proposals").glob("*_fast_*.npy"))) == 8  # proposals are cached per image


def test_page_shows_every_image_in_a_real_browser(report: Path):
    playwright = pytest.importorskip("playwright.sync_api")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("no chromium installed")
    args = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
    ]
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=args)
        page = browser.new_page()
        page.goto((report / "index.html").resolve().as_uri())
        page.wait_for_load_state("load")
        sizes = page.eval_on_selector_all("img", "els => els.map(e => [e.complete, e.naturalWidth])")
        count = page.inner_text("#count")
        browser.close()
    payload = json.loads((report / "summaries.json").read_text())
    assert len(sizes) == sum(s["num_images"] for s in payload["summaries"]) > 0
    assert all(done and width > 0 for done, width in sizes), sizes
    assert f"{payload['stats']['summaries']} summaries" in count


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("maskscope: error:")
    return err[0]


def test_fewer_than_two_usable_images_is_one_line_and_exit_2(tmp_path, capsys):
    folder = tmp_path / "imgs"
    folder.mkdir()
    Image.new("RGB", (40, 40), (200, 10, 10)).save(folder / "a.png")
    (folder / "broken.jpg").write_bytes(b"not an image")
    code = main(["summarize", str(folder), "--out", str(tmp_path / "o"), *FAST])
    assert code == 2
    capsys.readouterr()  # the skip notice for broken.jpg goes to stderr first
    code = main(["summarize", str(folder), "--out", str(tmp_path / "o"), "--max-images", "1", *FAST])
    assert code == 2
    assert "at least 2 usable images" in _one_line_error(capsys)


def test_unknown_class_name_is_one_line_and_exit_2(tmp_path, capsys):
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(2):
        Image.new("RGB", (40, 40), (10 * i, 100, 10)).save(folder / f"{i}.png")
    code = main(
        ["summarize", str(folder), "--target", "not a real class", "--out", str(tmp_path / "o"), *FAST]
    )
    assert code == 2
    assert "unknown class name" in _one_line_error(capsys)


def test_no_surviving_region_fails_clearly_and_keeps_the_masks(tmp_path, capsys):
    folder, _ = parts_folder(tmp_path, 3)
    out = tmp_path / "out"
    # two masks from an earlier run are empty; the third is computed now (1 + 1 iterations)
    s00 = cache_crisp_mask(out, folder / "s00.png", np.zeros(WORK_SIZE), 3)
    cache_crisp_mask(out, folder / "s01.png", np.zeros(WORK_SIZE), 3)
    code = main(["summarize", str(folder), "--target", "3", "--out", str(out), *FAST])
    assert code == 2
    line = _one_line_error(capsys)
    assert "region" in line and "masks are kept" in line
    assert len(list((out / "masks").glob("s02-*-3.npy"))) == 1  # the mask computed in the failed run is kept
    assert np.load(s00).max() == 0  # and the cached ones were reused


def test_class_ranges_and_label_targets_from_annotations(tmp_path):
    import torch

    from maskscope.blackbox import BlackBox
    from maskscope.cli.summarize import parse_classes
    from maskscope.errors import ConfigError, DataError
    from maskscope.summaries.masks import resolve_file_targets

    assert parse_classes("151-153,7") == {7, 151, 152, 153}
    with pytest.raises(ConfigError):
        parse_classes("dogs")
    folder = tmp_path / "images"
    folder.mkdir()
    paths = [folder / "a.png", folder / "b.png"]
    labels = {"a.png": {"class_index": 2}, "b.png": {"class_index": 0}}
    (tmp_path / "annotations.json").write_text(json.dumps(labels))
    bb = BlackBox(torch.nn.Flatten(), input_size=None, class_names=["x", "y", "z"])
    assert resolve_file_targets(bb, paths, "label") == [2, 0]
    assert resolve_file_targets(bb, paths, "z") == [2, 2]
    (tmp_path / "annotations.json").write_text(json.dumps({"a.png": {"class_index": 2}}))
    with pytest.raises(DataError, match="b.png"):
        resolve_file_targets(bb, paths, "label")
