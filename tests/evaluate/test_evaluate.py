"""``maskscope evaluate``: runner, cache/resume, tables and CLI errors, on a tiny analytic model."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from fixtures import BLOB_H, BLOB_W, tiny_model
from PIL import Image

from maskscope.cli import main as cli_main
from maskscope.data.folders import load_folder
from maskscope.errors import ConfigError
from maskscope.evaluate import EvalConfig, evaluate, evaluate_folder, runner
from maskscope.evaluate.cache import MaskCache

H, W = BLOB_H, BLOB_W


def make_folder(root: Path, n: int = 8) -> Path:
    """Dark noisy images with one bright red (class 0) or green (class 1) 16×20 blob."""
    rng = np.random.default_rng(0)
    (root / "images").mkdir(parents=True)
    ann = {}
    for i in range(n):
        img = (rng.random((H, W, 3)) * 60).astype(np.uint8)
        x0, y0 = int(rng.integers(1, W - 21)), int(rng.integers(1, H - 17))
        img[y0 : y0 + 16, x0 : x0 + 20, i % 2] = 240
        Image.fromarray(img).save(root / "images" / f"s{i}.png")
        box = [x0, y0, x0 + 19, y0 + 15]
        ann[f"s{i}.png"] = {"class_index": i % 2, "boxes": [box], "width": W, "height": H}
    (root / "annotations.json").write_text(json.dumps(ann))
    return root


def config(**kw) -> EvalConfig:
    base = {
        "methods": ["gradient", "occlusion", "meaningful"],
        "batch_size": 3,
        "iterations": 4,
        "progress": False,
    }
    base.update(kw)
    return EvalConfig(**base)


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return make_folder(tmp_path_factory.mktemp("data"))


def test_evaluation_writes_table_and_reference_rows_are_right(folder, tmp_path):
    model = tiny_model()
    out = tmp_path / "out"
    text = evaluate_folder(load_folder(folder, require_boxes=True), model, out, config(), examples=4)
    metrics = json.loads((out / "metrics.json").read_text())
    assert list(metrics) == ["gradient", "occlusion", "meaningful", "center", "full", "gt-boxes"]
    assert "| ground-truth boxes (reference) |" in text and (out / "metrics.md").read_text() == text
    for name in metrics:
        assert (out / "examples" / f"{name}.png").is_file()
    assert (out / "suppression.png").is_file()
    # ground truth localises itself; the whole image never does (every blob is < 50 % of the image)
    assert metrics["gt-boxes"]["loc_error_fixed@0.5"] == 0.0 and metrics["gt-boxes"]["pointing"] == 1.0
    assert metrics["full"]["loc_error_fixed@0.5"] == 1.0
    # RISE curves are computed too; a flat ("full") map deletes in raster order, the truth blob first
    for name in metrics:
        assert 0.0 <= metrics[name]["deletion_auc"] <= 1.0 and 0.0 <= metrics[name]["insertion_auc"] <= 1.0
    assert metrics["gt-boxes"]["deletion_auc"] < metrics["full"]["deletion_auc"]
    assert "deletion AUC" in text
    # the evidence is the blob itself, so gradient points at it on every image
    assert metrics["gradient"]["pointing"] == 1.0
    # full-image saliency metric is −log p of the image (Dabkowski's "max box"), recomputed here
    details = json.loads((out / "details.json").read_text())
    ds = load_folder(folder)
    report = [it for it in ds.items if (out / "cache" / "full" / f"{it.key}.json").is_file()]
    keys = {s.item.key for s in runner.make_samples(ds, model, config(), (H, W)) if s.split == "report"}
    chosen = [runner.EvalSample(it, "report", it.label) for it in report if it.key in keys]
    x = runner.load_images(chosen, (H, W))
    labels = torch.tensor([it.label for it in report if it.key in keys])
    with torch.no_grad():
        p = model(x).softmax(1)[torch.arange(len(labels)), labels]
    assert metrics["full"]["saliency_metric"] == pytest.approx(float((-p.log()).mean()), abs=1e-4)
    assert details["info"]["report_images"] + details["info"]["tune_images"] == 8
    assert metrics["full"]["n_report"] == len(keys)


class Counting:
    """Wraps a method: counts explained images and raises after ``fail_after`` batches."""

    def __init__(self, fn, fail_after: int | None = None) -> None:
        self.fn, self.fail_after, self.batches, self.images = fn, fail_after, 0, 0

    def __call__(self, model, images, **kw):
        if self.fail_after is not None and self.batches >= self.fail_after:
            raise KeyboardInterrupt  # as if the user pressed Ctrl-C mid-run
        self.batches += 1
        self.images += images.shape[0]
        return self.fn(model, images, **kw)


def test_interrupted_run_resumes_without_recomputing_and_gives_the_same_table(folder, tmp_path, monkeypatch):
    model = tiny_model()
    ds = load_folder(folder, require_boxes=True)
    cfg = config(methods=["meaningful", "gradient"], references=False)
    clean = tmp_path / "uninterrupted"
    evaluate_folder(ds, model, clean, cfg, examples=0)

    real_get = runner.get_method
    wrappers: dict[str, Counting] = {}

    def patched(fail_after):
        wrappers.clear()

        def get(name):  # the runner looks the method up once per batch: keep one counter per name
            if name not in wrappers:
                wrappers[name] = Counting(real_get(name), fail_after if name == "meaningful" else None)
            return wrappers[name]

        return get

    out = tmp_path / "resumed"
    monkeypatch.setattr(runner, "get_method", patched(fail_after=1))
    with pytest.raises(KeyboardInterrupt):
        evaluate_folder(ds, model, out, cfg, examples=0)
    done = sorted((out / "cache" / "meaningful").glob("*.npy"))
    assert len(done) == 3  # one batch of 3 finished before the "kill"
    assert not list((out / "cache" / "meaningful").glob("*.tmp"))
    stamps = {p.name: p.stat().st_mtime_ns for p in (out / "cache" / "meaningful").iterdir()}

    monkeypatch.setattr(runner, "get_method", patched(fail_after=None))
    evaluate_folder(ds, model, out, cfg, examples=0)
    assert wrappers["meaningful"].images == 8 - 3  # only the missing masks were computed
    for name, stamp in stamps.items():
        assert (out / "cache" / "meaningful" / name).stat().st_mtime_ns == stamp  # not rewritten
    assert (out / "metrics.json").read_text() == (clean / "metrics.json").read_text()

    # a third run computes nothing at all
    monkeypatch.setattr(runner, "get_method", patched(fail_after=None))
    evaluate_folder(ds, model, out, cfg, examples=0)
    assert all(w.images == 0 for w in wrappers.values()) and set(wrappers) == {"meaningful", "gradient"}


def test_cached_only_scores_exactly_the_images_the_slow_method_finished(folder, tmp_path, monkeypatch):
    """A time-boxed run of a slow method: after a "kill" with 3 of 8 masks cached, --cached-only
    scores those 3 images for every row, computes the other methods on them only, and never the
    slow method's missing masks."""
    model = tiny_model()
    ds = load_folder(folder, require_boxes=True)
    out = tmp_path / "out"
    real_get = runner.get_method
    calls = {"n": 0}

    def killed_after_one_batch(name):
        fn = real_get(name)

        def wrapped(*args, **kwargs):
            if name == "meaningful":
                calls["n"] += 1
                if calls["n"] > 1:
                    raise KeyboardInterrupt
            return fn(*args, **kwargs)

        return wrapped

    monkeypatch.setattr(runner, "get_method", killed_after_one_batch)
    with pytest.raises(KeyboardInterrupt):
        evaluate(ds, model, out, config(methods=["meaningful"], references=False))
    cached = sorted(p.stem for p in (out / "cache" / "meaningful").glob("*.npy"))
    assert len(cached) == 3
    monkeypatch.setattr(runner, "get_method", real_get)
    results = evaluate(ds, model, out, config(methods=["meaningful", "gradient"], cached_only="meaningful"))
    assert sorted(s.item.key.rsplit(".", 1)[0] for s in results.samples) == cached
    assert results.info["images"] == 3 and results.info["computed_now"]["meaningful"] == 0
    assert results.info["computed_now"]["gradient"] == 3
    assert len(list((out / "cache" / "meaningful").glob("*.npy"))) == 3
    with pytest.raises(ConfigError):
        evaluate(ds, model, out, config(methods=["gradient"], cached_only="meaningful"))


