import pytest
import torch
from fixtures import QuadrantClassifier, quadrant_images

import maskscope as ms
from maskscope.cli.main import main
from maskscope.errors import ConfigError
from maskscope.methods.extremal import combine_areas
from maskscope.methods.smooth_max import SmoothMaxMasks
from maskscope.objectives import ranking_penalty, ranking_template

# a 16×16 parameter grid (step 14 px at 224) keeps the toy runs fast; flip jitter off, because the
# quadrant classifier is not mirror-symmetric (its checkerboard inverts under a left-right flip)
FAST = dict(step=14.0, flip=False)


@pytest.fixture(scope="module")
def strong_quadrant():
    """The quadrant classifier with a logit gain of 5: the toy's raw logit (gain 1) moves by ~16 over
    the whole quadrant, too little against the ranking penalty's weight of 300 to pick a region."""
    model = QuadrantClassifier().eval()
    with torch.no_grad():
        model.scale.fill_(5.0)
    return model


@pytest.fixture(scope="module")
def quadrant_run(strong_quadrant):
    torch.set_num_threads(1)
    return ms.extremal_perturbation(
        strong_quadrant, quadrant_images(1), target=0, areas=(0.05, 0.1), **FAST
    )


def test_rows_are_image_major_with_areas(quadrant_run):
    e = quadrant_run
    assert e.masks.shape == (2, 1, 64, 64)
    assert e.image_index.tolist() == [0, 0]
    assert torch.allclose(e.requested_area, torch.tensor([0.05, 0.1]))
    assert e.params["areas"] == [0.05, 0.1] and e.method == "extremal"


def test_quadrant_model_gets_its_mask_on_its_quadrant(quadrant_run):
    for r in range(len(quadrant_run)):
        mask = quadrant_run.masks[r, 0]
        assert float(mask[:32, :32].sum() / mask.sum()) >= 0.9
        assert float(mask.max()) > 0.95
        assert quadrant_run.p_preserved[r] > 0.9 * quadrant_run.p_original[r]


def test_quadrant_model_gets_a_near_binary_mask(quadrant_run):
    for r in range(len(quadrant_run)):
        mask = quadrant_run.masks[r, 0]
        # mostly 0 or 1: a core at 1 over at least half the area, and only the family's own
        # σ-wide edge (a ring ~6 px wide here) in between
        a = float(quadrant_run.requested_area[r])
        assert float((mask >= 0.9).float().mean()) >= 0.5 * a
        assert float(((mask > 0.1) & (mask < 0.9)).float().mean()) < 0.16
        assert float((mask <= 0.1).float().mean()) >= 1 - a - 0.16


def test_ranking_penalty_gives_the_requested_area(quadrant_run):
    for r in range(len(quadrant_run)):
        mask = quadrant_run.masks[r, 0]
        a = float(quadrant_run.requested_area[r])
        assert abs(float((mask >= 0.5).float().mean()) - a) <= 0.02


def test_ranking_penalty_is_zero_exactly_for_a_binary_mask_of_the_area():
    mask = torch.zeros(1, 1, 10, 10)
    mask[..., :2, :5] = 1  # 10 % of the pixels
    template = ranking_template(100, torch.tensor([0.1]))
    assert float(ranking_penalty(mask, template)) == 0.0
    assert float(ranking_penalty(mask * 0.5, template)) == pytest.approx(10 * 0.25 / 100)


def test_smooth_max_family_is_flat_at_one_and_close_to_exact_evaluation():
    params = torch.zeros(2, 1, 32, 32)
    params[0, 0, 8:20, 6:14] = 1
    params[1] = torch.rand(1, 32, 32, generator=torch.Generator().manual_seed(0))
    # 7 lattice points per 7-px cell = pixels; the default σ = 10.5 px field changes twice as fast
    # as the paper's σ = 21 px one, so the 3.5-px lattice is a little less exact there
    for form, sigma, coldness, worst in (("paper", 21.0, 20.0, 0.06), ("normalised", 10.5, 10.0, 0.1)):
        lattice = SmoothMaxMasks((224, 224), sigma=sigma, coldness=coldness, form=form)(params)
        exact = SmoothMaxMasks((224, 224), sigma=sigma, coldness=coldness, form=form, substeps=7)(params)
        assert float((lattice - exact).abs().max()) < worst and float((lattice - exact).abs().mean()) < 0.005
    # the normalised smooth max is a convex combination of the parameters: a block of ones is
    # exactly 1 inside, a constant field maps to itself, and far from the block the mask is 0
    assert float(exact[0, 0, 90:110, 60:80].min()) == pytest.approx(1.0, abs=1e-6)
    assert float(exact[0, 0, 200:, 200:].max()) < 1e-3
    for value in (0.0, 0.3, 0.5, 1.0):
        uniform = SmoothMaxMasks((64, 64))(torch.full((1, 1, 32, 32), value))
        assert float((uniform - value).abs().max()) < 1e-5  # no border effect, no damping


