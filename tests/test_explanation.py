"""The Explanation record (its repr, rows, names and JSON records) and its files, written by
``maskscope.outputs``; ``e.save`` and ``e.plot`` are shortcuts that give the same result."""

from __future__ import annotations

import json

import matplotlib
import numpy as np
import pytest
import torch

from maskscope import outputs
from maskscope.errors import ConfigError, OutputError
from maskscope.explanation import Explanation
from maskscope.masks import combine_areas
from maskscope.metrics.drop import drop_from_explanation


def record(n: int = 3, size: int = 12, **extra) -> Explanation:
    """n images; image i's mask is the left i/n of the image (so its area is i/n exactly)."""
    masks = torch.zeros(n, 1, size, size)
    for i in range(n):
        masks[i, :, :, : size * i // n] = 1.0
    return Explanation(
        masks=masks, images=torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(0)),
        targets=torch.arange(n).view(n, 1), class_names=[f"class {i}" for i in range(n)],
        method="toy", p_original=torch.full((n,), 0.9), p_deleted=torch.linspace(0.1, 0.3, n),
        history=torch.arange(5 * n, dtype=torch.float32).view(5, n), params={"game": "delete"}, **extra)


def test_repr_is_one_line_with_method_batch_targets_and_mean_area():
    e = record(3)
    assert repr(e) == ("Explanation(method='toy', batch=3, targets=['class 0', 'class 1', 'class 2'], "
                       "mean_area=0.333)")
    # a big batch still gives one short line: no tensor is printed, the names are cut after four
    big = Explanation(masks=torch.full((500, 1, 64, 64), 0.25), images=torch.zeros(500, 3, 64, 64),
                      targets=torch.zeros(500, 1, dtype=torch.long), class_names=["tench"] * 500, method="m")
    line = repr(big)
    assert "\n" not in line and "tensor" not in line and len(line) < 150
    assert "batch=500" in line and "... 496 more" in line and "mean_area=0.250" in line


def test_repr_counts_images_when_rows_are_areas():
    e = record(4, image_index=torch.tensor([0, 0, 1, 1]), requested_area=torch.tensor([0.1, 0.2, 0.1, 0.2]))
    assert "batch=4, images=2," in repr(e)


def test_rows_keep_every_per_image_field_together():
    e = record(4, sources=["a.png", "b.png", "c.png", "d.png"], iterations_used=torch.tensor([5, 6, 7, 8]))
    part = e[[3, 1]]
    assert len(part) == 2 and part.class_names == ["class 3", "class 1"]
    assert torch.equal(part.masks, e.masks[[3, 1]]) and torch.equal(part.targets, e.targets[[3, 1]])
    assert torch.equal(part.p_deleted, e.p_deleted[[3, 1]])
    assert torch.equal(part.history, e.history[:, [3, 1]])  # (iterations, B): columns are images
    assert part.sources == ["d.png", "b.png"] and part.iterations_used.tolist() == [8, 6]
    assert e[1:3].class_names == ["class 1", "class 2"]
    assert torch.allclose(e.area, torch.tensor([0.0, 0.25, 0.5, 0.75]))


def test_names_and_records():
    e = record(2, sources=["/x/cat.jpg", None], image_index=torch.tensor([0, 1]),
               requested_area=torch.tensor([0.05, 0.1]))
    assert e.image_name(0) == "cat" and e.image_name(1) == "image_0001"
    assert e.name(0) == "cat_area0.05"
    rec = json.loads(json.dumps(e.record(1)))
    assert rec["class_name"] == "class 1" and rec["target"] == 1 and rec["requested_area"] == 0.1
    assert rec["area"] == 0.5 and rec["p_deleted"] == pytest.approx(0.3)


def test_save_never_replaces_an_earlier_save_unless_asked(tmp_path):
    first, second = record(2), record(2)
    second.masks = 1.0 - second.masks
    first.save(tmp_path, figures=False)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    with pytest.raises(OutputError, match=r"already holds image_0000.json and 1 more from an earlier save"):
        second.save(tmp_path, figures=False)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before  # nothing written
    second.save(tmp_path, figures=False, overwrite=True)
    assert np.array_equal(np.load(tmp_path / "image_0000.npy"), second.to_numpy()[0])
    record(1, sources=["/x/cat.jpg"]).save(tmp_path, figures=False)  # another name: no conflict


def test_mask_at_the_source_files_size():
    e = record(2, source_sizes=[(32, 48), None])
    assert tuple(e.mask(0).shape) == (32, 48) and tuple(e.mask(1).shape) == (12, 12)
    assert tuple(e.mask(0, native=False).shape) == (12, 12)
    assert e.to_numpy().shape == (2, 12, 12)


