"""The one Target type: every form a user may give, its errors, callable targets, Captum's shape."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from captum.attr import Saliency
from fixtures import Linear, QuadrantClassifier, QuadrantNet, quadrant_images
from fixtures import run_fast as run

import maskscope as ms
from maskscope import BlackBox, TargetError
from maskscope.methods import get_method
from maskscope.target import ScoreTarget, Target, check_target, class_targets, resolve

NAMES = ["tabby, tabby cat", "dog", "car", "cup", "x"]


@pytest.fixture
def blackbox():
    torch.manual_seed(0)
    return BlackBox(Linear(), input_size=(16, 16), class_names=NAMES)


@pytest.fixture
def x():
    return torch.rand(3, 3, 20, 20, generator=torch.Generator().manual_seed(2))


@pytest.mark.parametrize(
    "spec, expected",
    [
        (2, [[2]] * 3),
        (np.int64(3), [[3]] * 3),
        (torch.tensor(1), [[1]] * 3),
        ("4", [[4]] * 3),
        ("tabby cat", [[0]] * 3),
        (" Dog ", [[1]] * 3),
        ([0, "car", np.int32(4)], [[0], [2], [4]]),
        (torch.tensor([3, 3, 1]), [[3], [3], [1]]),
        (np.array([1, 0, 2]), [[1], [0], [2]]),
        (torch.tensor([[0, 1], [2, 3], [4, 0]]), [[0, 1], [2, 3], [4, 0]]),
        (torch.tensor([[2, 3]]), [[2, 3]] * 3),  # one row of a tensor is every image's
        (Target(classes=((1,),)), [[1]] * 3),
    ],
)
def test_every_class_form_resolves_to_indices_b_by_k(blackbox, x, spec, expected):
    t = resolve(blackbox, x, spec)
    assert t.dtype == torch.int64 and t.tolist() == expected


def test_top_k_is_the_models_own_best_classes(blackbox, x):
    order = blackbox(x).argsort(dim=1, descending=True)
    assert torch.equal(resolve(blackbox, x, None), order[:, :1])  # None is top1
    assert torch.equal(resolve(blackbox, x, " Top3"), order[:, :3])
    assert torch.equal(resolve(blackbox, x, None, default="top2"), order[:, :2])  # a preset's default
    assert Target.parse("top5").top == 5 and Target.parse("top5").score is None


@pytest.mark.parametrize(
    "spec, message",
    [
        (True, "invalid target"),
        (2.5, "whole class index"),
        (3.0, "whole class index"),
        ([0, 1.5, 2], "whole class index"),
        (torch.tensor([0.0, 1.0, 2.0]), "integer class indices"),
        (torch.zeros(3, 1, 1, dtype=torch.long), r"\(B,\) or \(B, K\)"),
        ([0, 1], "got 2 targets for 3 images"),
        ([], "got 0 targets for 3 images"),
        (5, "out of range: the model has 5 classes"),
        (-1, "out of range"),
        ("zebra", "unknown class name"),
        ("top0", "cannot take the top 0 of 5"),
        ("top9", "cannot take the top 9 of 5"),
        ([lambda o: o[0]] * 2, "got 2 target functions for 3 images"),
    ],
)
def test_bad_targets_are_one_target_error(blackbox, x, spec, message):
    with pytest.raises(TargetError, match=message):
        resolve(blackbox, x, spec)


def test_blackbox_resolve_targets_has_captums_shape(blackbox, x):
    """(B,) int64 for one class per image, which Captum takes as it is, and the same attribution as
    Captum given the class itself."""
    targets = blackbox.resolve_targets(x, [0, 2, 4])
    assert targets.shape == (3,) and targets.dtype == torch.int64
    assert blackbox.resolve_targets(x, "top3").shape == (3, 3)
    ours = Saliency(blackbox).attribute(x, target=targets)
    for i, c in enumerate([0, 2, 4]):
        alone = Saliency(blackbox).attribute(x[i : i + 1], target=c)
        assert torch.allclose(ours[i : i + 1], alone)
    with pytest.raises(TargetError, match="not a function of the output"):
        blackbox.resolve_targets(x, lambda logits: logits[:, 0])


def test_check_target_fails_fast_and_passes_per_image_forms_through(blackbox):
    assert check_target(blackbox, None) is None
    assert check_target(blackbox, " TOP2 ") == "top2"
    assert check_target(blackbox, "cup") == 3 and check_target(blackbox, np.int64(1)) == 1
    per_image, fn = [0, 1], (lambda logits: logits[:, 0])
    assert check_target(blackbox, per_image) is per_image and check_target(blackbox, fn) is fn
    with pytest.raises(TargetError):
        check_target(blackbox, "top6")


def test_a_callable_scores_the_rows_it_stands_for(blackbox, x):
    logits = blackbox(x)
    score = resolve(blackbox, x, lambda out: out[:, [1, 3]].sum(1))
    assert isinstance(score, ScoreTarget) and len(score) == 3 and score.name == "custom score"
    assert torch.allclose(score(logits), logits[:, 1] + logits[:, 3])
    assert torch.allclose(score[torch.tensor([2, 0])](logits[[2, 0]]), (logits[:, 1] + logits[:, 3])[[2, 0]])
    per_image = resolve(blackbox, x, [lambda o: o[0], lambda o: o[1], lambda o: o[4]])
    assert torch.allclose(per_image(logits), logits[[0, 1, 2], [0, 1, 4]])
    assert torch.allclose(per_image[1:](logits[1:]), logits[[1, 2], [1, 4]])  # each row keeps its own
    with pytest.raises(TargetError, match="one score per image"):
        resolve(blackbox, x, lambda out: out)(logits)


def test_class_targets_refuses_a_callable_in_one_line(blackbox, x):
    with pytest.raises(TargetError, match="^the masker needs class targets") as err:
        class_targets(blackbox, x, lambda out: out[:, 0], "the masker")
    assert "\n" not in str(err.value)


def _same(a, b):
    assert torch.allclose(a.masks, b.masks, atol=1e-6)


@pytest.mark.parametrize(
    "name, options",
    [
        ("meaningful", dict(iterations=8, mask_scale=4)),
        ("crisp", dict(iterations=5, crisp_iterations=5)),
        ("extremal", dict(iterations=6, areas=(0.1,))),
    ],
)
def test_a_callable_target_gives_the_masks_of_the_class_it_scores(name, options):
    """meaningful and crisp score probabilities, extremal logits: a callable that computes the same
    score as class 0 gives the same masks, with the callable named as the target."""
    model, images = QuadrantClassifier(), quadrant_images(2)
    score = (lambda out: out.softmax(1)[:, 0]) if name != "extremal" else (lambda out: out[:, 0])
    by_class = get_method(name)(model, images, target=0, **options)
    by_score = get_method(name)(model, images, target=score, **options)
    assert torch.allclose(by_class.masks, by_score.masks, atol=1e-6)
    # the reported scores are the callable's own (for extremal's, the logit)
    own = score(model(images)).repeat_interleave(len(by_score.masks) // 2)  # extremal: a row per area
    assert torch.allclose(by_score.p_original, own)
    assert by_score.class_names == ["custom score"] * len(by_score.masks)
    assert by_score.targets[:, 0].tolist() == [-1] * len(by_score.masks)


@pytest.mark.parametrize("name", ["gradient", "guided-backprop", "gradcam"])
def test_gradient_methods_take_the_sum_of_classes_and_per_image_functions(name):
    net, images = QuadrantNet(), torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    options = {"layer": "conv2"} if name == "gradcam" else {}
    method = get_method(name)
    _same(method(net, images, target=torch.tensor([[0, 2]]), **options),
          method(net, images, target=lambda out: out[:, [0, 2]].sum(1), **options))
    _same(method(net, images, target=[1, 2], **options),
          method(net, images, target=[lambda o: o[1], lambda o: o[2]], **options))


@pytest.mark.parametrize("name", ["occlusion", "rise"])
def test_methods_that_need_classes_refuse_a_callable(name):
    with pytest.raises(TargetError, match=f"^{name} needs class targets"):
        get_method(name)(QuadrantNet(), torch.rand(1, 3, 16, 16), target=lambda out: out[:, 0])


def test_realtime_refuses_a_callable(monkeypatch):
    from maskscope.methods import realtime

    monkeypatch.setattr(realtime, "load_masker", lambda *_, **__: object())  # never reached a masker
    with pytest.raises(TargetError, match="real-time masker needs class targets"):
        ms.realtime_saliency(QuadrantNet(), torch.rand(1, 3, 16, 16), target=lambda out: out[:, 0])


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
