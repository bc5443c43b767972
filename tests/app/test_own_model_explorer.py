"""The explorer for the user's own model: with ``--masker``, and without any masker (the page starts
with a method that works and says how to train one)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from fixtures import own_classifier, own_images
from PIL import Image
from test_browser import browser, serving  # noqa: F401  (browser: the fixture, Debian's chromium)

from maskscope.cli.main import main
from maskscope.methods.realtime import build_masker, export_weights, masker_config


@pytest.fixture(scope="module")
def boards(tmp_path_factory):
    folder = tmp_path_factory.mktemp("boards")
    x = own_images()[0]
    Image.fromarray((x.permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)).save(folder / "board.png")
    return folder


@pytest.fixture(scope="module")
def masker_file(tmp_path_factory):
    bb = own_classifier()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        masker = build_masker(bb, masker_config(bb, "small"))
    return export_weights(masker, tmp_path_factory.mktemp("masker") / "masker.pt")


def _explorer(boards, masker=None):
    from maskscope.app import Explorer
    from maskscope.app.catalog import Catalog

    return Explorer(own_classifier(), Catalog([boards]), masker_path=masker)


def test_without_a_masker_the_page_starts_with_gradcam_and_says_how_to_train_one(boards):
    from fastapi.testclient import TestClient

    from maskscope.app import create_app

    with TestClient(create_app(_explorer(boards)), base_url="http://127.0.0.1") as client:
        page = client.get("/explain").text
        assert 'value="gradcam" checked' in page and "maskscope train --classifier" in page
        assert "(none for this model)" in page  # the masker's box is there, but cannot be ticked
        assert 'value="realtime" checked' not in client.get("/compare").text
        board = client.get("/api/images").json()[0]["id"]
        answer = client.post("/api/jobs", json={"image": board, "method": "gradcam"})
        assert answer.status_code in (200, 202)


def test_with_a_masker_the_page_starts_with_it_and_it_answers(boards, masker_file):
    from fastapi.testclient import TestClient

    from maskscope.app import create_app

    with TestClient(create_app(_explorer(boards, masker_file)), base_url="http://127.0.0.1") as client:
        page = client.get("/explain").text
        assert 'value="realtime" checked' in page and "maskscope train --classifier" not in page
        board = client.get("/api/images").json()[0]["id"]
        job = client.post("/api/jobs", json={"image": board, "method": "realtime"}).json()
        assert job["state"] == "done" and job["result"]["rows"][0]["record"]["method"] == "realtime"


@pytest.mark.parametrize("case", ["missing", "other weights"])
def test_serve_with_a_bad_masker_is_one_line_before_the_server_starts(tmp_path, capsys, masker_file, case):
    masker = tmp_path / "none.pt" if case == "missing" else masker_file
    # another classifier of the same architecture: the board model with a different bias
    arg = ["--classifier-arg", "size=32"] if case == "other weights" else []
    code = main(["serve", "--classifier", "fixtures:own_classifier", *arg, "--masker", str(masker)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and err.startswith("maskscope: error:"), err


# -- in a real browser ------------------------------------------------------------------------------
@pytest.mark.integration
@pytest.mark.parametrize("with_masker", [True, False], ids=["masker", "no-masker"])
def test_first_use_in_the_browser_shows_no_error(browser, boards, masker_file, with_masker):  # noqa: F811
    errors: list[str] = []
    with serving(_explorer(boards, masker_file if with_masker else None)) as url:
        page = browser.new_page()
        page.on("pageerror", lambda error: errors.append(str(error)))
        try:
            page.goto(f"{url}/explain")
            page.select_option("#image", label="board.png")
            page.wait_for_selector("#top5 li")
            page.click("#explain")  # whatever the page ticked first
            method = "realtime" if with_masker else "gradcam"
            page.wait_for_selector(f"article.result[data-method={method}]", timeout=60_000)
            assert page.is_hidden("#message") or not page.inner_text("#message").strip()
            assert page.is_visible("#masker-hint") != with_masker
        finally:
            page.close()
    assert errors == []