def test_outputs_write_the_files_and_the_shortcut_writes_the_same(tmp_path):
    e = record(2)
    records = outputs.save_explanation(e, tmp_path / "direct")
    assert records == e.save(tmp_path / "shortcut")
    names = sorted(p.name for p in (tmp_path / "direct").iterdir())
    assert names == sorted(f"image_000{i}{s}" for i in range(2)
                           for s in (".npy", ".json", "_mask.png", "_overlay.png", "_figure.png"))
    assert np.array_equal(np.load(tmp_path / "direct" / "image_0001.npy"), e.to_numpy()[1])
    assert json.loads((tmp_path / "direct" / "image_0001.json").read_text()) == records[1]
    assert records[1]["files"]["figure"] == "image_0001_figure.png" and records[1]["mask_dtype"] == "float32"


def test_large_masks_are_stored_as_float16(tmp_path, monkeypatch):
    monkeypatch.setattr(outputs, "HALF_MASK_PIXELS", 100)  # 12×12 = 144 pixels is "large" now
    rec = outputs.save_explanation(record(2), tmp_path, figures=False)[1]
    assert rec["mask_dtype"] == "float16" and "figure" not in rec["files"]
    assert np.load(tmp_path / "image_0001.npy").dtype == np.float16


def test_an_output_folder_that_is_a_file_is_an_output_error(tmp_path):
    (tmp_path / "taken").write_text("")
    with pytest.raises(OutputError, match="cannot create output folder"):
        outputs.save_explanation(record(1), tmp_path / "taken" / "out")


def test_output_names_are_unique_and_the_shortcut_agrees(tmp_path):
    paths = [str(tmp_path / "a" / "x.jpg"), str(tmp_path / "b" / "x.png"), str(tmp_path / "y.png")]
    names = outputs.output_names(paths)
    assert names[paths[2]] == "y" and len(set(names.values())) == 3
    assert names[paths[0]].startswith("x-") and names[paths[1]].startswith("x-")
    assert Explanation.output_names(paths) == names


def test_plot_returns_a_figure_and_refuses_a_missing_image():
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    e = record(2)
    figure = e.plot(1)
    assert len(figure.axes) == 4  # image, perturbed image, mask, colour bar
    plt.close(figure)
    with pytest.raises(ConfigError, match="no image 2"):
        outputs.plot_explanation(e, 2)


def test_combine_areas_is_a_tensor_operation_and_reads_a_record_alike():
    masks = torch.zeros(4, 1, 64, 64)
    masks[0] = 1.0  # image 0: one area mask everywhere, one nowhere → half everywhere
    masks[2:] = 1.0  # image 1: both everywhere → one
    index = torch.tensor([0, 0, 1, 1])
    combined = combine_areas(masks, image_index=index)
    assert combined.shape == (2, 1, 64, 64)
    inner = (slice(None), slice(8, -8), slice(8, -8))  # beyond the smoothing's reach of the border
    assert torch.allclose(combined[0][inner], torch.full((1, 48, 48), 0.5))
    assert torch.allclose(combined[1][inner], torch.ones(1, 48, 48))
    assert float(combined[1, 0, 0, 0]) < 0.5  # outside the image counts as mask 0
    e = record(4, image_index=index)
    e.masks = masks
    assert torch.equal(combine_areas(e), combined)
    assert torch.equal(combine_areas(masks), masks)  # no index: every row is its own image


def test_combined_mask_gives_a_blob_in_the_corner_no_bonus():
    """Two area masks of one image, each a 4 × 4 block of ones (about the smoothing's width): one
    in the corner, one inside. The combination scores them alike, as if the world outside held
    mask 0; edge replication would stretch the corner block beyond the image and let it win the
    pointing game (what deletion masks that park a blob in a corner exploited)."""
    masks = torch.zeros(2, 1, 64, 64)
    masks[0, 0, :4, :4] = 1.0
    masks[1, 0, 30:34, 30:34] = 1.0
    combined = combine_areas(masks, image_index=torch.tensor([0, 0]))
    assert torch.allclose(combined[0, 0, :4, :4], combined[0, 0, 30:34, 30:34])
    assert float(combined[0, 0, :4, :4].max()) < 0.45  # two masks, one block each: at most 1/2


def test_the_drop_reads_any_record_with_stored_scores():
    e = record(2)
    assert torch.allclose(drop_from_explanation(e), 100 * (0.9 - e.p_deleted) / 0.9)
    with pytest.raises(ValueError, match="no p_original"):
        drop_from_explanation(Explanation(masks=e.masks, images=e.images, targets=e.targets,
                                          class_names=e.class_names, method="bare"))
