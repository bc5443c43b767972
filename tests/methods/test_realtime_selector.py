"""The masker's class selector from the classifier's last layer, the richer training recipe (colour
jitter, cosine schedule, best checkpoint) and training data in the ImageFolder layout."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from fixtures import QuadrantNet
from PIL import Image
from test_realtime import tiny_blackbox  # tests/ is on sys.path under pytest
from test_realtime_train import _env, config, make_data

from maskscope.blackbox import BlackBox
from maskscope.cli.main import main
from maskscope.errors import ConfigError, DataError
from maskscope.methods.realtime import load_masker, masker_config, train_masker
from maskscope.methods.realtime.data import augment, class_vocabulary, read_folder, read_training_data
from maskscope.methods.realtime.model import FeatureFilter, classifier_head
from maskscope.methods.realtime.train import TrainConfig, best_path, learning_rate
from maskscope.zoo import imagenet_class_names

pytestmark = pytest.mark.usefixtures("one_thread")


def quadrant_features(net: QuadrantNet, x: torch.Tensor) -> torch.Tensor:
    """The map the classifier's linear layer reads after global pooling (4 channels)."""
    h, w = x.shape[-2:]
    keep = torch.zeros(1, 1, h, w)
    keep[..., : h // 2, : w // 2] = 1.0
    return net.act2(net.conv2(net.act1(net.conv1(x)) * keep))


@pytest.mark.parametrize("selector", ["classifier-tied", "classifier-init"])
def test_selector_from_classifier_weights_finds_the_class_region_before_training(selector: str):
    net = QuadrantNet().eval()
    weights = classifier_head(net, 4, 3)
    assert weights is not None and torch.equal(weights, net.fc.weight)
    x = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        features = quadrant_features(net, x)
        logits = FeatureFilter(4, 3, selector, weights).attention_logits(features, torch.zeros(4).long())
    gate = torch.sigmoid(logits)
    inside, outside = gate[..., :16, :16], gate[..., 16:, :]
    assert inside.mean() > 0.5 > 0.1 > outside.mean()  # class 0's evidence is the top-left quadrant
    assert (inside.flatten(1).min(1).values > outside.flatten(1).max(1).values).all()


def test_classifier_head_none_when_the_last_layer_does_not_read_the_map():
    assert classifier_head(QuadrantNet(), 8, 3) is None  # 4 channels, not 8
    assert classifier_head(torch.nn.Conv2d(3, 3, 1), 3, 3) is None
    with pytest.raises(ConfigError, match="last linear layer"):
        FeatureFilter(4, 3, "classifier-tied", None)
    with pytest.raises(ConfigError, match="unknown class selector"):
        FeatureFilter(4, 3, "magic")


def test_small_encoder_keeps_a_learned_selector_and_refuses_a_tied_one():
    bb = tiny_blackbox()
    assert masker_config(bb, "small")["selector"] == "learned"
    with pytest.raises(ConfigError, match="--selector learned"):
        masker_config(bb, "small", selector="classifier-tied")


def test_colour_jitter_is_seeded_bounded_and_off_by_default():
    pixels = torch.randint(0, 256, (3, 3, 40, 40), dtype=torch.uint8)
    plain = augment(pixels, 32, torch.Generator().manual_seed(0))
    again = augment(pixels, 32, torch.Generator().manual_seed(0))
    jittered = augment(pixels, 32, torch.Generator().manual_seed(0), colour_jitter=0.3)
    assert torch.equal(plain, again)
    assert not torch.allclose(plain, jittered) and 0 <= jittered.min() and jittered.max() <= 1
    assert torch.equal(jittered, augment(pixels, 32, torch.Generator().manual_seed(0), colour_jitter=0.3))


def test_cosine_schedule_warms_up_then_decays_to_one_percent():
    cfg = TrainConfig(lr=1e-3, schedule="cosine", warmup_steps=4)
    rates = [learning_rate(cfg, s, 20) for s in range(20)]
    assert rates[0] == pytest.approx(2.5e-4) and rates[3] == pytest.approx(1e-3)
    assert all(a >= b for a, b in zip(rates[3:], rates[4:]))
    assert learning_rate(cfg, 20, 20) == pytest.approx(1e-5)
    assert learning_rate(TrainConfig(lr=2e-3), 7, 20) == 2e-3


def test_augmented_jittered_cosine_run_resumes_exactly_and_keeps_the_best(tmp_path: Path):
    bb = tiny_blackbox()
    samples = read_folder(make_data(tmp_path / "d"))
    recipe = dict(colour_jitter=0.2, schedule="cosine", warmup_steps=2, val_every=3)
    full = train_masker(bb, samples, tmp_path / "full.pt", config(**recipe), val_samples=samples[:8],
                        progress=False)
    train_masker(bb, samples, tmp_path / "part.pt", config(max_steps=5, **recipe), val_samples=samples[:8],
                 progress=False)
    resumed = train_masker(bb, samples, tmp_path / "part.pt", config(**recipe), val_samples=samples[:8],
                           resume=tmp_path / "part.pt", progress=False)
    assert resumed["rank_digests"] == full["rank_digests"]
    log = json.loads((tmp_path / "full.pt.log.json").read_text())
    scored = [r for r in log if "val_score" in r]
    assert len(scored) == 3 and scored[0]["best"]
    best = min(scored, key=lambda r: r["val_score"])
    assert best["best"] and full["best"]["step"] == max(r["step"] for r in scored if r["best"])
    assert load_masker(bb, best_path(tmp_path / "full.pt")) is not None


def test_image_folder_layout_labels_from_subfolder_names(tmp_path: Path):
    bb = tiny_blackbox()  # classes c0..c4
    rng = np.random.default_rng(0)
    for folder, n in (("c1", 2), ("3", 3)):
        (tmp_path / "train" / folder).mkdir(parents=True)
        for i in range(n):
            Image.fromarray((rng.random((20, 24, 3)) * 255).astype("uint8")).save(
                tmp_path / "train" / folder / f"x{i}.JPEG")
    samples = read_training_data(tmp_path / "train", bb)
    assert sorted((Path(s.path).parent.name, s.label) for s in samples) == [("3", 3)] * 3 + [("c1", 1)] * 2


def test_imagenet_wordnet_ids_name_classes():
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 1000))
    bb = BlackBox(net, input_size=(8, 8), class_names=imagenet_class_names())
    vocabulary = class_vocabulary(bb)
    assert vocabulary["n01440764"] == 0 and vocabulary["n15075141"] == 999 and vocabulary["goldfish"] == 1


