"""The explorer's edges answer 4xx, never 500: a NUL byte in a path, numbers no tensor holds, a
garbage cached mask, an image deleted after start-up. Two files with the same bytes are two entries."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from fixtures import random_photo, tiny_model


@pytest.fixture
def made(tmp_path):
    from fastapi.testclient import TestClient

    from maskscope.app import Explorer, create_app
    from maskscope.app.catalog import Catalog

    photos = tmp_path / "photos"
    random_photo(photos / "a.png", 0)
    random_photo(photos / "gone.png", 1)
    shutil.copy(photos / "a.png", photos / "same bytes.png")
    evaluation = evaluation_folder(tmp_path)
    summaries = tmp_path / "summaries"
    summaries.mkdir()
    (summaries / "summaries.json").write_text(json.dumps({"summaries": []}))
    catalog = Catalog([photos, photos / "a.png"])
    explorer = Explorer(tiny_model(), catalog, evaluation=evaluation, summaries=summaries)
    app = create_app(explorer)
    with TestClient(app, base_url="http://127.0.0.1", raise_server_exceptions=False) as client:
        yield client, photos, evaluation
    explorer.close()


def evaluation_folder(tmp_path):
    """An evaluate output in its format, by hand: one good cached mask, and garbage beside it."""
    from maskscope.data.folders import load_folder
    from maskscope.evaluate.cache import entry_stem

    data = tmp_path / "data"
    for k in range(3):
        random_photo(data / f"i{k}.png", 10 + k, size=(32, 32))
    out = tmp_path / "evaluation"
    (out / "cache" / "center").mkdir(parents=True)
    (out / "details.json").write_text(json.dumps({"metrics": {"center": {}}, "info": {
        "data": str(data), "size": [32, 32]}}))
    keys = [item.key for item in load_folder(data).items]
    mask = np.zeros((32, 32), np.float32)
    mask[8:16, 8:16] = 1
    np.save(out / "cache" / "center" / f"{entry_stem(keys[0])}.npy", mask)
    (out / "cache" / "center" / f"{entry_stem(keys[1])}.npy").write_bytes(b"\x93NUMPY garbage, not an array")
    np.save(out / "cache" / "center" / f"{entry_stem(keys[2])}.npy", np.full((32, 32), np.nan, np.float32))
    return out


def test_a_nul_byte_in_a_path_is_404(made):
    client, _, evaluation = made
    for path in ("/evaluation/evaluation/files/a%00b.png", "/summaries/files/a%00b", "/api/images/a%00b",
                 "/api/evaluation/evaluation/images/a%00b", "/api/jobs/j1%00/files/x%00.png"):
        assert client.get(path).status_code == 404, path


def test_numbers_no_tensor_holds_are_refused_before_a_job_starts(made):
    client, _, _ = made
    image = next(i["id"] for i in client.get("/api/images").json() if i["name"] == "a.png")
    for body, status, words in [({"method": "center", "target": 10**30}, 422, "out of range"),
                                ({"method": "gradient", "target": -10**30}, 422, "out of range"),
                                ({"method": "meaningful", "options": {"seed": 2**70}}, 400, "seed"),
                                ({"method": "rise", "options": {"seed": -1}}, 400, "seed")]:
        response = client.post("/api/jobs", json={"image": image, **body})
        assert response.status_code == status and words in response.json()["detail"], (body, response.text)
    assert client.get("/api/jobs").json() == []


def test_a_garbage_cached_mask_is_shown_as_missing(made):
    client, _, _ = made
    response = client.get("/api/evaluation/evaluation/images")
    assert response.status_code == 200
    assert [i["name"] for i in response.json()["images"]] == ["i0.png"]


def test_an_image_deleted_after_start_up_is_404(made):
    client, photos, _ = made
    gone = next(i["id"] for i in client.get("/api/images").json() if i["name"] == "gone.png")
    (photos / "gone.png").unlink()
    for response in (client.get(f"/api/images/{gone}"), client.get(f"/api/images/{gone}/top"),
                     client.post("/api/jobs", json={"image": gone, "method": "center"}),
                     client.post("/api/jobs", json={"image": gone, "method": "gradient"})):
        assert response.status_code == 404 and "no longer on disk" in response.json()["detail"]


def test_two_files_with_the_same_bytes_are_two_entries(made):
    client, photos, _ = made
    images = client.get("/api/images").json()
    assert sorted(i["name"] for i in images) == ["a.png", "gone.png", "same bytes.png"]  # a.png given twice
    ids = {i["name"]: i["id"] for i in images}
    assert ids["a.png"] != ids["same bytes.png"]
    for name in ("a.png", "same bytes.png"):
        assert client.get(f"/api/images/{ids[name]}").content == (photos / name).read_bytes()
        job = client.post("/api/jobs", json={"image": ids[name], "method": "center"}).json()
        assert job["result"]["rows"][0]["record"]["image"] == name
