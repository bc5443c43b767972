"""Shared by the explorer's tests: the real default model, a folder of photos, a tiny evaluation."""

from __future__ import annotations

import pytest
from PIL import Image

pytest.importorskip("fastapi", reason="the explorer needs the app extra: pip install -e '.[app]'")


@pytest.fixture(scope="session")
def default_model():
    from maskscope.zoo import load_classifier

    return load_classifier()


@pytest.fixture(scope="session")
def photo_folder(tmp_path_factory):
    """Two demo photos, one under a name that must be escaped in the page."""
    from maskscope.data.photos import demo_photos

    folder = tmp_path_factory.mktemp("photos")
    photos = demo_photos()
    Image.fromarray(photos["chelsea"]).save(folder / "chelsea.png")
    Image.fromarray(photos["coffee"][::2, ::2]).save(folder / "<b>coffee<b>.png")
    return folder


@pytest.fixture(scope="session")
def evaluation_folder(tmp_path_factory):
    """A tiny ``maskscope evaluate --synthetic`` run: 3 scenes per variant, the reference rows."""
    from maskscope.evaluate import EvalConfig, evaluate_synthetic

    out = tmp_path_factory.mktemp("evaluation")
    evaluate_synthetic(out, EvalConfig(methods=["center"], progress=False), scenes=3, examples=1)
    return out


@pytest.fixture(scope="session")
def summaries_folder(tmp_path_factory, photo_folder):
    """A ``summarize`` output folder in its format (summaries.json and a tile), written by hand: a
    real run takes a minute here, and the pages only read these two files."""
    import json

    folder = tmp_path_factory.mktemp("summaries")
    report = {"title": "<i>cats</i>", "model": "efficientnet-lite0", "target": "tabby", "stats": {
        "summaries": 1, "images": 2}, "summaries": [{
            "id": 1, "images": ["a.png", "b.png"], "num_images": 2, "median_ssim": 0.5, "members": [
                {"image": "a.png", "region": {"id": 1, "box": [0, 0, 40, 40]},
                 "parts": [{"box": [10, 10, 20, 20], "score": 0.9}]}]}]}
    (folder / "summaries.json").write_text(json.dumps(report))
    (folder / "summaries").mkdir()
    tile = Image.open(photo_folder / "chelsea.png").crop((100, 50, 250, 200))
    tile.save(folder / "summaries" / "s01_01.png")
    return folder