def test_paper_smooth_max_plateau_is_below_one():
    """The plain smooth max of p·K (``form="paper"``, σ = 21 px) is flat but at 0.947, not 1: the
    kernel values around any pixel are all below 1 and the smooth max averages them. This is why
    the default form is the normalised one (the ranking penalty's template is exact 0s and 1s)."""
    params = torch.zeros(1, 1, 32, 32)
    params[0, 0, 8:20, 6:14] = 1
    mask = SmoothMaxMasks((224, 224), sigma=21.0, coldness=20.0, form="paper", substeps=7)(params)
    plateau = mask[0, 0, 90:110, 60:80]
    assert 0.94 < float(plateau.min()) < 0.95 and float(plateau.std()) < 1e-3


def test_normalised_smooth_max_gradient():
    from maskscope.methods.smooth_max import _KernelSmoothMax

    gen = torch.Generator().manual_seed(1)
    cold = torch.rand(1, 4, 9, 1, dtype=torch.double, generator=gen) * 10
    weight = torch.rand(1, 4, 9, 1, dtype=torch.double, generator=gen)
    params = torch.rand(2, 9, 5, dtype=torch.double, generator=gen).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda p: _KernelSmoothMax.apply(p, cold, weight), (params,))


def test_batch_equals_singles(strong_quadrant):
    images = quadrant_images(4, seed=3)
    images[1] = images[1].flip(-2)
    images[2] = images[2] * 0.7
    options = dict(areas=(0.05, 0.2), iterations=15, **FAST)
    batched = ms.extremal_perturbation(strong_quadrant, images, target=[0, 0, 1, 0], **options)
    assert batched.masks.shape[0] == 8
    assert batched.targets[:, 0].tolist() == [0, 0, 0, 0, 1, 1, 0, 0]
    for i in range(4):
        one = ms.extremal_perturbation(strong_quadrant, images[i : i + 1], target=[0, 0, 1, 0][i], **options)
        assert torch.allclose(batched.masks[2 * i : 2 * i + 2], one.masks, atol=1e-4)
        assert torch.allclose(batched.history[:, 2 * i : 2 * i + 2], one.history, atol=1e-3)


def test_model_is_left_as_found():
    model = QuadrantClassifier()
    model.train()
    model.bias.requires_grad_(False)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    ms.extremal_perturbation(model, quadrant_images(1), target=0, iterations=3, game="dual", step=14.0)
    assert model.training
    assert model.scale.requires_grad and not model.bias.requires_grad
    assert model.scale.grad is None and model.bias.grad is None
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k])
    for module in model.modules():
        assert not module._forward_hooks and not module._backward_hooks and not module._forward_pre_hooks


@pytest.mark.parametrize("game", ["delete", "dual"])
def test_other_games_run_and_keep_masks_in_range(strong_quadrant, game):
    e = ms.extremal_perturbation(strong_quadrant, quadrant_images(1), target=0, areas=0.1, game=game,
                                 iterations=5, **FAST)
    assert e.masks.shape == (1, 1, 64, 64) and e.params["game"] == game
    assert float(e.masks.min()) >= 0 and float(e.masks.max()) <= 1


@pytest.mark.parametrize("options", [dict(score="log-odds"), dict(score="prob", perturbation="fixed-blur"),
                                     dict(perturbation="constant")])
def test_scores_and_perturbations_find_the_quadrant(strong_quadrant, options):
    """Every score and operator still deletes the quadrant that holds the evidence (top-left)."""
    e = ms.extremal_perturbation(strong_quadrant, quadrant_images(1), target=0, areas=0.2, game="delete",
                                 **FAST, **options)
    mask = e.masks[0, 0]
    assert float(mask[:32, :32].mean()) > 3 * float(mask[32:, 32:].mean())
    assert e.params["score"] == options.get("score", "logit")
    assert e.params["perturbation"] == options.get("perturbation", "fixed-blur")