def test_cache_refuses_other_settings_and_writes_atomically(tmp_path):
    cache = MaskCache(tmp_path, "meaningful", {"iterations": 300})
    mask = np.linspace(0, 1, 12, dtype=np.float32).reshape(3, 4)
    cache.put("a", mask, {"drop": 1.5})
    assert cache.has("a") and not cache.has("b")
    got, rec = cache.get("a")
    assert got.dtype == np.float32 and np.allclose(got, mask, atol=1e-3) and rec == {"drop": 1.5}
    assert sorted(p.name for p in cache.folder.iterdir()) == ["a.json", "a.npy", "settings.json"]
    (cache.folder / "a.json").unlink()  # killed between the two writes: entry is incomplete
    assert not MaskCache(tmp_path, "meaningful", {"iterations": 300}).has("a")
    with pytest.raises(ConfigError, match="iterations"):
        MaskCache(tmp_path, "meaningful", {"iterations": 100})


def test_plain_folder_gets_box_free_metrics(tmp_path):
    src = make_folder(tmp_path / "ann", n=4)
    plain = tmp_path / "plain"
    plain.mkdir()
    for p in (src / "images").iterdir():
        (plain / p.name).write_bytes(p.read_bytes())
    results = evaluate(load_folder(plain), tiny_model(), tmp_path / "out", config(methods=["gradient"]))
    assert list(results.metrics) == ["gradient", "center", "full"]  # no ground truth to show
    gradient = results.metrics["gradient"]
    assert "localisation" not in gradient and gradient["saliency"] is not None
    assert [s.target for s in sorted(results.samples, key=lambda s: s.item.key)] == [0, 1, 0, 1]


