"""A user's own method in the explorer: listed, run as a job (or at once), its mask served."""

from __future__ import annotations

import io
import time

import numpy as np
import pytest
import torch
from fixtures import BLOB_H, BLOB_W, tiny_model
from PIL import Image

from maskscope.methods import register_method, unregister_method


def left_half(model, images, target):
    """Salient: the left half of every image (whatever the model)."""
    masks = torch.zeros(images.shape[0], 1, *images.shape[-2:])
    masks[..., : images.shape[-1] // 2] = 1.0
    return masks


@pytest.fixture
def client(tmp_path):
    from fastapi.testclient import TestClient

    from maskscope.app import Explorer, create_app
    from maskscope.app.catalog import Catalog

    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (BLOB_H, BLOB_W, 3), dtype=np.uint8)).save(tmp_path / "noise.png")
    register_method("left", left_half)
    register_method("left-now", left_half, immediate=True)
    explorer = Explorer(tiny_model(), Catalog([tmp_path]))
    try:
        with TestClient(create_app(explorer), base_url="http://127.0.0.1") as c:
            yield c
    finally:
        unregister_method("left")
        unregister_method("left-now")


def test_a_user_method_runs_in_the_explorer(client):
    methods = {m["name"]: m for m in client.get("/api/methods").json()}
    assert not methods["left"]["immediate"] and methods["left-now"]["immediate"]
    image = client.get("/api/images").json()[0]["id"]
    response = client.post("/api/jobs", json={"image": image, "method": "left", "options": {"seed": 1}})
    assert response.status_code in (200, 202)
    job = response.json()
    while job["state"] not in ("done", "failed", "cancelled"):
        time.sleep(0.05)
        job = client.get(f"/api/jobs/{job['id']}").json()
    assert job["state"] == "done", job
    row = job["result"]["rows"][0]
    assert row["record"]["method"] == "left" and row["record"]["area"] == pytest.approx(0.5)
    mask = np.load(io.BytesIO(client.get(row["urls"]["mask_npy"]).content))
    assert mask.shape == (BLOB_H, BLOB_W)
    assert mask[:, : BLOB_W // 2].min() == 1 and mask[:, BLOB_W // 2 :].max() == 0
    at_once = client.post("/api/jobs", json={"image": image, "method": "left-now"})
    assert at_once.status_code == 200 and at_once.json()["state"] == "done"
