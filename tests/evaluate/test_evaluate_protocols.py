"""Evaluation protocols as plug-ins: their one shape, choosing them, the reference rows, a user's own."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch
from test_evaluate import config, make_folder, tiny_model

from maskscope.cli.main import main
from maskscope.data.folders import load_folder
from maskscope.errors import ConfigError
from maskscope.evaluate import PROTOCOLS, EvalConfig, Protocol, evaluate_folder
from maskscope.evaluate.protocols import MODEL, Rows, resolve
from maskscope.evaluate.samples import EvalSample, load_images

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return make_folder(tmp_path_factory.mktemp("data"), n=6)


def _rows(folder, n: int = 2) -> Rows:
    """``n`` images with a soft mask each, for one method."""
    items = load_folder(folder).items[:n]
    samples = [EvalSample(it, "report", it.label, [tuple(map(float, b)) for b in it.boxes]) for it in items]
    images = load_images(samples, (items[0].height, items[0].width))
    masks = torch.linspace(0, 1, images[0, 0].numel()).view(1, 1, *images.shape[-2:]).repeat(n, 1, 1, 1)
    targets = torch.tensor([s.target for s in samples])
    return Rows(tiny_model(), images, masks, targets, samples, ["gradient"] * n)


@pytest.mark.parametrize("name", [n for n, p in PROTOCOLS.items() if p.record_keys])
def test_each_protocol_costs_the_forward_passes_metrics_md_states(folder, name):
    protocol = PROTOCOLS[name]
    rows = _rows(folder)
    with torch.no_grad():
        rows.model(rows.images[:1])  # the black box's own first call (it checks the model's output)
    seen = []
    hook = rows.model.model.register_forward_hook(lambda _m, args, _out: seen.append(args[0].shape[0]))
    try:
        records = protocol.image_scores(rows)
    finally:
        hook.remove()
    per_image = sum(seen) / len(rows.samples)
    stated = int(re.match(r"(≤ )?(\d+)", protocol.passes).group(2))
    assert per_image <= stated if protocol.passes.startswith("≤") else per_image == stated
    assert per_image > 0 or MODEL not in protocol.needs
    # every image gets exactly the record entries the protocol declares, so a cache can be completed
    assert [set(r) for r in records] == [set(protocol.record_keys)] * len(rows.samples)
    assert not any(protocol.needs_scores(r) for r in records) and protocol.needs_scores({})


def test_protocols_resolve_in_registry_order_and_unknown_names_are_refused():
    assert [p.name for p in resolve(["saliency", "localisation"])] == ["saliency", "localisation"]
    assert [p.name for p in resolve(["pointing", "drop"])] == ["drop", "pointing"]
    assert resolve(None) == list(PROTOCOLS.values())
    with pytest.raises(ConfigError, match="unknown protocol 'nope'; known: saliency, drop"):
        resolve(["saliency", "nope"])
    with pytest.raises(ConfigError, match="no protocols"):
        resolve([])


def test_chosen_protocols_are_the_only_columns_and_a_later_run_completes_the_rest(folder, tmp_path):
    ds = load_folder(folder, require_boxes=True)
    out = tmp_path / "out"
    cheap = config(methods=["gradient", "center"], references=False, protocols=["localisation", "saliency"])
    text = evaluate_folder(ds, tiny_model(), out, cheap, examples=1)
    row = json.loads((out / "metrics.json").read_text())["gradient"]
    assert {k for k in row if not k.startswith("loc_")} == {"saliency_metric", "n_report", "n_tune"}
    assert "% drop ↑" not in text and "Cross-perturbation" not in text and "pointing %" not in text
    assert "by protocol: saliency 1 (ground-truth row: 1 per box), localisation 0." in text
    record = json.loads((out / "cache" / "gradient" / "s0.json").read_text())
    assert "saliency" in record and "drop" not in record and "representativeness" not in record

    # every protocol, into the same folder: no mask recomputed, the missing scores completed from the
    # cached masks (both methods' rows of a batch scored together), as a fresh run scores them
    details = _run_all(ds, out)
    assert details["info"]["computed_now"] == {"gradient": 0, "center": 0}
    assert details["info"]["scores_completed_now"] == {"gradient": 6, "center": 6}
    assert _run_all(ds, out)["info"]["scores_completed_now"] == {"gradient": 0, "center": 0}
    fresh = tmp_path / "fresh"
    _run_all(ds, fresh)
    completed, direct = (json.loads((o / "metrics.json").read_text()) for o in (out, fresh))
    for name in ("gradient", "center"):
        assert list(completed[name]) == list(direct[name])
        assert completed[name] == pytest.approx(direct[name], abs=1e-5)
    stored = json.loads((fresh / "cache" / "center" / "s0.json").read_text())
    assert list(json.loads((out / "cache" / "center" / "s0.json").read_text())) == list(stored)


def _run_all(ds, out):
    cfg = config(methods=["gradient", "center"], references=False)
    evaluate_folder(ds, tiny_model(), out, cfg, examples=0)
    return json.loads((out / "details.json").read_text())


class Peak(Protocol):
    """A user's protocol: the mask's maximum, averaged (no model: zero forward passes)."""

    name = "peak"
    passes = "0"
    record_keys = ("peak",)
    head = ("peak ↑",)
    summary_keys = ("peak",)

    def image_scores(self, rows):
        return [{"peak": float(m.max())} for m in rows.masks]

    def summarise(self, split):
        return {"peak": float(np.mean([r["peak"] for r in split.report_records()]))}

    def columns(self, summary):
        return {"peak": summary["peak"]}

    def cells(self, summary):
        return [f"{summary['peak']:.2f}"]


def test_a_protocol_of_ones_own_runs_beside_the_built_in_ones(folder, tmp_path):
    out = tmp_path / "out"
    cfg = EvalConfig(methods=["center"], batch_size=4, progress=False, references=False,
                     protocols=["saliency", Peak()])
    text = evaluate_folder(load_folder(folder), tiny_model(), out, cfg, examples=0)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["center"]["peak"] == 1.0  # the centre box is a binary mask
    assert "| peak ↑ |" in text and "saliency 1 (ground-truth row: 1 per box), peak 0." in text
    mask = np.load(out / "cache" / "center" / "s1.npy")
    assert json.loads((out / "cache" / "center" / "s1.json").read_text())["peak"] == float(mask.max())


def _cli(tmp_path, *extra):
    data = make_folder(tmp_path / "d", n=3) if not (tmp_path / "d").exists() else tmp_path / "d"
    return main(["evaluate", "--data", str(data), "--methods", "gradient", "--out", str(tmp_path / "out"),
                 "--quiet", "--examples", "0", *extra])


def test_cli_unknown_protocol_is_one_line_naming_the_known_ones(tmp_path, capsys):
    assert _cli(tmp_path, "--protocols", "saliency,nope") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "unknown protocol 'nope'" in err and "localisation" in err
    assert not (tmp_path / "out").exists()


def test_cli_protocols_and_no_reference(tmp_path, capsys, monkeypatch):
    from maskscope.cli import evaluate as cli_evaluate

    monkeypatch.setattr(cli_evaluate, "load_model", lambda args: tiny_model())
    assert _cli(tmp_path, "--protocols", "pointing, area", "--no-reference") == 0
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert list(metrics) == ["gradient"]  # no centre, full or ground-truth rows
    assert set(metrics["gradient"]) == {"mask_area", "n_report", "n_tune", "pointing"}


def test_a_protocol_whose_data_the_folder_lacks_is_left_out(folder, tmp_path):
    """Localisation needs boxes: on a plain folder of images it is left out, saliency still runs."""
    import shutil

    plain = tmp_path / "plain"
    shutil.copytree(folder / "images", plain)
    cfg = config(methods=["center"], protocols=["localisation", "saliency"])
    text = evaluate_folder(load_folder(plain), tiny_model(), tmp_path / "out", cfg, examples=0)
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert list(metrics) == ["center", "full"]  # no ground-truth row without boxes
    assert set(metrics["center"]) == {"saliency_metric", "n_report", "n_tune"}
    assert "by protocol: saliency 1 (ground-truth row: 1 per box)." in text