def test_class_index_beyond_the_model_is_a_data_error(tmp_path):
    root = make_folder(tmp_path / "d", n=2)
    ann = json.loads((root / "annotations.json").read_text())
    ann["s1.png"]["class_index"] = 7
    (root / "annotations.json").write_text(json.dumps(ann))
    with pytest.raises(Exception, match="class_index 7 does not exist"):
        evaluate(load_folder(root), tiny_model(), tmp_path / "out", config(methods=["gradient"]))


# -- CLI --------------------------------------------------------------------------------------------
def _cli(args, capsys) -> tuple[int, str]:
    code = cli_main.main(["evaluate", *args])
    return code, capsys.readouterr().err


def test_cli_errors_are_one_line_and_exit_2(tmp_path, capsys):
    good = make_folder(tmp_path / "good", n=2)
    out = str(tmp_path / "o")
    code, err = _cli(["--data", str(good), "--methods", "gradient,nonsense", "--out", out], capsys)
    assert code == 2 and "unknown method 'nonsense'" in err and err.count("\n") == 1
    (tmp_path / "empty").mkdir()
    code, err = _cli(["--data", str(tmp_path / "empty"), "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and "no images found" in err and err.count("\n") == 1
    bad = make_folder(tmp_path / "bad", n=2)
    (bad / "annotations.json").write_text('{"s0.png": {"class_index": 0}')
    code, err = _cli(["--data", str(bad), "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and "not valid JSON" in err and err.count("\n") == 1
    outside = make_folder(tmp_path / "outside", n=2)
    ann = json.loads((outside / "annotations.json").read_text())
    ann["s0.png"]["boxes"] = [[0, 0, W + 5, 10]]
    (outside / "annotations.json").write_text(json.dumps(ann))
    code, err = _cli(["--data", str(outside), "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and "outside the 48x40 image" in err and err.count("\n") == 1
    for option, message in (("occlusion.stride", "expected METHOD.KEY=VALUE"),
                            ("rise.n_masks=10", "not among the methods evaluated"),
                            ("gradient.window=3", "has no option 'window'")):
        args = ["--data", str(good), "--methods", "gradient", "--option", option, "--out", out]
        code, err = _cli(args, capsys)
        assert code == 2 and message in err and err.count("\n") == 1, err


def test_method_options_reach_the_method_and_the_cache_key(folder, tmp_path):
    out = tmp_path / "out"
    options = {"occlusion": {"window": 8, "stride": 4}}
    evaluate_folder(load_folder(folder), tiny_model(), out, config(methods=["occlusion"], options=options),
                    examples=0)
    info = json.loads((out / "details.json").read_text())["info"]
    assert info["method_options"]["occlusion"] == {"window": 8, "stride": 4}
    # the same cache with other options is refused rather than silently mixed
    with pytest.raises(Exception, match="(?i)settings|differ|mismatch"):
        evaluate_folder(load_folder(folder), tiny_model(), out,
                        config(methods=["occlusion"], options={"occlusion": {"stride": 2}}), examples=0)


def test_cli_runs_end_to_end(tmp_path, capsys, monkeypatch):
    from maskscope.cli import evaluate as cli_evaluate

    monkeypatch.setattr(cli_evaluate, "load_model", lambda args: tiny_model())
    data = make_folder(tmp_path / "d", n=4)
    out = tmp_path / "out"
    code = cli_main.main(
        [
            "evaluate",
            "--data",
            str(data),
            "--methods",
            "gradient,center",
            "--out",
            str(out),
            "--limit",
            "3",
            "--batch-size",
            "2",
            "--quiet",
        ]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics) == {"gradient", "center", "full", "gt-boxes"}
    assert all(metrics[m]["n_report"] + metrics[m]["n_tune"] == 3 for m in metrics)
    assert "| gradient |" in captured.out and math.isfinite(metrics["center"]["saliency_metric"])


def test_synthetic_benchmark_end_to_end(tmp_path, monkeypatch):
    from maskscope.data import synthetic
    from maskscope.evaluate import evaluate_synthetic

    def untrained(variant, device="cpu"):  # the pipeline, not the shipped weights, is under test
        torch.manual_seed(0)
        net = synthetic.SmallCNN(len(synthetic.class_names(variant)), widths=(8, 8, 8, 8))
        return synthetic.as_synthetic_blackbox(net, variant).to(device)

    monkeypatch.setattr(synthetic, "load_synthetic_classifier", untrained)

    cfg = config(methods=["gradient"], batch_size=8)
    text = evaluate_synthetic(tmp_path, cfg, scenes=24, examples=2)
    rows = json.loads((tmp_path / "metrics.json").read_text())
    assert set(rows) == {"gradient", "center", "full", "gt-boxes"} and "| gradient |" in text
    assert rows["gt-boxes"]["clean_loc_error_at_0.5"] == 0.0 and rows["gt-boxes"]["clean_pointing"] == 1.0
    for variant in ("clean", "spurious"):
        assert (tmp_path / variant / "metrics.md").is_file()
        assert (tmp_path / variant / "data" / "masks").is_dir()
    # re-running reuses the generated scenes and every cached mask
    evaluate_synthetic(tmp_path, cfg, scenes=24, examples=0)
    details = json.loads((tmp_path / "clean" / "details.json").read_text())
    assert set(details["info"]["computed_now"].values()) == {0}


def test_ground_truth_row_uses_the_largest_box_so_it_always_localises():
    """Two far-apart objects: a box around their union has IoU < 0.5 with either; the largest box has 1."""
    from maskscope.data.folders import Item
    from maskscope.metrics import localisation_correct

    sample = runner.EvalSample(
        Item(path=Path("x.png"), key="x"), "report", 0, boxes=[(0.0, 0.0, 9.0, 9.0), (30.0, 20.0, 47.0, 39.0)]
    )
    mask, _ = runner._call_method(runner.GROUND_TRUTH, None, torch.zeros(1, 3, H, W), [sample], {}, (H, W))
    assert mask.shape == (1, 1, H, W) and float(mask.sum()) == 18 * 20
    assert localisation_correct(mask[0, 0], sample.boxes, "fixed", 0.5)
