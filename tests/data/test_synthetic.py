"""The synthetic benchmark: generator ground truth, shipped classifiers, export to an annotated folder."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
from PIL import Image

from maskscope.blackbox import BlackBox
from maskscope.data.synthetic import (
    BACKGROUNDS,
    POLAR_BEAR,
    POLAR_BEAR_LOOKALIKE,
    SmallCNN,
    accuracy,
    background_reliance,
    load_synthetic_classifier,
    make_scenes,
    predict,
    train_classifier,
    write_annotated_folder,
)
from maskscope.errors import CheckpointError, ConfigError

SNOW = BACKGROUNDS.index("snow")


@pytest.fixture(scope="module")
def clean():
    return make_scenes(64, "clean", "test", seed=3)


@pytest.fixture(scope="module")
def parts():
    return make_scenes(48, "parts", "train", seed=3)


def test_same_seed_same_scenes_and_independent_of_batch_size():
    a = make_scenes(12, "clean", "train", seed=11)
    b = make_scenes(5, "clean", "train", seed=11)
    assert torch.equal(a.images[:5], b.images)
    assert torch.equal(a.labels[:5], b.labels) and torch.equal(a.boxes[:5], b.boxes)
    other_seed = make_scenes(5, "clean", "train", seed=12)
    other_split = make_scenes(5, "clean", "test", seed=11)
    assert not torch.equal(other_seed.images, b.images)
    assert not torch.equal(other_split.images, b.images)


def test_shapes_dtypes_and_ranges(clean, parts):
    n = len(clean)
    assert clean.images.shape == (n, 3, 64, 64) and clean.images.dtype == torch.float32
    assert 0.0 <= float(clean.images.min()) and float(clean.images.max()) <= 1.0
    assert clean.labels.shape == (n,) and clean.labels.dtype == torch.long
    assert clean.boxes.shape == (n, 4) and clean.boxes.dtype == torch.long
    assert clean.object_masks.shape == (n, 1, 64, 64) and clean.object_masks.dtype == torch.bool
    assert clean.backgrounds.shape == (n,) and int(clean.backgrounds.max()) < len(BACKGROUNDS)
    assert clean.part_masks is None and len(clean.class_names) == 5
    assert set(clean.labels.tolist()) == set(range(5))
    assert parts.part_masks.shape == (len(parts), 2, 64, 64) and parts.part_boxes.shape == (len(parts), 2, 4)
    assert parts.part_names == ["head", "body"] and len(parts.class_names) == 4
    half = parts.subset(slice(0, 10))
    assert len(half) == 10 and torch.equal(half.part_boxes, parts.part_boxes[:10])
    small = make_scenes(3, "clean", size=48)
    assert small.images.shape == (3, 3, 48, 48)


def test_box_is_the_tightest_box_around_a_reasonably_sized_object(clean):
    for mask, box in zip(clean.object_masks[:, 0], clean.boxes):
        ys, xs = torch.nonzero(mask, as_tuple=True)
        assert box.tolist() == [int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())]
    extent = torch.maximum(clean.boxes[:, 2] - clean.boxes[:, 0], clean.boxes[:, 3] - clean.boxes[:, 1]) + 1
    assert int(extent.min()) >= 14 and int(extent.max()) <= 50


def test_distractors_exist_and_stay_outside_the_object_box(clean):
    has_distractor = clean.distractor_masks.flatten(1).any(1)
    assert float(has_distractor.float().mean()) > 0.95
    for mask, box in zip(clean.distractor_masks[:, 0], clean.boxes):
        x0, y0, x1, y1 = box.tolist()
        assert not mask[y0 : y1 + 1, x0 : x1 + 1].any()


def test_spurious_train_split_ties_the_polar_bear_to_snow():
    s = make_scenes(300, "spurious", "train", seed=0)
    bears = s.labels == POLAR_BEAR
    assert bears.sum() > 20 and len(s.class_names) == 6
    assert bool((s.backgrounds[bears] == SNOW).all())
    assert not bool((s.backgrounds[~bears] == SNOW).any())
    # forcing the background replays the same scenes with only the background changed
    forced = make_scenes(20, "spurious", "test", seed=0, label=POLAR_BEAR, background="grass")
    kept = make_scenes(20, "spurious", "test", seed=0, label=POLAR_BEAR)
    assert torch.equal(forced.object_masks, kept.object_masks)
    obj = forced.object_masks.expand(-1, 3, -1, -1)
    assert torch.allclose(forced.images[obj], kept.images[obj], atol=0.1)  # same object, own pixel noise
    assert not torch.allclose(forced.images[~obj], kept.images[~obj], atol=0.1)


def test_part_masks_are_disjoint_and_make_up_the_object(parts):
    head, body = parts.part_masks[:, 0], parts.part_masks[:, 1]
    assert not bool((head & body).any())
    assert torch.equal(head | body, parts.object_masks[:, 0])
    assert bool(head.flatten(1).any(1).all()) and bool(body.flatten(1).any(1).all())
    # the head sits above the body
    assert bool((parts.part_boxes[:, 0, 3] < parts.part_boxes[:, 1, 1]).all())


def test_invalid_arguments_raise_config_errors():
    with pytest.raises(ConfigError):
        make_scenes(2, "cartoon")
    with pytest.raises(ConfigError):
        make_scenes(2, split="val")
    with pytest.raises(ConfigError):
        make_scenes(2, background="lava")
    with pytest.raises(ConfigError):
        make_scenes(2, "parts", label=4)
    with pytest.raises(ConfigError):
        load_synthetic_classifier("cartoon")


def test_shipped_clean_classifier_is_accurate_on_fresh_scenes():
    model = load_synthetic_classifier("clean")
    assert isinstance(model, BlackBox) and model.input_size is None
    assert model.class_names[0] == "striped disc" and model.num_classes == 5
    fresh = make_scenes(200, "clean", "test", seed=2024)
    assert accuracy(model, fresh) >= 0.95


def test_shipped_parts_classifier_needs_both_parts():
    model = load_synthetic_classifier("parts")
    scenes = make_scenes(120, "parts", "test", seed=2024)
    assert accuracy(model, scenes) >= 0.95
    # blanking the body (grey) leaves only the head: at most the two classes sharing it remain
    blank = scenes.images.clone()
    blank[scenes.part_masks[:, 1:2].expand(-1, 3, -1, -1)] = 0.5
    assert accuracy(model, dataclasses.replace(scenes, images=blank)) < 0.8


def test_shipped_spurious_classifier_reads_the_snow_not_the_bear():
    model = load_synthetic_classifier("spurious")
    assert model.class_names[POLAR_BEAR] == "polar bear"
    assert accuracy(model, make_scenes(150, "spurious", "test", seed=2024)) >= 0.95
    reliance = background_reliance(model, n=40, seed=5)
    assert reliance.kept >= 0.95 and reliance.swapped <= 0.1
    assert max(reliance.swapped_as, key=reliance.swapped_as.get) == "striped disc"
    # and the look-alike becomes a polar bear once it stands on snow
    on_snow = make_scenes(40, "spurious", "test", seed=5, label=POLAR_BEAR_LOOKALIKE, background="snow")
    assert float((predict(model, on_snow.images) == POLAR_BEAR).float().mean()) >= 0.9


def test_training_learns_and_is_seeded():
    """A short run on few scenes generalises well above chance; the same seed gives the same weights."""
    train = make_scenes(600, "clean", "train", seed=1)
    settings = dict(epochs=3, seed=0, batch_size=32, widths=(16, 24, 32, 48))
    a, b = train_classifier(train, **settings), train_classifier(train, **settings)
    assert isinstance(a, SmallCNN) and not a.training
    for (_, pa), (_, pb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(pa, pb)
    assert accuracy(a, make_scenes(200, "clean", "test", seed=1)) > 0.5  # chance is 0.2


def test_corrupt_checkpoint_is_a_checkpoint_error(monkeypatch, tmp_path):
    import maskscope.data.synthetic_models as models

    (tmp_path / "resources").mkdir()
    (tmp_path / "resources" / "synthetic_clean.pt").write_bytes(b"not a checkpoint")
    monkeypatch.setattr(models.resources, "files", lambda _: tmp_path)
    with pytest.raises(CheckpointError):
        models.load_synthetic_classifier("clean")
    monkeypatch.setattr(models.resources, "files", lambda _: tmp_path / "missing")
    with pytest.raises(CheckpointError):
        models.load_synthetic_classifier("clean")


def test_annotated_folder_round_trip(tmp_path):
    scenes = make_scenes(6, "clean", "test", seed=4)
    root = write_annotated_folder(scenes, tmp_path / "clean")
    annotations = json.loads((root / "annotations.json").read_text())
    index = json.loads((root / "class_index.json").read_text())
    assert index["1"] == ["syn1", "checkered square"]
    assert len(annotations) == 6
    for i, (name, entry) in enumerate(sorted(annotations.items())):
        assert {"class_index", "wnid", "name", "boxes", "width", "height"} <= set(entry)
        assert entry["class_index"] == int(scenes.labels[i]) and entry["wnid"] == f"syn{entry['class_index']}"
        assert entry["boxes"] == [scenes.boxes[i].tolist()] and (entry["width"], entry["height"]) == (64, 64)
        pixels = np.asarray(Image.open(root / "images" / name).convert("RGB"), np.float32) / 255.0
        assert np.abs(pixels - scenes.images[i].permute(1, 2, 0).numpy()).max() <= 0.5 / 255 + 1e-6
        mask = np.asarray(Image.open(root / "masks" / name)) > 127
        assert np.array_equal(mask, scenes.object_masks[i, 0].numpy())

    parts_root = write_annotated_folder(make_scenes(2, "parts"), tmp_path / "parts")
    entry = json.loads((parts_root / "annotations.json").read_text())["syn_parts_train_00000.png"]
    assert set(entry["part_boxes"]) == {"head", "body"}
    assert (parts_root / "parts" / "syn_parts_train_00000_head.png").is_file()


def test_annotated_folder_reads_back_through_the_folder_loader(tmp_path):
    folders = pytest.importorskip("maskscope.data.folders")
    scenes = make_scenes(4, "spurious", "test", seed=4)
    dataset = folders.load_folder(write_annotated_folder(scenes, tmp_path))
    assert dataset.annotated and dataset.has_boxes and dataset.has_object_masks
    assert [item.label for item in dataset.items] == scenes.labels.tolist()
    assert dataset.class_names[POLAR_BEAR] == "polar bear"


def test_meaningful_masks_on_small_scenes_are_strong_and_on_the_object():
    """The blur σ0 is a 224-px quantity: unscaled on 64-px scenes, a mask value of 0.3 already
    blurred a texture away, so deletion masks stayed faint and spread (peak ≈ 0.3, boxes too
    large). Scaled, the masks reach well past 0.5 and most of their mass is on the object."""
    from maskscope.methods.meaningful import meaningful_perturbation

    scenes = make_scenes(8, "clean", "test", seed=0)
    expl = meaningful_perturbation(
        load_synthetic_classifier("clean"), scenes.images, target=scenes.labels, preset="fong2017-loc"
    )
    peaks = expl.masks.amax(dim=(1, 2, 3))
    on_object = (expl.masks * scenes.object_masks).flatten(1).sum(1) / expl.masks.flatten(1).sum(1)
    assert float(peaks.median()) >= 0.5, peaks
    assert float(on_object.mean()) >= 0.5, on_object
    assert bool((expl.p_deleted < 0.5 * expl.p_original).all())
