"""The adversarial analysis on models whose answers are known by hand."""

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from maskscope.analysis.adversarial import (
    analyse,
    attack_iterations,
    detection_accuracy,
    iterative_fgsm,
    label_recovery,
)
from maskscope.analysis.adversarial_report import markdown
from maskscope.blackbox import BlackBox
from maskscope.cli.main import main
from maskscope.errors import ConfigError, DataError
from maskscope.perturb import Constant


class RedVsRest(nn.Module):
    """logit0 − logit1 = 40 (mean red − 0.5): class 0 exactly when the red mean exceeds 0.5, and the
    gradient of class 0's loss lies on the red channel only, with the same sign everywhere."""

    def __init__(self) -> None:
        super().__init__()
        self.gain = nn.Parameter(torch.tensor(40.0))
        self.frozen = nn.Parameter(torch.tensor(0.0), requires_grad=False)
        self.bn = nn.BatchNorm1d(1)  # its mode must come back as it was

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.gain * (x[:, 0].mean(dim=(1, 2)) - 0.5) + self.frozen
        return torch.stack([s, -s], dim=1) / 2


def near_boundary(n: int = 6, margin: float = 0.02) -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(n, 3, 16, 16, generator=gen) * 0.2 + 0.4
    x[:, 0] += 0.5 + margin - x[:, 0].mean(dim=(1, 2), keepdim=True)  # red mean 0.5 + margin: class 0
    return x


def test_kurakin_schedule():
    assert attack_iterations(8) == 10  # min(8 + 4, 10)
    assert attack_iterations(16) == 20 and attack_iterations(2) == 3 and attack_iterations(0.5) == 1


def test_attack_flips_the_label_within_epsilon_and_leaves_the_model_untouched():
    net = RedVsRest()
    net.train()
    model = BlackBox(net, input_size=None, mean=(0, 0, 0), std=(1, 1, 1))
    before = {k: v.clone() for k, v in net.state_dict().items()}
    x = near_boundary()
    attack = iterative_fgsm(model, x, epsilon=8, batch_size=4)
    assert attack.iterations == 10
    assert attack.clean_labels.tolist() == [0] * 6 and attack.adversarial_labels.tolist() == [1] * 6
    delta = attack.adversarial - x
    assert delta.abs().max() <= 8 / 255 + 1e-6
    # the loss gradient is negative on red and zero elsewhere: red drops by exactly ε, the rest stays
    torch.testing.assert_close(attack.adversarial[:, 0], (x[:, 0] - 8 / 255).clamp(0, 1))
    torch.testing.assert_close(attack.adversarial[:, 1:], x[:, 1:])
    assert net.training and net.bn.training
    assert net.gain.requires_grad and not net.frozen.requires_grad
    assert net.gain.grad is None and net.frozen.grad is None
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_a_smaller_epsilon_can_fail():
    model = BlackBox(RedVsRest(), input_size=None, mean=(0, 0, 0), std=(1, 1, 1))
    attack = iterative_fgsm(model, near_boundary(margin=0.05), epsilon=4)  # 4/255 < the 0.05 margin
    assert not attack.changed.any()
    with pytest.raises(ConfigError):
        iterative_fgsm(model, near_boundary(), epsilon=0)


def blob_masks(n: int, left: bool, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    m = torch.rand(n, 1, 28, 28, generator=gen) * 0.3
    if left:
        m[..., 8:20, 2:12] += 0.7
    else:
        m[..., 8:20, 16:26] += 0.7
    return m


def test_detector_separates_separable_masks_and_not_identical_ones():
    clean, adversarial = blob_masks(10, True, 0), blob_masks(10, False, 1)
    assert detection_accuracy(clean, adversarial)["accuracy"] == 1.0
    # the same mask twice per image: every fold sees each image's pair predicted alike, so 50 % exactly
    same = detection_accuracy(clean, clean.clone())
    assert same["accuracy"] == 0.5 and same["folds"] == 5
    with pytest.raises(DataError):
        detection_accuracy(clean[:3], adversarial[:3])


def test_label_recovery_counts_the_clean_and_true_labels():
    model = BlackBox(RedVsRest(), input_size=None, mean=(0, 0, 0), std=(1, 1, 1))
    adversarial = near_boundary(4, margin=-0.02)  # red mean 0.48: class 1
    # deleting with a red fill (1, 0, 0) over the whole image flips it back to class 0
    whole = torch.ones(4, 1, 16, 16)
    r = label_recovery(model, adversarial, whole, Constant((1.0, 0.0, 0.0)), torch.zeros(4, dtype=torch.long),
                       truth=torch.tensor([0, 1, -1, 0]))
    assert r["clean_top1"] == 1.0 and r["clean_top5"] == 1.0
    assert r["labelled"] == 3 and r["truth_top1"] == pytest.approx(2 / 3)
    nothing = label_recovery(model, adversarial, torch.zeros(4, 1, 16, 16), Constant((1.0, 0.0, 0.0)),
                             torch.zeros(4, dtype=torch.long))
    assert nothing["clean_top1"] == 0.0 and nothing["truth_top1"] is None


def test_analyse_end_to_end_on_the_tiny_model():
    model = BlackBox(RedVsRest(), input_size=None, mean=(0, 0, 0), std=(1, 1, 1), class_names=["red", "rest"])
    x = near_boundary(6)
    result = analyse(model, x, ["center", "full"], truth=torch.zeros(6, dtype=torch.long))
    a = result.report["attack"]
    assert a["changed"] == 6 and a["success_rate"] == 1.0 and a["max_linf_255"] <= 8.0 + 1e-4
    assert a["clean_accuracy"] == 1.0 and a["adversarial_accuracy"] == 0.0
    # the centre box and the full image do not depend on the image: the detector is at chance
    assert result.report["detection"]["center"]["accuracy"] == 0.5
    assert set(result.report["recovery"]) == {"center", "full", "(whole image blurred)"}
    assert result.report["images"][0]["adversarial_name"] == "rest"
    assert "| center |" in markdown(result.report)


@pytest.fixture
def folder(tmp_path):
    rng = np.random.default_rng(0)
    for i in range(2):
        Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(tmp_path / f"p{i}.png")
    return tmp_path


@pytest.mark.parametrize("argv, expected", [
    (["--epsilon", "0"], "argument --epsilon: must be a positive number, got 0"),
    (["--epsilon", "-8"], "argument --epsilon: must be a positive number, got -8"),
    (["--methods", "nope"], "unknown method 'nope'"),
    ([], "2 image(s); the detector needs at least 4"),
])
def test_bad_input_is_one_line_and_exit_2(folder, tmp_path, capsys, argv, expected):
    code = main(["adversarial", str(folder), "--out", str(tmp_path / "o"), *argv])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("maskscope: error:") and expected in err[0]
