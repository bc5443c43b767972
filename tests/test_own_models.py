"""Your own model, as real models come: tuple / dict / probability outputs, half precision and
bfloat16, one input channel, a non-square input. Every kind hides the same known evidence (the
top-left quadrant's checkerboard: ``fixtures.OwnModel``), so each method's numbers can be checked
against the answer, and ``p_original`` against the model's own probability."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from fixtures import OwnModel, own_images
from PIL import Image

import maskscope as ms
from maskscope.errors import ConfigError, ModelError
from maskscope.methods.optimise import Settings

KINDS = {
    "logits": dict(),
    "tuple": dict(form="tuple"),
    "dict": dict(form="dict"),
    "probabilities": dict(form="probabilities"),
    "float16": dict(dtype=torch.float16),
    "bfloat16": dict(dtype=torch.bfloat16),
    "1-channel": dict(channels=1),
    "160x256": dict(size=(160, 256)),
}
SETTINGS = dict(iterations=80, mask_scale=4, l1=0.01 * 256 / 784)


def _kind(name: str) -> tuple[OwnModel, ms.BlackBox, tuple[int, int]]:
    spec = dict(KINDS[name])
    dtype = spec.pop("dtype", torch.float32)
    model = OwnModel(**spec).to(dtype).eval()
    size, channels = spec.get("size", (64, 64)), spec.get("channels", 3)
    outputs = "probabilities" if spec.get("form") == "probabilities" else "auto"
    bb = ms.BlackBox(model, input_size=size, mean=(0.5,) * channels, std=(0.5,) * channels, outputs=outputs)
    return model, bb, size


def _own_probability(model: OwnModel, images: torch.Tensor) -> float:
    """Class 0's probability as the model itself says it, preprocessing done by hand."""
    x = images * 2 - 1
    if model.mix.in_channels == 1:
        x = (x * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
    with torch.no_grad():
        out = model(x.to(model.weight.dtype))
    scores = out[0] if isinstance(out, tuple) else out["logits"] if isinstance(out, dict) else out
    scores = scores.float()
    probs = scores if model.form == "probabilities" else scores.softmax(1)
    return float(probs[0, 0])


def _share(masks: torch.Tensor, size: tuple[int, int]) -> float:
    """Fraction of the first mask's mass in the top-left quadrant (a quarter of the image)."""
    m = masks[0, 0].float()
    return float(m[: size[0] // 2, : size[1] // 2].sum() / m.sum())


@pytest.mark.parametrize("name", list(KINDS))
def test_every_method_reads_every_model_kind(name, one_thread, tmp_path):
    model, bb, size = _kind(name)
    x = own_images(1, size)
    truth = _own_probability(model, x)
    assert 0.6 < truth < 0.99  # not saturated, so a softmax applied twice would show
    tol = 2e-2 if model.weight.dtype != torch.float32 else 1e-4

    meaningful = ms.meaningful_perturbation(bb, x, target=0, **SETTINGS)
    assert float(meaningful.p_original[0]) == pytest.approx(truth, abs=tol)
    assert float(meaningful.p_deleted[0]) < 0.5 * truth
    assert _share(meaningful.masks, size) > 0.9

    stage_one = Settings(iterations=40, mask_scale=4, l1=0.01 * 256 / 784)
    crisp = ms.crisp_mask(bb, x, target=0, perturbation="constant", settings=stage_one, crisp_iterations=40)
    assert float(crisp.p_deleted[0]) < 0.5 * truth and _share(crisp.masks, size) > 0.9

    gradient = ms.get_method("gradient")(bb, x, target=0)  # Captum's Saliency
    assert _share(gradient.masks, size) == pytest.approx(1.0)  # the weights are zero outside

    path = tmp_path / "board.png"
    Image.fromarray((x[0].permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)).save(path)
    [result] = list(ms.explain_files(bb, [path], method="gradient", target=0))
    assert result.explanation.masks.shape == (1, 1, *size)
    assert float(result.explanation.p_original[0]) == pytest.approx(truth, abs=2e-2)  # 8-bit PNG
    assert model.weight.dtype == KINDS[name].get("dtype", torch.float32)  # the model left in its dtype


def test_probability_outputs_are_detected_once_with_a_warning():
    model = OwnModel(form="probabilities").eval()
    bb = ms.BlackBox(model, input_size=(64, 64), mean=(0.5,) * 3, std=(0.5,) * 3)
    x = own_images(2)
    with pytest.warns(UserWarning, match="returns probabilities"):
        p = bb.probabilities(x)
    assert torch.allclose(p[:, 0], torch.tensor([_own_probability(model, x[i : i + 1]) for i in range(2)]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        bb(x)  # decided once: no second warning
    logits = ms.BlackBox(OwnModel(), input_size=(64, 64), mean=(0.5,) * 3, std=(0.5,) * 3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert torch.allclose(logits.probabilities(x), p, atol=1e-6)


def test_log_probabilities_and_explicit_logits():
    x = own_images(1)
    model = OwnModel().eval()
    bb = ms.BlackBox(model, input_size=(64, 64), mean=(0.5,) * 3, std=(0.5,) * 3, outputs="log_probabilities")
    assert float(bb.probabilities(x).detach()[0, 0]) == pytest.approx(_own_probability(model, x), abs=1e-6)
    with pytest.raises(ConfigError, match="outputs"):
        ms.BlackBox(model, outputs="softmax")


def test_output_selector_picks_a_part_of_a_structured_output():
    x = own_images(1)
    bb = ms.BlackBox(OwnModel(form="dict"), input_size=(64, 64), mean=(0.5,) * 3, std=(0.5,) * 3,
                     output="logits")
    assert bb(x).shape == (1, 2)
    wrong = ms.BlackBox(OwnModel(form="dict"), input_size=(64, 64), mean=(0.5,) * 3, std=(0.5,) * 3,
                        output="features")
    with pytest.raises(ModelError, match="shape"):
        wrong(x)
    missing = ms.BlackBox(OwnModel(form="tuple"), input_size=(64, 64), mean=(0.5,) * 3, std=(0.5,) * 3,
                          output=5)
    with pytest.raises(ModelError, match="no part 5"):
        missing(x)


class _Returns(torch.nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 2, 1)
        self.fn = fn

    def forward(self, x):
        return self.fn(self.conv(x).mean(dim=(2, 3)))


@pytest.mark.parametrize(
    "fn, match",
    [
        (lambda s: s[:, 0], "shape"),  # 1-D: one score per image
        (lambda s: s[:1], r"for 2 image"),  # wrong batch size
        (lambda s: {"a": s, "b": s}, "output=KEY"),  # which of two?
        (lambda s: "text", "not a tensor"),
    ],
)
def test_unreadable_outputs_are_typed_errors(fn, match):
    bb = ms.BlackBox(_Returns(fn), input_size=None)
    with pytest.raises(ModelError, match=match):
        bb(torch.rand(2, 3, 8, 8))
    with pytest.raises(ModelError):
        ms.get_method("gradient")(_Returns(fn), torch.rand(2, 3, 8, 8), target=0)


def test_bad_construction_is_a_config_error():
    bb = ms.BlackBox(OwnModel(), input_size=(64, 64))
    with pytest.raises(ConfigError, match="already a BlackBox"):
        ms.BlackBox(bb)
    with pytest.raises(ConfigError, match="1-channel"):
        ms.BlackBox(OwnModel(channels=1), mean=(0.5,) * 3, std=(0.5,) * 3)
    with pytest.raises(ConfigError, match="one value per channel"):
        ms.BlackBox(OwnModel(), mean=(0.5,) * 3, std=(0.5,) * 2)
    with pytest.raises(ConfigError, match=r"\(B, 3, H, W\)"):
        bb(torch.rand(1, 2, 64, 64))


def test_errors_inside_properties_surface_as_themselves():
    class Broken(torch.nn.Module):
        def forward(self, x):
            return self.no_such_layer(x)

    bb = ms.BlackBox(Broken(), input_size=(8, 8))
    with pytest.raises(AttributeError, match="no_such_layer"):
        _ = bb.num_classes


def test_bare_modules_work_everywhere(tmp_path):
    model = OwnModel().eval()
    x = own_images(1)
    bare = ms.meaningful_perturbation(model, x, target=0, iterations=5)
    assert bare.masks.shape == (1, 1, 64, 64)
    path = tmp_path / "board.png"
    Image.fromarray((x[0].permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)).save(path)
    [result] = list(ms.explain_files(OwnModel(size=(224, 224)), [path], method="center", target=0))
    assert result.explanation.masks.shape == (1, 1, 224, 224)  # a bare module gets 224 × 224


def test_notebook_look_plot_and_to_numpy():
    e = ms.meaningful_perturbation(OwnModel(), own_images(2), target=0, iterations=5)
    masks = e.to_numpy()
    assert masks.shape == (2, 64, 64) and masks.dtype == np.float32
    assert np.array_equal(masks, e.masks[:, 0].numpy())
    figure = e.plot(1)
    assert len(figure.axes) >= 3 and "p = " in figure.axes[0].get_title() + figure.axes[0].get_xlabel()
    with pytest.raises(ConfigError, match="no image 2"):
        e.plot(2)
