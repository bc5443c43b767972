"""``model_fingerprint``: equal for equal weights and settings, different for any other weights; and
the modules behind a callable wrapper, which ``BlackBox`` puts in evaluation mode like a module."""

from __future__ import annotations

import functools

import pytest
import torch
from fixtures import QuadrantClassifier, quadrant_images
from torch import nn

from maskscope import get_method
from maskscope.accelerate import accelerate
from maskscope.blackbox import BlackBox
from maskscope.fingerprint import model_fingerprint, modules_behind

pytestmark = pytest.mark.usefixtures("one_thread")


def net(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3))


def test_same_weights_same_fingerprint_whatever_the_mode_or_object():
    a, b = net(0), net(0)
    b.train()
    assert model_fingerprint(a.eval()) == model_fingerprint(b)
    assert model_fingerprint(BlackBox(a)) == model_fingerprint(BlackBox(net(0)))


def test_other_weights_or_settings_change_it():
    base = model_fingerprint(BlackBox(net(0)))
    assert model_fingerprint(BlackBox(net(1))) != base  # another seed
    edited = net(0)
    with torch.no_grad():
        edited[5].bias[0] += 1e-6  # one weight, a little
    assert model_fingerprint(BlackBox(edited)) != base
    running = net(0)
    running[1].running_mean += 0.5  # a buffer
    assert model_fingerprint(BlackBox(running)) != base
    assert model_fingerprint(BlackBox(net(0), mean=(0.5,) * 3, std=(0.5,) * 3)) != base
    assert model_fingerprint(BlackBox(net(0), input_size=(112, 112))) != base
    assert model_fingerprint(BlackBox(net(0).to(torch.bfloat16))) != base
    assert model_fingerprint(accelerate(BlackBox(net(0)), amp="bf16")) != base


def test_a_wrapper_reaches_the_module_behind_it():
    inner = net(0)
    closure = BlackBox(lambda x: inner(x))
    assert modules_behind(closure.model) == [inner]
    assert modules_behind(functools.partial(inner.forward)) == [inner]
    other = net(1)
    assert model_fingerprint(closure) != model_fingerprint(BlackBox(lambda x: other(x)))
    before = model_fingerprint(closure)
    with torch.no_grad():
        inner[5].bias[0] += 1.0
    assert model_fingerprint(closure) != before


class Holder:
    def __init__(self, model: nn.Module) -> None:
        self.model = model

    def __call__(self, x):
        return self.model(x)


@pytest.mark.parametrize("wrap", [lambda m: (lambda x: m(x)), lambda m: Holder(m), lambda m: m.forward,
                                  lambda m: functools.partial(lambda mod, x: mod(x), m)])
def test_explaining_through_a_wrapper_leaves_batchnorm_statistics_and_mode_alone(wrap):
    inner = net(0).train()
    before = {k: v.clone() for k, v in inner.state_dict().items()}
    bb = BlackBox(wrap(inner), input_size=None, mean=None, std=None)
    for method in ("gradient", "meaningful"):
        get_method(method)(bb, torch.rand(2, 3, 16, 16), target=0,
                           **({"iterations": 2} if method == "meaningful" else {}))
    after = inner.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert all(m.training for m in inner.modules())


def test_a_plain_function_has_a_stable_name_fingerprint():
    def score(x):
        return QuadrantClassifier()(x)

    assert model_fingerprint(score) == model_fingerprint(score)
    assert get_method("center")(BlackBox(score, input_size=None), quadrant_images(1)).masks.shape[0] == 1
