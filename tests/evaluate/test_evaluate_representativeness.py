"""The §5.2 column group of ``maskscope evaluate``: columns, plot, and completion of old caches."""

from __future__ import annotations

import json

import pytest
from test_evaluate import config, make_folder, tiny_model

from maskscope.data.folders import load_folder
from maskscope.evaluate import evaluate_folder, runner
from maskscope.evaluate.protocols.representativeness import CROSS_KEY, REPR_KEY

pytestmark = pytest.mark.usefixtures("one_thread")

PERTS = ("fixed-blur", "constant", "noise")
CROSS = ("blur", "fixed-blur", "constant", "noise")


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return make_folder(tmp_path_factory.mktemp("data"), n=6)


def test_columns_tables_and_plot(folder, tmp_path):
    out = tmp_path / "out"
    text = evaluate_folder(load_folder(folder), tiny_model(), out, config(methods=["gradient"]), examples=0)
    metrics = json.loads((out / "metrics.json").read_text())
    for name in ("gradient", "center", "full", "gt-boxes"):
        row = metrics[name]
        for p in PERTS:
            assert f"repr_auc_{p}" in row and f"repr_at_0.5_{p}" in row
        assert all(f"cross_drop_{p}" in row for p in CROSS)
        assert 0.0 <= row["repr_area_at_0.5"] <= 1.0
    # the whole-image mask deletes everything from α = 0.05 on: curve 1, 0, 0, …, AUC 0.025 / 0.95
    assert metrics["full"]["repr_auc_constant"] == pytest.approx(0.025 / 0.95, abs=1e-6)
    assert metrics["full"]["repr_at_0.5_constant"] == pytest.approx(0.0, abs=1e-6)
    assert metrics["full"]["repr_area_at_0.5"] == pytest.approx(1.0)
    # the blob is the evidence: deleting the ground-truth box with the mean colour removes most of it
    assert metrics["gt-boxes"]["repr_at_0.5_constant"] < 0.5
    assert metrics["gt-boxes"]["cross_drop_constant"] > 40  # two classes: p cannot fall below ~0.5
    assert "Deletion region representativeness" in text and "| ground-truth boxes (reference) |" in text
    assert "Cross-perturbation drop" in text and (out / "metrics.md").read_text() == text
    assert (out / "representativeness.png").stat().st_size > 10_000
    record = json.loads(next((out / "cache" / "gradient").glob("s[0-9]*.json")).read_text())
    assert len(record[REPR_KEY]["scores"]["noise"]) == 20 and record[REPR_KEY]["scores"]["noise"][0] == 1.0
    assert set(record[CROSS_KEY]) == set(CROSS)


def test_old_cache_entries_get_the_scores_from_their_masks_without_recomputing(folder, tmp_path, monkeypatch):
    out = tmp_path / "out"
    cfg = config(methods=["gradient", "occlusion"], references=False)
    evaluate_folder(load_folder(folder), tiny_model(), out, cfg, examples=0)
    first = (out / "metrics.json").read_text()
    cache = out / "cache" / "gradient"
    stripped = sorted(cache.glob("s[0-9]*.json"))[:4]
    kept = {}
    for path in stripped:  # as written before the column group existed
        record = json.loads(path.read_text())
        kept[path.name] = (record.pop(REPR_KEY), record.pop(CROSS_KEY))
        path.write_text(json.dumps(record))
    masks = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in cache.glob("*.npy")}

    calls = []
    real = runner.get_method

    def counting(name):
        fn = real(name)

        def wrapped(model, images, **kw):
            calls.append((name, images.shape[0]))
            return fn(model, images, **kw)

        return wrapped

    monkeypatch.setattr(runner, "get_method", counting)
    evaluate_folder(load_folder(folder), tiny_model(), out, cfg, examples=0)
    assert calls == []  # no mask recomputed
    for path in stripped:
        record = json.loads(path.read_text())
        assert record[REPR_KEY] == kept[path.name][0]
        assert record[CROSS_KEY] == pytest.approx(kept[path.name][1])
    assert {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in cache.glob("*.npy")} == masks
    details = json.loads((out / "details.json").read_text())
    assert details["info"]["scores_completed_now"] == {"gradient": 4, "occlusion": 0}
    assert details["info"]["computed_now"] == {"gradient": 0, "occlusion": 0}
    again, before = json.loads((out / "metrics.json").read_text()), json.loads(first)
    assert list(again) == list(before)
    for name, row in before.items():
        assert again[name] == pytest.approx(row, abs=1e-6), name
