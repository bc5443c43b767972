"""Issue 12, items 15-16: the Python API raises typed ``MaskscopeError``s (not TypeError, IndexError,
ZeroDivisionError or AttributeError) for bad input, warns on suspicious pixels, and leaves the global
torch RNG alone."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from fixtures import QuadrantClassifier, quadrant_images
from PIL import Image

from maskscope import ConfigError, TargetError, explain_files, get_method, realtime_saliency
from maskscope.blackbox import BlackBox
from maskscope.methods.optimise import Settings

pytestmark = pytest.mark.usefixtures("one_thread")
METHODS = ["meaningful", "crisp", "extremal", "gradient", "gradcam", "occlusion", "rise", "center"]
FAST = {"meaningful": {"iterations": 1}, "crisp": {"iterations": 1, "crisp_iterations": 1},
        "extremal": {"iterations": 1, "areas": [0.1]}, "rise": {"n_masks": 4}}


def run(name: str, model, images, **options):
    return get_method(name)(model, images, **{**FAST.get(name, {}), **options})


@pytest.fixture(scope="module")
def model() -> BlackBox:
    return BlackBox(QuadrantClassifier().eval(), input_size=None, mean=(0.0,) * 3, std=(1.0,) * 3,
                    class_names=["checker", "rest"])


# -- targets ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["meaningful", "gradient", "center"])
def test_numpy_integer_targets_are_ints(model, name):
    """Fault: API: target=np.int64(3) — accepted as the class index 3."""
    images = quadrant_images(2)
    for target in (np.int64(1), np.array([1, 1]), [np.int32(1), 1], torch.tensor(1)):
        assert run(name, model, images, target=target).targets[:, 0].tolist() == [1, 1]


@pytest.mark.parametrize("target", [2.5, 1.0, np.float64(1.0), [0, 0.5], torch.tensor([0.0, 1.0]),
                                    np.array([0.5, 1.5]), True])
@pytest.mark.parametrize("name", ["meaningful", "gradient"])
def test_float_or_bool_targets_are_target_errors(model, name, target):
    """Fault: API: a float or bool target (2.5, 1.0, [0, 0.5], a float tensor, True) — TargetError."""
    with pytest.raises(TargetError):
        run(name, model, quadrant_images(2), target=target)


# -- images -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", METHODS)
def test_an_empty_batch_is_a_config_error(model, name):
    """Fault: API: an empty batch, for every method — ConfigError."""
    with pytest.raises(ConfigError, match="empty batch"):
        run(name, model, torch.zeros(0, 3, 64, 64))


@pytest.mark.parametrize("name", ["meaningful", "gradient", "center"])
def test_numpy_images_channel_last_or_first_and_uint8_give_the_tensor_result(model, name):
    """Fault: API: numpy images, (H, W, 3) or (3, H, W), uint8 or float — the same masks as the tensor."""
    images = quadrant_images(1)
    expected = run(name, model, images).masks
    hwc = images[0].permute(1, 2, 0).numpy()
    for array in (hwc, hwc[None], images.numpy(), images[0].numpy()):
        got = run(name, model, array)
        assert isinstance(got.images, torch.Tensor) and torch.allclose(got.masks, expected, atol=1e-5)
    as_uint8 = (hwc * 255).round().astype(np.uint8)
    assert run(name, model, as_uint8).masks.shape == expected.shape


@pytest.mark.parametrize("bad", [[[0.5]], np.zeros((4, 4), np.float32), np.zeros((1, 5, 8, 8), np.float32),
                                 np.zeros((2, 8, 8, 3), np.complex64),
                                 torch.zeros(2, 3, 8, 8, dtype=torch.long)])
def test_other_image_inputs_are_config_errors(model, bad):
    """Fault: API: images of another shape or type (nested lists, 2-D, 5 channels) — ConfigError."""
    with pytest.raises(ConfigError, match="images"):
        run("gradient", model, bad)


@pytest.mark.parametrize("values, message",
                         [(float("nan"), "NaN"), (255.0, "divide by 255"), (-0.5, "[0, 1]")])
def test_nan_or_out_of_range_pixels_warn(model, values, message):
    """Fault: API: NaN, infinite or 0–255 pixels — a warning that says what is wrong."""
    images = quadrant_images(1)
    images[0, :, :4, :4] = values
    with pytest.warns(UserWarning, match=message.replace("[", r"\[").replace("]", r"\]")):
        run("center", model, images)


def test_valid_images_do_not_warn(model):
    """Fault: API: valid images — no warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        run("center", model, quadrant_images(1))