def test_subfolders_that_are_not_classes_give_one_line_exit_2(tmp_path: Path, monkeypatch, capsys):
    monkeypatch.syspath_prepend(str(tmp_path))
    _env(tmp_path)
    for folder in ("cats", "dogs"):
        (tmp_path / "train" / folder).mkdir(parents=True)
        Image.fromarray(np.zeros((20, 20, 3), dtype="uint8")).save(tmp_path / "train" / folder / "a.png")
    code = main(["train", "--data", str(tmp_path / "train"), "--classifier", "tinymods:tiny",
                 "--out", str(tmp_path / "m.pt"), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "'cats'" in err and "not a class" in err, err
    assert not (tmp_path / "m.pt").exists()
    with pytest.raises(DataError):
        read_training_data(tmp_path / "train", tiny_blackbox())


def test_output_gate_empties_the_mask_of_an_absent_class_before_training():
    """GroupNorm undoes a uniform attenuation of the deepest map, so without the output gate a class
    whose evidence is nowhere gets the same mask as the present one; with it, a far smaller one."""
    from maskscope.methods.realtime.model import MaskDecoder

    net = QuadrantNet().eval()
    present = net.fc.weight[0]
    weights = torch.stack([present, -present, present])  # class 1: the opposite evidence, absent here
    x = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        deep = quadrant_features(net, x)
        skip = torch.rand(4, 6, 64, 64, generator=torch.Generator().manual_seed(1))
        areas = {}
        for gated in (False, True):
            torch.manual_seed(0)
            decoder = MaskDecoder([6, 4], 3, [8], 1, "classifier-tied", weights, output_gate=gated).eval()
            areas[gated] = [float(decoder([skip, deep], torch.full((4,), c))[0].mean()) for c in (0, 1)]
    assert areas[False][0] == pytest.approx(areas[False][1], rel=0.2)  # the selector barely matters
    assert areas[True][0] > 5 * areas[True][1]


def test_cli_train_takes_the_recipe_flags_and_refuses_bad_ones(tmp_path: Path, monkeypatch, capsys):
    monkeypatch.syspath_prepend(str(tmp_path))
    _env(tmp_path)
    data = make_data(tmp_path / "d")
    base = ["train", "--data", str(data), "--classifier", "tinymods:tiny", "--epochs", "1",
            "--batch-size", "4", "--quiet"]
    assert main([*base, "--out", str(tmp_path / "m.pt"), "--schedule", "cosine", "--warmup-steps", "1",
                 "--colour-jitter", "0.1", "--time-limit", "600"]) == 0
    assert load_masker(tiny_blackbox(), tmp_path / "m.pt").config["selector"] == "learned"  # small encoder
    capsys.readouterr()
    for bad in (["--time-limit", "-1"], ["--colour-jitter", "1.5"], ["--selector", "magic"]):
        code = main([*base, "--out", str(tmp_path / "n.pt"), *bad])
        err = capsys.readouterr().err.strip()
        assert code == 2 and len(err.splitlines()) == 1, (bad, err)
    assert not (tmp_path / "n.pt").exists()