def test_combined_mask_is_one_per_image_in_unit_range(quadrant_run):
    combined = combine_areas(quadrant_run)
    assert combined.shape == (1, 1, 64, 64)
    assert 0 <= float(combined.min()) and float(combined.max()) <= 1
    peak = divmod(int(combined[0, 0].argmax()), 64)
    assert peak[0] < 32 and peak[1] < 32


@pytest.mark.parametrize(
    "kwargs",
    [dict(areas=(0.1, 1.0)), dict(areas=0.0), dict(areas=()), dict(areas=(-0.2,)), dict(game="both"),
     dict(iterations=0), dict(areas=float("nan")), dict(recipe="fastest"), dict(optimiser="lbfgs"),
     dict(form="sum"), dict(penalty_end=-1.0), dict(init=1.5), dict(init=float("nan")), dict(score="odds"),
     dict(perturbation="smudge")],
)
def test_bad_options_raise_config_error(strong_quadrant, kwargs):
    with pytest.raises(ConfigError):
        ms.extremal_perturbation(strong_quadrant, quadrant_images(1), target=0, **kwargs)


@pytest.mark.parametrize("area", ["1.5", "0", "0.1,-0.1", "abc"])
def test_cli_area_outside_unit_interval_exits_2(tmp_path, capsys, area):
    code = main(["explain", str(tmp_path / "x.png"), "--method", "extremal", "--area", area,
                 "--out", str(tmp_path / "o")])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "area" in err[0]


@pytest.mark.parametrize("area", ["1.5", "0"])
def test_evaluate_cli_area_outside_unit_interval_exits_2(tmp_path, capsys, area):
    code = main(["evaluate", "--data", str(tmp_path), "--methods", "extremal", "--area", area,
                 "--out", str(tmp_path / "o")])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "area" in err[0]


def test_evaluate_cli_area_without_extremal_exits_2(tmp_path, capsys):
    (tmp_path / "x.png").write_bytes(b"")
    code = main(["evaluate", "--data", str(tmp_path), "--methods", "center", "--area", "0.1",
                 "--out", str(tmp_path / "o")])
    assert code == 2
    assert "extremal" in capsys.readouterr().err


def test_cli_area_with_another_method_exits_2(tmp_path, capsys):
    from PIL import Image

    Image.new("RGB", (32, 32)).save(tmp_path / "x.png")
    code = main(["explain", str(tmp_path / "x.png"), "--method", "gradient", "--area", "0.1",
                 "--out", str(tmp_path / "o")])
    assert code == 2
    assert "extremal" in capsys.readouterr().err


def test_saved_rows_and_area_figure(quadrant_run, tmp_path):
    records = quadrant_run.save(tmp_path)
    assert [r["requested_area"] for r in records] == [0.05, 0.1]
    assert (tmp_path / "image_0000_area0.05.npy").exists() and (tmp_path / "image_0000_area0.1.npy").exists()
    assert (tmp_path / "image_0000_areas.png").exists()
    assert records[0]["files"]["figure"] == "image_0000_areas.png"


def test_recipes_name_their_operator_and_keywords_override_them():
    """``fast`` blends one σ = 10 blur, ``pyramid`` and ``paper`` use the paper's pyramid to σ = 20;
    a keyword beats the recipe, and the explanation records what was used."""
    from maskscope.methods.extremal import RECIPES, extremal_settings

    assert (RECIPES["fast"].perturbation, RECIPES["fast"].blur_sigma) == ("fixed-blur", 10.0)
    for name in ("pyramid", "paper"):
        assert (RECIPES[name].perturbation, RECIPES[name].blur_sigma) == ("blur", 20.0)
    assert extremal_settings("pyramid", perturbation="constant").perturbation == "constant"
    e = ms.extremal_perturbation(QuadrantClassifier().eval(), quadrant_images(1), target=0, areas=0.1,
                                 recipe="pyramid", iterations=2, **FAST)
    assert (e.params["perturbation"], e.params["blur_sigma"], e.params["recipe"]) == ("blur", 20.0, "pyramid")
    assert isinstance(e.perturbation, ms.perturb.Blur)
