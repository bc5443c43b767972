"""The black box's forward path and construction: what a broken, NaN, integer or meta-device
model, and what nonsense settings, give (one typed error naming the cause, never a traceback nor a
NaN passed on as a result)."""

from __future__ import annotations

import pytest
import torch
from fixtures import QuadrantClassifier, quadrant_images
from torch import nn

from maskscope import ConfigError, ModelError, TargetError, explain_files, get_method, metrics
from maskscope.blackbox import BlackBox
from maskscope.errors import NonFiniteError
from maskscope.methods import METHODS

pytestmark = pytest.mark.usefixtures("one_thread")

FAST = {"meaningful": {"iterations": 1}, "crisp": {"iterations": 1, "crisp_iterations": 1},
        "extremal": {"iterations": 1, "areas": [0.1]}, "rise": {"n_masks": 4}}


class Scores(nn.Module):
    """Three classes: the quadrant classifier's two logits and ``value`` (NaN, inf, ...) as the
    third, for the images that ``where`` picks (all of them by default)."""

    def __init__(self, value: float, where=None) -> None:
        super().__init__()
        self.inner = QuadrantClassifier()
        self.value, self.where = value, where

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.inner(x)
        third = torch.zeros_like(logits[:, :1])
        rows = torch.ones(len(x), dtype=torch.bool) if self.where is None else self.where(x)
        third[rows] = self.value
        return torch.cat([logits, third], dim=1)


def wrap(model: nn.Module, **kwargs) -> BlackBox:
    return BlackBox(model.eval(), input_size=(64, 64), mean=(0.0,) * 3, std=(1.0,) * 3, **kwargs)


def run(name: str, model, images, **options):
    if name == "realtime":
        options["masker"] = masker_for(model)
    return get_method(name)(model, images, **{**FAST.get(name, {}), **options})


def masker_for(bb: BlackBox):
    from maskscope.methods.realtime import build_masker, masker_config

    clean = wrap(Scores(0.0))  # the same three classes, finite: the masker is built for these
    torch.manual_seed(1)
    return build_masker(clean, masker_config(clean, "small")).eval()


# -- NaN and inf: every method and every metric ---------------------------------------------------------
@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
@pytest.mark.parametrize("name", sorted(METHODS))
def test_every_method_refuses_a_model_returning_nan_or_inf(name, value):
    with pytest.raises(NonFiniteError, match="non-finite") as caught:
        run(name, wrap(Scores(value)), quadrant_images(2), target=0)
    assert ("NaN" if value != value else "inf") in str(caught.value)
    assert isinstance(caught.value, ModelError)


def _metric_calls(bb, images, masks):
    boxes = [[[0, 0, 31, 31]]] * len(images)
    return {
        "probability_drop": lambda: metrics.probability_drop(bb, images, masks, target=0),
        "deletion_insertion_auc": lambda: metrics.deletion_insertion_auc(bb, images, masks, 0, steps=2),
        "saliency_metric": lambda: metrics.saliency_metric(bb, images, 0, masks=masks),
        "smallest_suppressive_box": lambda: metrics.smallest_suppressive_box(bb, images, 0, grid=2),
        "mask_box_suppression": lambda: metrics.mask_box_suppression(bb, images, masks, 0),
        "representativeness": lambda: metrics.representativeness(bb, images, masks, 0),
        "cross_perturbation_drop": lambda: metrics.cross_perturbation_drop(bb, images, masks, 0),
        "localisation": lambda: metrics.localisation_correct(masks[0, 0], boxes[0]),
        "tune_threshold": lambda: metrics.tune_threshold(masks, boxes),
        "pointing": lambda: metrics.pointing_hit(masks[0, 0], boxes[0]),
        "background": lambda: metrics.background_share(masks[0, 0], torch.ones(64, 64, dtype=torch.bool)),
    }


MODEL_METRICS = ["probability_drop", "deletion_insertion_auc", "saliency_metric", "smallest_suppressive_box",
                 "mask_box_suppression", "representativeness", "cross_perturbation_drop"]


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
@pytest.mark.parametrize("metric", MODEL_METRICS)
def test_every_metric_refuses_a_model_returning_nan_or_inf(metric, value):
    images, masks = quadrant_images(2), torch.rand(2, 1, 64, 64)
    with pytest.raises(NonFiniteError, match="scores hold non-finite"):
        _metric_calls(wrap(Scores(value)), images, masks)[metric]()


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
@pytest.mark.parametrize("metric", [*MODEL_METRICS[:2], *MODEL_METRICS[2:3], *MODEL_METRICS[4:],
                                    "localisation", "tune_threshold", "pointing", "background"])
def test_every_metric_refuses_masks_holding_nan_or_inf(metric, value):
    images = quadrant_images(2)
    masks = torch.full((2, 1, 64, 64), value)
    with pytest.raises(NonFiniteError, match="masks hold non-finite"):
        _metric_calls(wrap(QuadrantClassifier()), images, masks)[metric]()


def test_a_masker_with_nan_weights_is_refused_not_written_as_a_nan_mask():
    from maskscope import realtime_saliency

    bb = wrap(Scores(0.0))
    masker = masker_for(bb)
    with torch.no_grad():
        for p in masker.parameters():
            p.fill_(float("nan"))
    with pytest.raises(NonFiniteError, match="masks hold non-finite"):
        realtime_saliency(bb, quadrant_images(1), masker=masker)