# -- settings -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name, option, value, message", [
    ("meaningful", "mask_scale", 0, "mask_scale"), ("meaningful", "score", "foo", "score"),
    ("meaningful", "lr", float("nan"), "lr"), ("meaningful", "iterations", 2.5, "iterations"),
    ("meaningful", "jitter", -1, "jitter"), ("meaningful", "l1", float("inf"), "l1"),
    ("crisp", "iterations", 2.5, "iterations"), ("crisp", "crisp_iterations", 1.5, "crisp_iterations"),
    ("crisp", "settings", Settings(mask_scale=0), "mask_scale"),
    ("extremal", "lr", float("nan"), "lr"), ("extremal", "iterations", 2.5, "iterations"),
    ("gradient", "score", "foo", "score"), ("occlusion", "score", "foo", "score"),
])
def test_bad_settings_are_config_errors(model, name, option, value, message):
    """Fault: API: bad settings (mask_scale=0, score='foo', lr=nan, iterations=2.5, ...) — ConfigError naming
    the setting."""
    with pytest.raises(ConfigError, match=message):
        run(name, model, quadrant_images(1), **{option: value})


def test_numpy_integer_settings_are_accepted(model):
    """Fault: API: numpy integer settings — accepted."""
    result = run("meaningful", model, quadrant_images(1), iterations=np.int64(1), mask_scale=np.int64(8))
    assert result.masks.shape == (1, 1, 64, 64)


# -- Grad-CAM layers ----------------------------------------------------------------------------------
class Small(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(0)
        self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)
        self.pool = torch.nn.AdaptiveAvgPool2d(2)
        self.fc = torch.nn.Linear(16, 3)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=gen) * 0.3)

    def forward(self, x):
        return self.fc(self.pool(torch.relu(self.conv(x))).flatten(1))


def test_gradcam_layer_that_is_not_spatial_or_not_in_the_model(model):
    """Fault: API: a Grad-CAM layer that is not spatial (Linear) or not in the model — ConfigError."""
    net = Small().eval()
    images = quadrant_images(2)
    with pytest.raises(ConfigError, match=r"fc does not output \(B, C, H, W\)"):
        run("gradcam", net, images, layer=net.fc)
    with pytest.raises(ConfigError, match="not part of the model"):
        run("gradcam", net, images, layer=torch.nn.Conv2d(3, 4, 3))
    relu_free = run("gradcam", net, images, layer=net.pool)  # a layer without weights: fine
    assert relu_free.masks.shape == (2, 1, 64, 64) and relu_free.params.get("layer_shape") is None
    with pytest.raises(ConfigError, match="score"):
        run("gradcam", net, images, score="foo")


# -- explain_files ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def files_model() -> BlackBox:
    return BlackBox(QuadrantClassifier().eval(), input_size=(64, 64), mean=(0.0,) * 3, std=(1.0,) * 3)


def _photo(path: Path, seed: int) -> Path:
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (30, 40, 3), dtype=np.uint8)).save(path)
    return path


@pytest.mark.parametrize("batch_size", [0, -1, 1.5, True])
def test_explain_files_bad_batch_size(files_model, tmp_path, batch_size):
    """Fault: API: explain_files(batch_size=0, -1, 1.5 or True) — ConfigError."""
    with pytest.raises(ConfigError, match="batch_size"):
        list(explain_files(files_model, [_photo(tmp_path / "a.png", 0)], "center", batch_size=batch_size))


@pytest.mark.parametrize("as_type", [str, Path])
def test_explain_files_with_one_path_explains_that_file(files_model, tmp_path, as_type):
    """Fault: API: explain_files('p.png') with one path, str or Path — explains that file (not its
    characters)."""
    path = _photo(tmp_path / "a.png", 0)
    results = list(explain_files(files_model, as_type(path), "center"))
    assert len(results) == 1 and not results[0].failures
    assert results[0].explanation.sources == [str(path)]


def test_explain_files_batches_cover_every_file(files_model, tmp_path):
    """Fault: API: explain_files over several batches — every file explained once."""
    paths = [_photo(tmp_path / f"{k}.png", k) for k in range(5)]
    results = list(explain_files(files_model, paths, "center", batch_size=2))
    assert [s for r in results for s in r.explanation.sources] == [str(p) for p in paths]


# -- item 16: realtime_saliency and the global RNG ------------------------------------------------------
def test_realtime_saliency_with_the_shipped_masker_leaves_the_global_rng_alone():
    """Fault: API: realtime_saliency(masker=None) with the shipped masker — the global RNG is unchanged."""
    from maskscope.zoo import load_classifier

    bb = load_classifier()
    images = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    torch.manual_seed(123)
    state = torch.get_rng_state()
    explanation = realtime_saliency(bb, images, masker=None, scores=False)
    assert torch.equal(torch.get_rng_state(), state)
    assert explanation.masks.shape == (1, 1, 64, 64)
