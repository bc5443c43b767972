"""Annotated and plain image folders: validation errors, subsets and the held-out split."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from fixtures import error_line as one_line
from fixtures import random_photo
from PIL import Image

from maskscope.cli.main import main
from maskscope.data import folders
from maskscope.errors import DataError

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "imagenet-val-sample"


def _write_image(path: Path, w: int = 32, h: int = 24) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((h, w, 3), 127, np.uint8)).save(path)


def make_annotated(root: Path, n: int = 3, **overrides) -> Path:
    ann = {}
    for i in range(n):
        name = f"img_{i:02d}.png"
        _write_image(root / "images" / name)
        ann[name] = {
            "class_index": i,
            "wnid": f"n{i}",
            "name": f"thing {i}",
            "boxes": [[2.5, 3.0, 20.0, 15.0]],
            "width": 32,
            "height": 24,
        }
    for name, entry in overrides.items():
        ann[name] = entry
    (root / "annotations.json").write_text(json.dumps(ann))
    return root


def test_annotated_folder_loads(tmp_path):
    ds = folders.load_folder(make_annotated(tmp_path), require_boxes=True)
    assert ds.annotated and ds.has_boxes and len(ds) == 3
    item = ds.items[1]
    assert item.key == "img_01" and item.label == 1 and item.boxes == ((2.5, 3.0, 20.0, 15.0),)
    assert (item.width, item.height) == (32, 24) and item.path.is_file()


def test_boxes_within_one_pixel_are_clipped_and_further_rejected(tmp_path):
    root = make_annotated(tmp_path, n=1)
    ann = json.loads((root / "annotations.json").read_text())
    ann["img_00.png"]["boxes"] = [[-0.6, 0, 31.8, 23.9]]  # rounding past the edge: tolerated
    (root / "annotations.json").write_text(json.dumps(ann))
    box = folders.load_annotated_folder(root).items[0].boxes[0]
    assert box == (0.0, 0.0, 31.0, 23.0)
    ann["img_00.png"]["boxes"] = [[0, 0, 33.5, 10]]  # 2.5 px past the last column
    (root / "annotations.json").write_text(json.dumps(ann))
    with pytest.raises(DataError, match="outside the 32x24 image"):
        folders.load_annotated_folder(root)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"boxes": [[0, 0, 5, 5]], "width": 32, "height": 24}, "missing key 'class_index'"),
        ({"class_index": "3", "boxes": [[0, 0, 5, 5]], "width": 32, "height": 24}, "must be an integer"),
        ({"class_index": 1, "boxes": [[0, 0, 5]], "width": 32, "height": 24}, "must be 4 numbers"),
        ({"class_index": 1, "boxes": [[9, 0, 5, 5]], "width": 32, "height": 24}, "xmin > xmax"),
        ({"class_index": 1, "boxes": "0 0 5 5", "width": 32, "height": 24}, "must be a list"),
        ({"class_index": 1, "boxes": [], "width": 32, "height": 24}, "'boxes' is empty"),
        ({"class_index": 1, "boxes": [[0, 0, 5, 5]], "height": 24}, "missing key 'width'"),
        ([1, 2], "expected an object"),
    ],
)
def test_malformed_entries_raise_one_clear_error(tmp_path, entry, message):
    _write_image(tmp_path / "images" / "bad.png")
    make_annotated(tmp_path, n=2, **{"bad.png": entry})
    with pytest.raises(DataError, match=message) as info:
        folders.load_annotated_folder(tmp_path)
    assert "bad.png" in str(info.value) and "\n" not in str(info.value)


def test_bad_json_missing_listed_file_and_empty_folders(tmp_path):
    root = make_annotated(tmp_path / "a", n=2)
    (root / "annotations.json").write_text("{not json")
    with pytest.raises(DataError, match="not valid JSON"):
        folders.load_folder(root)
    (root / "annotations.json").write_text("[]")
    with pytest.raises(DataError, match="expected an object"):
        folders.load_folder(root)

    root = make_annotated(tmp_path / "b", n=2)
    (root / "images" / "img_01.png").unlink()
    with pytest.raises(DataError, match="does not exist"):
        folders.load_folder(root)

    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no images found"):
        folders.load_folder(tmp_path / "empty")
    with pytest.raises(DataError, match="no such folder"):
        folders.load_folder(tmp_path / "nowhere")
    with pytest.raises(DataError, match="boxes are needed"):
        folders.load_folder(tmp_path / "empty", require_boxes=True)


def test_plain_folder_and_duplicate_stems(tmp_path):
    _write_image(tmp_path / "b.png")
    _write_image(tmp_path / "a.png")
    _write_image(tmp_path / "a.jpg")
    (tmp_path / "notes.txt").write_text("not an image")
    ds = folders.load_folder(tmp_path)
    assert not ds.annotated and [it.key for it in ds.items] == ["a.jpg", "a.png", "b"]
    assert all(it.label is None for it in ds.items)


def _fake_items(n: int) -> list[folders.Item]:
    return [folders.Item(path=Path(f"img_{i:04d}.jpg"), key=f"img_{i:04d}") for i in range(n)]


def test_subset_is_deterministic_nested_and_seed_dependent():
    items = _fake_items(200)
    a = folders.select(items, 30, seed=0)
    assert a == folders.select(items, 30, seed=0) and len(a) == 30
    assert {x.key for x in a} <= {x.key for x in folders.select(items, 60, seed=0)}
    assert {x.key for x in a} != {x.key for x in folders.select(items, 30, seed=1)}
    assert [x.key for x in a] == sorted(x.key for x in a)
    assert folders.select(items, None) == items
    with pytest.raises(DataError):
        folders.select(items, 0)


def test_split_is_per_item_stable_and_never_empty():
    items = _fake_items(300)
    full = folders.split(items, 0.3, seed=0)
    frac = sum(v == "tune" for v in full.values()) / len(full)
    assert 0.2 < frac < 0.4
    sub = folders.select(items, 50, seed=0)
    part = folders.split(sub, 0.3, seed=0)
    moved = [k for k in part if part[k] != full[k]]
    assert len(moved) <= 1  # only the never-empty fallback may move one item
    for n in (2, 3):
        values = set(folders.split(_fake_items(n), 0.3).values())
        assert values == {"tune", "report"}
    assert set(folders.split(_fake_items(1), 0.3).values()) == {"report"}


@pytest.mark.skipif(not SHARED.is_dir(), reason="shared ImageNet sample not present")
def test_shared_imagenet_sample_validates():
    ds = folders.load_folder(SHARED, require_boxes=True)
    assert len(ds) == 1298 and ds.has_boxes and ds.class_names[0] == "tench"
    assert all(0 <= b[0] <= b[2] <= 226 and 0 <= b[1] <= b[3] <= 226 for it in ds.items for b in it.boxes)


@pytest.mark.parametrize("key", ["../../x.png", "../x.png", "/etc/x.png"])
def test_evaluate_annotation_keys_outside_images_are_refused(tmp_path, key, capsys):
    """Fault: evaluate: an annotation key outside the images folder (../../x.png, ../x.png, /etc/x.png) —
    refused in one line."""
    from maskscope.data.folders import load_folder
    from maskscope.errors import DataError

    data = tmp_path / "a" / "b" / "d"
    random_photo(data / "images" / "ok.png", 0)
    random_photo(tmp_path / "a" / "x.png", 1)  # what ../../x.png would read
    ann = {"ok.png": {"class_index": 0}, key: {"class_index": 1}}
    (data / "annotations.json").write_text(json.dumps(ann))
    with pytest.raises(DataError, match="must lie inside"):
        load_folder(data)
    assert main(["evaluate", "--data", str(data), "--out", str(tmp_path / "o"), "--quiet"]) == 2
    assert "must lie inside" in one_line(capsys)


# -- a key twice in annotations.json, for every reader of it (evaluate's folders, train's data,
# summarize's labels): the JSON reader alone would keep the last
def _entry(label: int) -> str:
    return f'{{"class_index": {label}, "boxes": [[2, 3, 20, 15]], "width": 32, "height": 24}}'


def _folder_with(root: Path, text: str) -> Path:
    (root / "images").mkdir(parents=True)
    for name in ("a.png", "b.png"):
        Image.fromarray(np.full((24, 32, 3), 127, np.uint8)).save(root / "images" / name)
    (root / "annotations.json").write_text(text)
    return root


DUPLICATE_IMAGE = f'{{"a.png": {_entry(1)}, "b.png": {_entry(2)}, "a.png": {_entry(3)}}}'
DUPLICATE_FIELD = '{"a.png": {"class_index": 1, "class_index": 5, "width": 32, "height": 24}}'


@pytest.mark.parametrize("text, key", [(DUPLICATE_IMAGE, "a.png"), (DUPLICATE_FIELD, "class_index")])
def test_every_reader_refuses_a_duplicate_key(tmp_path, text, key):
    from maskscope.data.folders import load_folder
    from maskscope.methods.realtime.data import read_folder
    from maskscope.summaries.masks import read_annotations

    root = _folder_with(tmp_path, text)
    readers = (lambda: load_folder(root), lambda: read_folder(root),
               lambda: read_annotations(root / "images"))
    for read in readers:
        with pytest.raises(DataError) as caught:
            read()
        message = str(caught.value)
        assert f"key {key!r} appears twice" in message and "\n" not in message


def test_a_duplicate_key_is_one_line_from_the_cli(tmp_path, capsys):
    from maskscope.cli.main import main

    root = _folder_with(tmp_path / "d", DUPLICATE_IMAGE)
    assert main(["evaluate", "--data", str(root), "--methods", "center", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.startswith("maskscope: error")]
    assert len(lines) == 1 and "'a.png' appears twice" in lines[0] and "Traceback" not in err
