"""The sanity check (Adebayo et al. 2018) against answers known by hand: a linear model's gradient
is its weight row, so re-drawing the weights re-draws the mask; the centre box never looks at the
model; a masker with its own encoder and a learned selector never reads the classifier."""

from __future__ import annotations

import json

import pytest
import torch
from scipy.stats import spearmanr
from test_layers import TinyViT
from torch import nn

from maskscope.analysis.sanity import rebind_masker, sanity_check, sanity_figure, sanity_plot
from maskscope.blackbox import BlackBox
from maskscope.errors import ConfigError, MaskscopeError
from maskscope.metrics.sanity import (
    SanityResult,
    cascade_groups,
    cascade_stages,
    randomised_cascade,
    rank_correlation,
    structural_similarity,
)

SIZE = 16


def linear_model(classes: int = 2) -> BlackBox:
    """logit_c = W_c · x + b_c on the raw pixels: ∂ logit_c / ∂ x = W_c, whatever the image."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = nn.Sequential(nn.Flatten(), nn.Linear(3 * SIZE * SIZE, classes))
    return BlackBox(model.eval(), input_size=(SIZE, SIZE), mean=(0, 0, 0), std=(1, 1, 1), name="linear")


def small_cnn() -> BlackBox:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1),
                              nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3))
    return BlackBox(model.eval(), input_size=(32, 32), mean=(0.5,) * 3, std=(0.5,) * 3, name="small-cnn")


def images(n: int = 2, size: int = SIZE) -> torch.Tensor:
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(1))


def gradient_mask(weight_row: torch.Tensor) -> torch.Tensor:
    """What ``gradient`` gives for a linear model: |W_c| as an image, max over colours, / max."""
    m = weight_row.view(3, SIZE, SIZE).abs().amax(0)
    return (m - m.min()) / (m.max() - m.min())


# -- the scores ------------------------------------------------------------------------------------
def test_rank_correlation_is_spearmans_rho_with_ties():
    gen = torch.Generator().manual_seed(0)
    a = torch.randint(0, 5, (3, 40), generator=gen).float()  # many ties
    b = a + torch.randint(0, 3, (3, 40), generator=gen).float()
    expected = [spearmanr(x.numpy(), y.numpy()).statistic for x, y in zip(a, b)]
    assert rank_correlation(a, b).tolist() == pytest.approx(expected)
    assert rank_correlation(a, -a).tolist() == pytest.approx([-1.0] * 3)


def test_a_constant_map_correlates_one_with_itself_and_zero_with_anything_else():
    flat, ramp = torch.zeros(1, 1, 8, 8), torch.linspace(0, 1, 64).view(1, 1, 8, 8)
    assert rank_correlation(flat, flat).tolist() == [1.0]
    assert rank_correlation(flat, ramp).tolist() == [0.0]


def test_absolute_compares_magnitudes_of_signed_maps():
    signed = torch.linspace(-1, 1, 64).view(1, 8, 8)
    assert rank_correlation(signed, -signed).item() == pytest.approx(-1.0)
    assert rank_correlation(signed, -signed, absolute=True).item() == pytest.approx(1.0)


def test_ssim_is_one_for_equal_maps_and_lower_for_others():
    a = images(2)[:, :1]
    assert structural_similarity(a, a).tolist() == pytest.approx([1.0, 1.0])
    assert (structural_similarity(a, a.flip(-1)) < 0.5).all()


def test_maps_of_other_shapes_or_too_small_for_ssim_are_refused():
    with pytest.raises(ConfigError, match="one shape"):
        rank_correlation(torch.zeros(2, 1, 8, 8), torch.zeros(2, 1, 8, 9))
    with pytest.raises(ConfigError, match="at least 7"):
        structural_similarity(torch.zeros(1, 1, 5, 5), torch.zeros(1, 1, 5, 5))


# -- the cascade -----------------------------------------------------------------------------------
def test_a_vits_cascade_runs_from_the_head_down_and_keeps_attention_whole():
    model = BlackBox(TinyViT().eval(), input_size=(32, 32), mean=(0.5,) * 3, std=(0.5,) * 3)
    groups = cascade_groups(model, images(1, 32))
    assert [name for name, _ in groups] == ["head", "norm", "blocks.1", "blocks.0", "patch_embed",
                                            "cls_token+pos_embed"]
    assert "blocks.1.attn.out_proj.weight" in dict(groups)["blocks.1"]  # read by attn, never called
    assert sum(len(p) for _, p in groups) == len(list(model.model.parameters()))
    stages = cascade_stages(groups, 3)
    assert [s.name for s in stages] == ["head", "blocks.1", "cls_token+pos_embed"]
    assert stages[0].parameters == ("head.weight", "head.bias")
    assert set(stages[0].parameters) < set(stages[1].parameters) < set(stages[2].parameters)
    assert len(stages[-1].parameters) == sum(len(p) for _, p in groups)
    named = cascade_stages(groups, ["blocks.1", "head"])
    assert [s.name for s in named] == ["head", "blocks.1"]


def test_a_vits_masks_change_once_its_head_is_re_drawn(one_thread):
    model = BlackBox(TinyViT().eval(), input_size=(32, 32), mean=(0.5,) * 3, std=(0.5,) * 3)
    result = sanity_check(model, images(2, 32), methods=["gradient", "gradcam", "center"], stages=2,
                          options={"gradcam": {"layer": "blocks.1.norm1"}})
    assert [s.name for s in result.stages] == ["head", "cls_token+pos_embed"]
    assert result.masks["gradcam"].shape == (3, 2, 1, 32, 32)
    assert (result.spearman["gradient"] < 0.5).all()  # a new head is a new gradient
    assert result.mean("spearman")["center"] == [1.0, 1.0]


def test_the_same_parameter_gets_the_same_values_whatever_the_stages():
    bb = small_cnn()
    x = images(1, 32)
    few = [dict(m.model.named_parameters())["6.weight"].clone() for _, m in randomised_cascade(bb, x, 2, 5)]
    many = [dict(m.model.named_parameters())["6.weight"].clone() for _, m in randomised_cascade(bb, x, 4, 5)]
    assert torch.equal(few[1], many[1]) and not torch.equal(few[0], few[1])


# -- the check -------------------------------------------------------------------------------------
def test_a_linear_models_gradient_is_re_drawn_with_its_weights(one_thread):
    bb = linear_model()
    x = images(2)
    result = sanity_check(bb, x, targets=1, methods=["gradient", "center"], stages=1, seed=3)
    assert [s.name for s in result.stages] == ["1"] and result.stages[0].parameters == ("1.weight", "1.bias")
    w = bb.model[1].weight.detach()
    gen = torch.Generator().manual_seed(3)  # the re-draw, by hand: the trained tensor's mean and std
    redrawn = w.mean() + w.std() * torch.randn(w.shape, generator=gen)
    masks = result.masks["gradient"]
    for i in range(2):  # the gradient is the weight row, for every image
        assert torch.allclose(masks[0, i, 0], gradient_mask(w[1]), atol=1e-5)
        assert torch.allclose(masks[1, i, 0], gradient_mask(redrawn[1]), atol=1e-5)
    expected = spearmanr(gradient_mask(w[1]).flatten().numpy(), gradient_mask(redrawn[1]).flatten().numpy())
    assert result.spearman["gradient"][0].tolist() == pytest.approx([expected.statistic] * 2, abs=1e-4)
    assert abs(expected.statistic) < 0.2  # independent draws: the mask changed completely
    assert result.mean("spearman")["center"] == [1.0] and result.mean("ssim")["center"] == [1.0]
    assert torch.allclose(result.mass["center"], torch.full((2, 2), 121 / 256))  # 11 × 11 (16 / √2) of 16²


def test_the_users_model_is_left_as_it_was(one_thread):
    bb = small_cnn()
    model = bb.model
    model[0].weight.requires_grad_(False)  # mixed flags: both kinds must come back as they were
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    flags = {k: p.requires_grad for k, p in model.named_parameters()}
    rng = torch.get_rng_state()
    result = sanity_check(bb, images(2, 32), methods=["gradient", "gradcam", "rise"], stages=2,
                          options={"rise": {"n_masks": 8}, "gradcam": {"layer": "2"}})
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert {k: p.requires_grad for k, p in model.named_parameters()} == flags
    assert all(m.training for m in model.modules())
    assert not any(m._forward_pre_hooks or m._forward_hooks or m._backward_hooks for m in model.modules())
    assert torch.equal(torch.get_rng_state(), rng)
    assert len(result.agreement) == 2 and result.masks["rise"].shape == (3, 2, 1, 32, 32)


def test_the_same_seed_gives_the_same_result_and_another_seed_another(one_thread):
    bb, x = small_cnn(), images(2, 32)
    first, again = (sanity_check(bb, x, methods=["gradient"], stages=2, seed=7) for _ in range(2))
    other = sanity_check(bb, x, methods=["gradient"], stages=2, seed=8)
    assert torch.equal(first.masks["gradient"], again.masks["gradient"])
    assert torch.equal(first.spearman["gradient"], again.spearman["gradient"])
    assert not torch.equal(first.masks["gradient"][1:], other.masks["gradient"][1:])
    assert torch.equal(first.masks["gradient"][0], other.masks["gradient"][0])  # the trained model's


def test_a_masker_with_its_own_encoder_never_reads_the_classifier(one_thread):
    from maskscope.methods.realtime import build_masker, masker_config

    bb = small_cnn()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        masker = build_masker(bb, masker_config(bb, encoder="small")).eval()
    result = sanity_check(bb, images(2, 32), methods=["realtime"], stages=2,
                          options={"realtime": {"masker": masker}})
    assert result.mean("spearman")["realtime"] == pytest.approx([1.0, 1.0])


@pytest.mark.integration
def test_the_shipped_masker_is_rebound_to_the_randomised_classifier():
    from maskscope.methods.realtime import load_masker
    from maskscope.zoo import load_classifier

    bb = load_classifier()
    masker = load_masker(bb)
    cascade = randomised_cascade(bb, torch.rand(1, 3, 224, 224), ["_fc"])
    next(cascade)
    _, randomised = next(cascade)
    bound = rebind_masker(masker, randomised)
    assert bound.encoder.backbone is randomised.model and masker.encoder.backbone is bb.model
    fc = randomised.model._fc.weight
    assert not torch.equal(fc, bb.model._fc.weight)
    if masker.config.get("selector", "learned") == "classifier-tied":  # the gate reads the new head
        assert torch.equal(bound.decoder.filter.class_weights, fc.float())
    learned = masker.state_dict()
    assert all(torch.equal(learned[k], v) for k, v in bound.state_dict().items())


def test_the_figures_have_a_row_per_method_and_a_column_per_stage(one_thread):
    x = images(1, 32)
    result = sanity_check(small_cnn(), x, methods=["gradient", "center"], stages=2)
    figure = sanity_figure(result, x)
    assert len(figure.axes) == 2 * (2 + 2)  # methods × (image, original, 2 stages)
    assert [ax.get_title() for ax in figure.axes[:4]] == ["image", "original", "6", "0"]
    back = SanityResult.from_json(json.loads(json.dumps(result.to_json())))
    assert back.methods == ["gradient", "center"]
    assert all(back.mean("ssim")[m] == pytest.approx(result.mean("ssim")[m]) for m in back.methods)
    plot = sanity_plot(back)  # the plot needs only the scores
    assert [len(line.get_xdata()) for line in plot.axes[0].lines if line.get_label() == "center"] == [3]


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"stages": 0}, ConfigError, "at least 1"),
    ({"stages": ["nope"]}, ConfigError, "no parameter group 'nope'.*6, 2, 0"),
    ({"stages": "6"}, ConfigError, "a count or a list"),
    ({"seed": 1.5}, ConfigError, "seed must be an integer"),
    ({"methods": []}, ConfigError, "non-empty list"),
    ({"methods": "gradient"}, ConfigError, "non-empty list"),
    ({"methods": ["gradient", "gradient"]}, ConfigError, "distinct"),
    ({"methods": ["nope"]}, ConfigError, "unknown method 'nope'"),
    ({"options": {"gradient": {"colour": 1}}}, ConfigError, "no option 'colour'"),
    ({"targets": 7}, MaskscopeError, "7"),
])
def test_bad_input_is_one_typed_error(kwargs, error, match):
    with pytest.raises(error, match=match):
        sanity_check(small_cnn(), images(1, 32), **{"methods": ["gradient"], **kwargs})


def test_a_model_without_parameters_or_bad_images_are_refused():
    with pytest.raises(ConfigError, match="needs a torch module with parameters"):
        sanity_check(lambda x: x.mean(dim=(2, 3)), images(1, 32))
    with pytest.raises(ConfigError, match="empty batch"):
        sanity_check(small_cnn(), torch.rand(0, 3, 32, 32))
    with pytest.raises(ConfigError, match=r"\(B, 3, H, W\)"):
        sanity_check(small_cnn(), torch.rand(1, 32, 32))
    assert torch.isfinite(sanity_check(small_cnn(), images(1, 32), stages=1).spearman["gradient"]).all()
