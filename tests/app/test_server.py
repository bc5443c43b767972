"""The explorer's HTTP API with FastAPI's test client, on the real default model."""

from __future__ import annotations

import io
import time

import numpy as np
import pytest
from PIL import Image

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def client(default_model, photo_folder, evaluation_folder, summaries_folder):
    from fastapi.testclient import TestClient

    from maskscope.app import Explorer, create_app
    from maskscope.app.catalog import Catalog

    catalog = Catalog([photo_folder], max_upload_bytes=200_000)
    explorer = Explorer(default_model, catalog, evaluation=evaluation_folder, summaries=summaries_folder)
    with TestClient(create_app(explorer), base_url="http://127.0.0.1") as c:
        yield c


@pytest.fixture(scope="module")
def cat_id(client):
    return next(i["id"] for i in client.get("/api/images").json() if i["name"] == "chelsea.png")


def wait(client, job_id: str) -> dict:
    while True:
        job = client.get(f"/api/jobs/{job_id}").json()
        if job["state"] in ("done", "failed", "cancelled"):
            return job
        time.sleep(0.05)


def test_pages_render_and_escape_names(client):
    for path in ("/explain", "/compare", "/evaluation", "/evaluation?run=spurious", "/summaries"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert "<b>coffee" not in response.text and "<i>cats" not in response.text
    assert "&lt;b&gt;coffee&lt;b&gt;.png" in client.get("/explain").text
    assert "&lt;i&gt;cats&lt;/i&gt;" in client.get("/summaries").text
    assert client.get("/").url.path == "/explain"
    assert client.get("/static/explain.js").status_code == 200


def test_health_images_classes_methods(client, cat_id):
    assert client.get("/api/health").json()["status"] == "ok"
    assert {i["group"] for i in client.get("/api/images").json()} == {"photos0"}
    assert client.get(f"/api/images/{cat_id}").content[:4] == b"\x89PNG"
    classes = client.get("/api/classes").json()
    assert len(classes) == 1000 and classes[281]["name"].startswith("tabby")
    methods = {m["name"]: m for m in client.get("/api/methods").json()}
    assert methods["realtime"]["immediate"] and not methods["meaningful"]["immediate"]
    top = client.get(f"/api/images/{cat_id}/top").json()["top"]
    assert len(top) == 5 and top[0]["p"] >= top[-1]["p"]
    assert "cat" in " ".join(t["name"] for t in top[:3]).lower()  # chelsea is a tabby cat


def test_masker_answers_at_once_with_the_explain_files(client, cat_id):
    response = client.post("/api/jobs", json={"image": cat_id, "method": "realtime"})
    assert response.status_code == 200
    job = response.json()
    assert job["state"] == "done"
    row = job["result"]["rows"][0]
    rec = row["record"]
    assert rec["method"] == "realtime" and rec["image"] == "chelsea.png" and 0 < rec["area"] < 1
    assert rec["p_deleted"] < rec["p_original"]
    npy = client.get(row["urls"]["mask_npy"])
    assert npy.status_code == 200 and "attachment" in npy.headers["content-disposition"]
    mask = np.load(io.BytesIO(npy.content))
    assert mask.shape == tuple(row["size"]) == (300, 451)
    assert client.get(row["urls"]["json"]).json()["target"] == rec["target"]
    for key in ("mask_png", "overlay", "heat", "deleted", "preserved"):
        assert client.get(row["urls"][key]).content[:4] == b"\x89PNG", key
    # the same request again is the same, cached, result
    again = client.post("/api/jobs", json={"image": cat_id, "method": "realtime"}).json()
    assert again["id"] == job["id"]


def test_meaningful_job_progress_and_cache(client, cat_id):
    body = {"image": cat_id, "method": "meaningful", "target": 281, "options": {"iterations": 3}}
    first = client.post("/api/jobs", json=body)
    assert first.status_code == 202
    job = wait(client, first.json()["id"])
    assert job["state"] == "done" and job["done"] == job["total"] == 3 and job["progress"] == 1.0
    assert job["result"]["rows"][0]["record"]["target"] == 281
    again = client.post("/api/jobs", json=body)
    assert again.status_code == 200 and again.json()["id"] == job["id"]
    other = client.post("/api/jobs", json={**body, "options": {"iterations": 4}}).json()
    assert other["id"] != job["id"]
    wait(client, other["id"])


def test_extremal_gives_one_row_per_area(client, cat_id):
    body = {"image": cat_id, "method": "extremal", "options": {"iterations": 2, "areas": [0.1, 0.3]}}
    job = wait(client, client.post("/api/jobs", json=body).json()["id"])
    assert [r["record"]["requested_area"] for r in job["result"]["rows"]] == [0.1, 0.3]


def test_cancel_a_running_job(client, cat_id):
    body = {"image": cat_id, "method": "meaningful", "options": {"iterations": 5000}}
    job_id = client.post("/api/jobs", json=body).json()["id"]
    while client.get(f"/api/jobs/{job_id}").json()["done"] == 0:
        time.sleep(0.05)
    assert client.post(f"/api/jobs/{job_id}/cancel").status_code == 200
    job = wait(client, job_id)
    assert job["state"] == "cancelled" and job["done"] < 5000
    assert client.get(f"/api/jobs/{job_id}/files/chelsea.npy").status_code == 404
    # a cancelled job is not reused: asking again starts a new one (cancelled at once here)
    new_id = client.post("/api/jobs", json=body).json()["id"]
    assert new_id != job_id
    client.post(f"/api/jobs/{new_id}/cancel")
    assert wait(client, new_id)["state"] == "cancelled"
    done = client.post("/api/jobs", json={"image": body["image"], "method": "center"}).json()
    assert client.post(f"/api/jobs/{done['id']}/cancel").status_code == 409


@pytest.mark.parametrize(("body", "status", "words"), [
    ({"method": "nope"}, 400, "unknown method 'nope'"),
    ({"method": "realtime", "target": 1000}, 422, "out of range"),
    ({"method": "realtime", "target": -1}, 422, "out of range"),
    ({"method": "meaningful", "options": {"iterations": 0}}, 400, "iterations must be"),
    ({"method": "meaningful", "options": {"lr": 3}}, 400, "unknown option 'lr'"),
    ({"method": "extremal", "options": {"areas": [1.5]}}, 400, "outside (0, 1)"),
    ({"method": "meaningful", "options": {"game": "win"}}, 400, "unknown game"),
])
def test_bad_requests_are_4xx_with_a_message(client, cat_id, body, status, words):
    response = client.post("/api/jobs", json={"image": cat_id, **body})
    assert response.status_code == status
    assert words in response.json()["detail"]


def test_unknown_ids_are_404(client):
    assert client.post("/api/jobs", json={"image": "f" * 64, "method": "realtime"}).status_code == 404
    assert client.get("/api/images/nope").status_code == 404
    assert client.get("/api/images/nope/top").status_code == 404
    assert client.get("/api/jobs/j999").status_code == 404
    assert client.post("/api/jobs/j999/cancel").status_code == 404
    assert client.post("/api/jobs", json={"method": "realtime"}).status_code == 422  # no image


def png_bytes(image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def test_uploads(client, photo_folder):
    known = (photo_folder / "<b>coffee<b>.png").read_bytes()
    same = client.post("/api/images", files={"file": ("mine.png", known, "image/png")}).json()
    assert same["group"] == "photos0"  # the same bytes are the same image, whatever the name
    new = png_bytes(Image.open(photo_folder / "<b>coffee<b>.png").transpose(Image.Transpose.FLIP_LEFT_RIGHT))
    response = client.post("/api/images", files={"file": ("../../evil name.png", new, "image/png")})
    assert response.status_code == 200
    entry = response.json()
    assert entry["group"] == "uploads" and entry["name"] == "evil name.png"
    assert entry["id"] in {i["id"] for i in client.get("/api/images").json()}
    assert client.get(f"/api/images/{entry['id']}").content == new
    bad = client.post("/api/images", files={"file": ("bad.jpg", b"not an image at all", "image/jpeg")})
    assert bad.status_code == 415 and bad.json()["detail"] == "bad.jpg: not a readable image"
    big = client.post("/api/images", files={"file": ("big.png", b"\0" * 300_000, "image/png")})
    assert big.status_code == 413 and "above the limit" in big.json()["detail"]
    empty = client.post("/api/images", files={"file": ("empty.png", b"", "image/png")})
    assert empty.status_code == 415 and "empty" in empty.json()["detail"]
    tiny = png_bytes(Image.new("RGB", (4, 4)))
    small = client.post("/api/images", files={"file": ("tiny.png", tiny, "image/png")})
    assert small.status_code == 415 and "too small" in small.json()["detail"]


def test_no_path_traversal(client, evaluation_folder):
    (evaluation_folder.parent / "secret.txt").write_text("the-secret-content")
    for path in ("/evaluation/clean/files/../../secret.txt",
                 "/evaluation/clean/files/%2e%2e/%2e%2e/secret.txt",
                 "/evaluation/clean/files/..%2F..%2Fsecret.txt", "/evaluation/clean/files//etc/passwd",
                 "/summaries/files/../secret.txt", "/summaries/files/%2e%2e/secret.txt",
                 "/api/jobs/j1/files/..%2F..%2Fsecret.txt", "/static/..%2F..%2Fserver.py",
                 "/api/evaluation/clean/images/..%2F..%2Fsecret.txt"):
        response = client.get(path)
        assert 400 <= response.status_code < 500, path
        assert "the-secret-content" not in response.text


def test_evaluation_api(client):
    assert client.get("/evaluation/clean/files/suppression.png").status_code == 200
    assert client.get("/evaluation?run=unknown").status_code == 200  # falls back to the first run
    assert client.get("/api/evaluation/unknown/images").status_code == 404
    data = client.get("/api/evaluation/clean/images").json()
    assert data["methods"] == ["center", "full", "gt-boxes"]
    image = data["images"][0]
    # the ground-truth row's box is the ground truth: it always localises
    assert image["methods"]["gt-boxes"]["localised"] is True
    assert image["methods"]["full"]["box"] == [0.0, 0.0, 63.0, 63.0]
    assert client.get(f"/api/evaluation/clean/images/{image['key']}").content[:4] == b"\x89PNG"
    assert client.get("/summaries/files/summaries/s01_01.png").status_code == 200
