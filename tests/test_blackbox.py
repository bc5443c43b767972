
import pytest
import torch
from fixtures import Linear, random_photo
from fixtures import own_error_line as one_line
from torch import nn

from maskscope import BlackBox, TargetError, as_blackbox
from maskscope.cli.main import main


@pytest.fixture
def blackbox():
    torch.manual_seed(0)
    return BlackBox(Linear(), input_size=(16, 16), class_names=["tabby, tabby cat", "dog", "car", "cup", "x"])


def test_resolves_every_target_form(blackbox):
    x = torch.rand(3, 3, 20, 20)
    # the shape Captum takes as a target: (B,) int64, and (B, K) for the K best classes
    assert blackbox.resolve_targets(x, 2).tolist() == [2] * 3
    assert blackbox.resolve_targets(x, "tabby cat").tolist() == [0] * 3
    assert blackbox.resolve_targets(x, "Dog").tolist() == [1] * 3
    assert blackbox.resolve_targets(x, [0, 1, 4]).tolist() == [0, 1, 4]
    assert blackbox.resolve_targets(x, torch.tensor([3, 3, 1])).tolist() == [3, 3, 1]
    top1 = blackbox.resolve_targets(x, "top1")
    assert top1.dtype == torch.int64 and torch.equal(top1, blackbox(x).argmax(1))
    top3 = blackbox.resolve_targets(x, "top3")
    assert top3.shape == (3, 3) and torch.equal(top3[:, 0], top1)


@pytest.mark.parametrize("bad", [5, -1, "zebra", [0, 1], "top9"])
def test_bad_targets_raise(blackbox, bad):
    with pytest.raises(TargetError):
        blackbox.resolve_targets(torch.rand(3, 3, 16, 16), bad)


def test_preprocessing_resizes_and_normalises():
    seen = {}

    def model(x):
        seen["x"] = x
        return x.mean(dim=(2, 3))

    bb = BlackBox(model, input_size=(8, 8), mean=(0.5,) * 3, std=(0.5,) * 3)
    bb(torch.ones(2, 3, 32, 32))
    assert seen["x"].shape == (2, 3, 8, 8) and torch.allclose(seen["x"], torch.ones(2, 3, 8, 8))


def test_bare_model_sees_images_unchanged():
    bb = as_blackbox(nn.Identity())
    x = torch.rand(1, 3, 5, 5)
    assert torch.equal(bb.preprocess(x), x)


def test_evaluating_restores_modes():
    model = nn.Sequential(nn.Conv2d(3, 3, 1), nn.BatchNorm2d(3)).train()
    model[0].eval()
    bb = BlackBox(model, input_size=None)
    with bb.evaluating():
        assert not any(m.training for m in model.modules())
    assert model.training and model[1].training and not model[0].training


def test_check_target_is_the_one_early_target_check(blackbox):
    assert blackbox.check_target(None) is None
    assert blackbox.check_target(" Top3 ") == "top3"
    assert blackbox.check_target("tabby cat") == 0 and blackbox.check_target("4") == 4
    for bad in ("top6", "top0", 5, "-1", "unicorn"):
        with pytest.raises(TargetError):
            blackbox.check_target(bad)


@pytest.mark.parametrize("name, expected", [("crane", ["134 (crane)", "517 (crane)"]),
                                            ("panda", ["387 (lesser panda)", "388 (giant panda)"])])
def test_ambiguous_class_names_list_the_candidates(tmp_path, name, expected, capsys):
    """Fault: explain: --target crane or panda (names of several classes) — lists the candidates and stops."""
    from maskscope.blackbox import BlackBox
    from maskscope.errors import TargetError
    from maskscope.zoo import imagenet_class_names

    bb = BlackBox(lambda x: x.flatten(1)[:, :1000], class_names=imagenet_class_names())
    with pytest.raises(TargetError, match="ambiguous") as err:
        bb.check_target(name)
    assert all(e in str(err.value) for e in expected)
    assert bb.check_target("giant panda") == 388 and bb.check_target("maillot") == 638  # full names
    assert bb.check_target("tank suit") == 639 and bb.check_target(517) == 517
    photo = random_photo(tmp_path / "p.png")
    assert main(["explain", str(photo), "--target", name, "--out", str(tmp_path / "o")]) == 2
    line = one_line(capsys)
    assert all(e in line for e in expected) and "give the index" in line
    assert not (tmp_path / "o").exists()  # nothing written: the folder it created is removed again
