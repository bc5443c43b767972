"""The attribution baselines (gradient, guided backprop, Grad-CAM, occlusion, RISE) on tiny classifiers
whose evidence sits in a known quadrant; model state left untouched."""

from __future__ import annotations

import pytest
import torch
from fixtures import QuadrantNet
from torch import nn

from maskscope import BlackBox
from maskscope.masks import normalise_saliency
from maskscope.methods import get_method
from maskscope.methods.gradcam import gradcam, last_conv_layer
from maskscope.methods.gradient import gradient
from maskscope.methods.guided_backprop import guided_backprop
from maskscope.methods.occlusion import occlusion
from maskscope.methods.rise import rise
from maskscope.metrics import max_point

SIZE = 16


def _images(batch: int = 2) -> torch.Tensor:
    return torch.rand(batch, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(1))


def _quadrant_share(masks: torch.Tensor) -> torch.Tensor:
    """Fraction of each mask's mass inside the top-left quadrant (B,)."""
    inside = masks[..., : SIZE // 2, : SIZE // 2].flatten(1).sum(1)
    return inside / masks.flatten(1).sum(1)


FAST_OPTIONS = {
    "gradient": {},
    "guided-backprop": {},
    "gradcam": {},
    "occlusion": {"window": 4, "stride": 2, "baseline": "zero"},
    "rise": {"n_masks": 400, "grid": 3, "batch_size": 100},
}


@pytest.mark.parametrize("name", list(FAST_OPTIONS))
def test_saliency_concentrates_on_the_quadrant_the_model_looks_at(name):
    x = _images()
    expl = get_method(name)(QuadrantNet(), x, target=0, **FAST_OPTIONS[name])
    assert expl.masks.shape == (2, 1, SIZE, SIZE) and expl.method == name
    assert float(expl.masks.min()) >= 0 and float(expl.masks.max()) == pytest.approx(1.0)
    assert expl.targets.tolist() == [[0], [0]]
    for p in (expl.p_original, expl.p_deleted, expl.p_preserved):
        assert p.shape == (2,) and bool(((p >= 0) & (p <= 1)).all())
    share = _quadrant_share(expl.masks)  # the quadrant is a quarter of the image
    if name == "rise":
        # RISE's masks are smooth at the scale of a grid cell (here 16/3 px), so its map blurs across
        # the quadrant border: ask for twice the mean saliency inside and the maximum inside
        inside = expl.masks[..., : SIZE // 2, : SIZE // 2].flatten(1).mean(1)
        outside = (expl.masks.flatten(1).sum(1) - inside * SIZE**2 / 4) / (SIZE**2 * 3 / 4)
        assert bool((inside > 2 * outside).all()), (inside, outside)
        assert all(max(max_point(m)) < SIZE // 2 for m in expl.masks)
    else:  # gradients leak only through the one-pixel border of the 3×3 conv
        assert bool((share > 0.8).all()), share


def _hook_count(model: nn.Module) -> int:
    return sum(
        len(m._forward_hooks)
        + len(m._forward_pre_hooks)
        + len(m._backward_hooks)
        + len(m._backward_pre_hooks)
        for m in model.modules()
    )


@pytest.mark.parametrize("name", list(FAST_OPTIONS) + ["center", "full"])
def test_model_state_is_left_as_found(name):
    model = QuadrantNet().train()
    model.conv1.weight.requires_grad_(False)
    flags = [p.requires_grad for p in model.parameters()]
    before = {k: v.clone() for k, v in model.state_dict().items()}
    bb = BlackBox(model, input_size=(SIZE, SIZE), mean=(0.5,) * 3, std=(0.5,) * 3)
    options = {"n_masks": 50, "grid": 3} if name == "rise" else FAST_OPTIONS.get(name, {})
    get_method(name)(bb, _images(), target=[0, 2], **options)
    assert _hook_count(model) == 0 and _hook_count(bb) == 0
    assert [p.requires_grad for p in model.parameters()] == flags
    assert all(p.grad is None for p in model.parameters())
    assert all(m.training for m in model.modules())
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())


def test_guided_backprop_also_guides_relu6():
    # activations stay far below 6, so ReLU6 and ReLU nets compute the same function and gradient
    relu_net, relu6_net = QuadrantNet(nn.ReLU), QuadrantNet(nn.ReLU6)
    with torch.no_grad():
        relu_net.fc.weight[0] -= 1.5  # mixed-sign weights: guidance now removes negative gradients
        relu6_net.load_state_dict(relu_net.state_dict())
    x = _images()
    guided6 = guided_backprop(relu6_net, x, target=0)
    assert guided6.params["rectifiers"] == 2
    assert torch.allclose(guided6.masks, guided_backprop(relu_net, x, target=0).masks, atol=1e-6)
    assert not torch.allclose(guided6.masks, gradient(relu_net, x, target=0).masks, atol=1e-3)


def test_gradcam_finds_the_last_spatial_conv_and_upsamples():
    model = QuadrantNet()
    bb = BlackBox(model, input_size=(2 * SIZE, 2 * SIZE), mean=(0,) * 3, std=(1,) * 3)
    assert last_conv_layer(bb, _images()) is model.conv2
    expl = gradcam(bb, _images(), target="top1")
    assert expl.masks.shape == (2, 1, SIZE, SIZE)
    assert bool((_quadrant_share(expl.masks) > 0.8).all())
    explicit = gradcam(bb, _images(), target="top1", layer=model.conv1)
    assert explicit.params["layer_shape"] == [4, 3, 3, 3]


def test_rise_is_seeded_and_independent_of_batching():
    x = _images(3)
    together = rise(QuadrantNet(), x, target=1, n_masks=60, grid=4, batch_size=25, seed=3)
    alone = rise(QuadrantNet(), x[1:2], target=1, n_masks=60, grid=4, batch_size=7, seed=3)
    assert torch.allclose(together.masks[1:2], alone.masks, atol=1e-5)
    other_seed = rise(QuadrantNet(), x[1:2], target=1, n_masks=60, grid=4, seed=4)
    assert not torch.allclose(other_seed.masks, alone.masks)


def test_rise_refuses_a_mask_count_or_grid_it_cannot_draw():
    from maskscope import ConfigError

    with pytest.raises(ConfigError, match="at most 1000000 masks"):
        rise(QuadrantNet(), _images(), target=1, n_masks=10**9)  # would draw 49e9 cells at once
    with pytest.raises(ConfigError, match="must not exceed the image's side"):
        rise(QuadrantNet(), _images(), target=1, n_masks=4, grid=10**4)


def test_occlusion_validates_its_window():
    from maskscope import ConfigError

    with pytest.raises(ConfigError):
        occlusion(QuadrantNet(), _images(), window=4, stride=8)


def test_occlusion_window_scales_with_the_image():
    """32/16 px at 224 px is half a 64-px scene: the defaults follow the short side instead."""
    small = torch.rand(1, 3, 64, 64)
    params = occlusion(QuadrantNet(), small, target=0).params
    assert (params["window"], params["stride"]) == (9, 5)


def test_normalise_saliency_is_shared_and_in_unit_range():
    raw = torch.tensor([[[[-4.0, 2.0], [0.0, 1.0]], [[1.0, -1.0], [0.0, 3.0]]]])  # (1, 2, 2, 2)
    assert normalise_saliency(raw, "abs").tolist() == [[[[1.0, 0.5], [0.0, 0.75]]]]
    expected = torch.tensor([[[[1 / 3, 2 / 3], [0.0, 1.0]]]])
    assert torch.allclose(normalise_saliency(raw, "positive"), expected)
    assert normalise_saliency(torch.full((2, 3, 4, 4), 7.0)).abs().sum() == 0  # constant: no location
    floor = normalise_saliency(torch.tensor([[[2.0, 3.0], [2.0, 4.0]]]), "positive")  # (B, H, W), floor 2
    assert floor.tolist() == [[[[0.0, 0.5], [0.0, 1.0]]]]
