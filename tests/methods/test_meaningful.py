import pytest
import torch
from fixtures import TINY_SETTINGS, QuadrantClassifier, quadrant_images

import maskscope as ms
from maskscope.errors import ConfigError, TargetError
from maskscope.methods.optimise import Settings


@pytest.mark.parametrize("perturbation", ["blur", "constant", "noise"])
@pytest.mark.parametrize("game", ["delete", "preserve"])
def test_mask_lands_on_the_only_quadrant_the_model_uses(quadrant_model, perturbation, game):
    images = quadrant_images(1)
    e = ms.meaningful_perturbation(
        quadrant_model, images, target=0, game=game, perturbation=perturbation, **TINY_SETTINGS
    )
    mask = e.masks[0, 0]
    assert mask.shape == (64, 64)
    assert float(mask[:32, :32].sum() / mask.sum()) >= 0.9
    if game == "delete":
        assert e.p_deleted[0] < 0.5 * e.p_original[0]
    else:
        assert e.p_preserved[0] > 0.5 * e.p_original[0]


@pytest.mark.parametrize("options", [dict(alternate="constant"), dict(harden=0.4),
                                     dict(alternate="noise", harden=0.5)])
def test_masks_that_hold_up_still_land_on_the_quadrant(quadrant_model, options):
    """A second operator every other iteration, and the mask shown binarised for the last part of
    the run: still the quadrant, deleted under the main operator, and the settings are recorded."""
    e = ms.meaningful_perturbation(quadrant_model, quadrant_images(1), target=0, perturbation="blur",
                                   **TINY_SETTINGS, **options)
    mask = e.masks[0, 0]
    assert float(mask[:32, :32].sum() / mask.sum()) >= 0.9
    assert e.p_deleted[0] < 0.5 * e.p_original[0]
    assert {k: e.params[k] for k in options} == options


def test_batch_of_four_equals_four_batches_of_one(quadrant_model):
    images = quadrant_images(4, seed=3)
    images[1] = images[1].flip(-1)  # different images, so per-image results differ
    images[2] = images[2] * 0.7
    settings = dict(TINY_SETTINGS, iterations=30)
    batched = ms.meaningful_perturbation(quadrant_model, images, target=0, **settings)
    single = [
        ms.meaningful_perturbation(quadrant_model, images[i : i + 1], target=0, **settings) for i in range(4)
    ]
    for i, one in enumerate(single):
        assert torch.allclose(batched.masks[i], one.masks[0], atol=1e-4)
        assert torch.allclose(batched.history[:, i], one.history[:, 0], atol=1e-4)


def test_model_is_left_as_found(quadrant_model):
    quadrant_model.train()
    quadrant_model.bias.requires_grad_(False)
    before = {k: v.clone() for k, v in quadrant_model.state_dict().items()}
    ms.crisp_mask(
        quadrant_model,
        quadrant_images(1),
        target=0,
        settings=Settings(iterations=5, mask_scale=4, l1=0.01 * 256 / 784),
        crisp_iterations=5,
    )
    assert quadrant_model.training
    assert quadrant_model.scale.requires_grad and not quadrant_model.bias.requires_grad
    assert quadrant_model.scale.grad is None
    for k, v in quadrant_model.state_dict().items():
        assert torch.equal(v, before[k])
    for module in quadrant_model.modules():
        assert not module._forward_hooks and not module._backward_hooks and not module._forward_pre_hooks


def test_uniform_init_and_masks_in_unit_range(quadrant_model):
    e = ms.meaningful_perturbation(
        quadrant_model,
        quadrant_images(2),
        target=[0, 0],
        init="uniform",
        iterations=10,
        jitter=0,
        mask_scale=4,
        l1=0.01 * 256 / 784,
    )
    assert e.masks.shape == (2, 1, 64, 64)
    assert float(e.masks.min()) >= 0 and float(e.masks.max()) <= 1
    assert e.targets.tolist() == [[0], [0]]


@pytest.mark.parametrize(
    "kwargs, error",
    [
        (dict(iterations=0), ConfigError),
        (dict(iterations=-3), ConfigError),
        (dict(game="swap"), ConfigError),
        (dict(preset="nope"), ConfigError),
        (dict(perturbation="sharpen"), ConfigError),
        (dict(target=5), TargetError),
        (dict(init="square"), ConfigError),
    ],
)
def test_bad_options_raise_typed_errors(quadrant_model, kwargs, error):
    with pytest.raises(error):
        ms.meaningful_perturbation(quadrant_model, quadrant_images(1), **{"target": 0, **kwargs})


def test_circle_init_is_smallest_suppressing_circle():
    """A model that only looks at the centre: the init is the smallest centred disc whose deletion
    reaches 99 % of the full perturbation's suppression, and the next smaller disc does not."""
    from maskscope.masks import circle_masks, upsample_mask
    from maskscope.methods.meaningful import circle_init
    from maskscope.methods.optimise import resolve_settings
    from maskscope.objectives import class_score

    model = QuadrantClassifier().eval()
    centre = torch.zeros_like(model.weight)
    centre[..., 24:40, 24:40] = model.weight[..., :16, :16]
    model.weight.copy_(centre / centre.abs().sum() * 40.0)
    blackbox = ms.as_blackbox(model)
    x = quadrant_images(1)
    apply = ms.get_perturbation("blur").prepare(x)
    targets = torch.tensor([[0]])
    settings = resolve_settings("fong2017", mask_sigma=1.5)
    params = circle_init(blackbox, apply, x, targets, "delete", settings, (16, 16))
    radii = torch.linspace(1 / 16, 1, 16)
    chosen = [r for r in range(16) if torch.equal(circle_masks(radii[r : r + 1], (16, 16)), params)]
    assert chosen and 0 < chosen[0] < 15

    @torch.no_grad()
    def p_without(r: int) -> float:
        salient = upsample_mask(circle_masks(radii[r : r + 1], (16, 16)), (64, 64), 1.5)
        return float(class_score(blackbox(apply(1 - salient)), targets))

    with torch.no_grad():
        p0 = float(class_score(blackbox(x), targets))
        p_ref = float(class_score(blackbox(apply(torch.zeros(1, 1, 64, 64))), targets))
    goal = p_ref + 0.01 * (p0 - p_ref)
    assert p_without(chosen[0]) <= goal < p_without(chosen[0] - 1)