def test_nan_pixels_are_still_only_a_warning():
    images = quadrant_images(1)
    images[0, :, :4, :4] = float("nan")
    with pytest.warns(UserWarning, match="NaN"):
        run("center", wrap(Scores(0.0)), images)


def _png(path, bright: bool):
    from PIL import Image

    value = 230 if bright else 20
    Image.new("RGB", (64, 64), (value, value, value)).save(path)
    return path


@pytest.mark.parametrize("name", ["gradient", "meaningful", "center"])
def test_explain_files_lists_the_nan_image_and_explains_the_rest(tmp_path, name):
    bright = lambda x: x.flatten(1).mean(1) > 0.5  # noqa: E731 - NaN for the bright image only
    bb = wrap(Scores(float("nan"), where=bright))
    paths = [_png(tmp_path / "dark.png", False), _png(tmp_path / "bright.png", True),
             _png(tmp_path / "dark2.png", False)]
    results = list(explain_files(bb, paths, method=name, batch_size=3, target=0, **FAST.get(name, {})))
    failures = [f for r in results for f in r.failures]
    explained = [s for r in results if r.explanation is not None for s in r.explanation.sources]
    assert [f[0] for f in failures] == [str(paths[1])]
    assert "non-finite" in failures[0][1] and "bright.png" in failures[0][1]
    assert sorted(explained) == sorted([str(paths[0]), str(paths[2])])
    for r in results:
        if r.explanation is not None:
            e = r.explanation
            assert torch.isfinite(e.masks).all() and torch.isfinite(e.p_original).all()


# -- model failures -------------------------------------------------------------------------------------
class Raises(nn.Module):
    def __init__(self, error: Exception) -> None:
        super().__init__()
        self.error = error

    def forward(self, x):
        raise self.error


class Integer(nn.Module):
    def forward(self, x):
        return QuadrantClassifier()(x).round().long()


@pytest.mark.parametrize("model, match", [
    (Raises(RuntimeError("boom")), r"failed on a batch of \d+ image.*RuntimeError: boom"),
    (Raises(torch.OutOfMemoryError("CUDA out of memory")), "out of memory.*lower --batch-size"),
    (Integer(), "int64 scores"),
])
@pytest.mark.parametrize("name", ["gradient", "meaningful", "occlusion", "center"])
def test_model_failures_are_model_errors_naming_the_cause(model, match, name):
    with pytest.raises(ModelError, match=match):
        run(name, wrap(model), quadrant_images(2), target=0)


def test_an_out_of_memory_error_is_still_one_for_code_that_retries_smaller():
    with pytest.raises(torch.OutOfMemoryError):
        wrap(Raises(torch.OutOfMemoryError("CUDA out of memory")))(quadrant_images(1))


def test_a_model_on_the_meta_device_is_a_model_error():
    meta = QuadrantClassifier().to("meta")
    with pytest.raises(ModelError, match="meta device"):
        run("gradient", wrap(meta), quadrant_images(1), target=0)


# -- the API's untyped errors and silent nonsense ---------------------------------------------------------
def test_meta_images_and_targets_are_typed_errors():
    bb = wrap(QuadrantClassifier())
    with pytest.raises(ConfigError, match="meta device"):
        run("gradient", bb, torch.zeros(1, 3, 64, 64, device="meta"), target=0)
    for target in (torch.tensor(0, device="meta"), torch.zeros(1, dtype=torch.long, device="meta")):
        with pytest.raises(TargetError, match="meta device"):
            run("gradient", bb, quadrant_images(1), target=target)


@pytest.mark.parametrize("target", [10**30, "1000000000000000000000000000000", "top²", "²"])
def test_huge_or_superscript_targets_are_target_errors(target):
    bb = wrap(QuadrantClassifier(), class_names=["checker", "rest"])
    with pytest.raises(TargetError):
        bb.check_target(target)
    with pytest.raises(TargetError):
        run("gradient", bb, quadrant_images(1), target=target)


@pytest.mark.parametrize("kwargs, match", [
    ({"input_size": (0, 0)}, "input_size"), ({"input_size": (224, -1)}, "input_size"),
    ({"mean": (0.5,) * 3, "std": (float("nan"),) * 3}, "finite"),
    ({"mean": (float("inf"), 0.5, 0.5), "std": (0.5,) * 3}, "finite"),
])
def test_nonsense_settings_are_config_errors(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        BlackBox(QuadrantClassifier(), **kwargs)


def test_a_one_class_model_is_refused():
    class One(nn.Module):
        def forward(self, x):
            return QuadrantClassifier()(x)[:, :1]

    with pytest.raises(ModelError, match="1 class"):
        run("gradient", wrap(One()), quadrant_images(1))


@pytest.mark.parametrize("paths", [[123], ["a.png", None]])
def test_explain_files_with_paths_that_are_not_names_is_a_config_error(paths):
    with pytest.raises(ConfigError, match="file names"):
        next(iter(explain_files(wrap(QuadrantClassifier()), paths)))


@pytest.mark.parametrize("seed", [2**70, -(2**70), 1.5, "0", True])
@pytest.mark.parametrize("name", ["meaningful", "rise"])
def test_a_seed_torch_cannot_take_is_a_config_error(name, seed):
    with pytest.raises(ConfigError, match="seed"):
        run(name, wrap(QuadrantClassifier()), quadrant_images(1), target=0, seed=seed)
