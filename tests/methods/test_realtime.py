"""Real-time saliency: masking model, objective, checkpoints, inference (fast, tiny models)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import torch
from torch import nn

from maskscope.blackbox import BlackBox
from maskscope.cli.main import main
from maskscope.errors import CheckpointError
from maskscope.explanation import Explanation
from maskscope.methods import get_method
from maskscope.methods.realtime import (
    RealTimeMasker,
    Weights,
    build_masker,
    export_weights,
    load_masker,
    masker_config,
    realtime_loss,
    realtime_saliency,
    shipped_masker_path,
)
from maskscope.methods.realtime.model import FrozenBackbone
from maskscope.methods.realtime.objective import alternative_images, draw_selectors

TINY_MODULE = textwrap.dedent(
    """
    import torch
    from torch import nn
    from maskscope.blackbox import BlackBox

    def tiny(classes=5, name="tiny"):
        torch.manual_seed(0)
        net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(4), nn.Flatten(),
                            nn.Linear(128, classes))
        return BlackBox(net, input_size=(32, 32), mean=(0.5,) * 3, std=(0.25,) * 3,
                        class_names=[f"c{i}" for i in range(classes)], name=name)

    def tiny7():
        return tiny(classes=7)

    def other():
        return tiny(name="other")
    """
)


pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_blackbox(classes: int = 5, name: str = "tiny") -> BlackBox:
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(4),
        nn.Flatten(),
        nn.Linear(128, classes),
    )
    return BlackBox(
        net,
        input_size=(32, 32),
        mean=(0.5,) * 3,
        std=(0.25,) * 3,
        class_names=[f"c{i}" for i in range(classes)],
        name=name,
    )


def tiny_masker(bb: BlackBox) -> RealTimeMasker:
    torch.manual_seed(1)
    return build_masker(bb, masker_config(bb, "small"))


def test_masks_shape_range_and_selector_dependence():
    bb = tiny_blackbox()
    masker = tiny_masker(bb).eval()
    x = torch.rand(3, 3, 48, 40)
    with torch.no_grad():
        masks, attention = masker(x, torch.tensor([0, 1, 2]))
    assert masks.shape == (3, 1, 48, 40) and attention.shape == (3,)
    assert float(masks.min()) >= 0 and float(masks.max()) <= 1
    with torch.no_grad():
        other, _ = masker(x, torch.tensor([3, 3, 3]))
        alone, _ = masker(x[1:2], torch.tensor([1]))
    assert not torch.allclose(masks, other)  # the class selector reaches the mask
    # GroupNorm, no batch statistics: an image's mask does not depend on its batch
    assert torch.allclose(alone, masks[1:2], atol=1e-5)


def test_two_channel_output_is_ratio_of_magnitudes():
    bb = tiny_blackbox()
    masker = tiny_masker(bb).eval()
    with torch.no_grad():
        masker.decoder.head.weight.zero_()
        masker.decoder.head.bias.copy_(torch.tensor([-3.0, 1.0]))  # |C0| = 3, |C1| = 1 → M = 0.75
    masks, _ = masker(torch.rand(2, 3, 32, 32), torch.tensor([0, 1]))
    assert torch.allclose(masks, torch.full_like(masks, 0.75), atol=1e-4)


def test_frozen_backbone_leaves_model_untouched():
    net = nn.Sequential(nn.Conv2d(3, 4, 3, stride=4, padding=1), nn.Dropout(0.5))
    net.train()

    def extract(x):
        f4 = net(x)
        return [f4, nn.functional.avg_pool2d(f4, 2)]

    enc = FrozenBackbone(net, extract, lambda x: x, [4, 4], strides=[4, 8])
    masker = RealTimeMasker(enc, num_classes=3, widths=[8], blocks=1, input_size=None)
    assert all(not k.startswith("encoder") for k in masker.state_dict())  # only learned weights
    masker.train()
    masks, att = masker(torch.rand(2, 3, 32, 32), torch.tensor([0, 2]))
    (masks.mean() + att.mean()).backward()
    assert net.training and all(m.training for m in net.modules())  # mode restored
    assert all(p.requires_grad and p.grad is None for p in net.parameters())  # no flag flipped, no grad
    assert all(p.grad is not None for p in masker.decoder.parameters() if p.requires_grad)


def test_alternative_images_and_selectors_are_random_but_seeded():
    x = torch.rand(64, 3, 16, 16)
    w = Weights()
    a1 = alternative_images(x, torch.Generator().manual_seed(3), w)
    a2 = alternative_images(x, torch.Generator().manual_seed(3), w)
    assert torch.equal(a1, a2) and float(a1.min()) >= 0 and float(a1.max()) <= 1
    gen = torch.Generator().manual_seed(0)
    assert not torch.equal(alternative_images(x, gen, w), alternative_images(x, gen, w))  # new each call
    labels = torch.randint(0, 10, (2000,))
    sel, fake = draw_selectors(labels, 10, torch.Generator().manual_seed(0), 0.3)
    assert 0.25 < float(fake.float().mean()) < 0.35
    assert bool((sel[fake] != labels[fake]).all()) and bool((sel[~fake] == labels[~fake]).all())


def test_fake_selectors_get_area_term_only():
    bb = tiny_blackbox()
    x = torch.rand(4, 3, 32, 32)
    masks = torch.rand(4, 1, 32, 32, requires_grad=True)
    attention = torch.zeros(4)
    fake = torch.ones(4, dtype=torch.bool)
    w = Weights(aux=0.0)
    loss, _ = realtime_loss(
        bb, x, masks, torch.tensor([0, 1, 2, 3]), fake, attention, torch.Generator().manual_seed(0), w
    )
    assert torch.allclose(loss, w.area * masks.mean(), atol=1e-6)
    real_loss, terms = realtime_loss(
        bb, x, masks, torch.tensor([0, 1, 2, 3]), ~fake, attention, torch.Generator().manual_seed(0), w
    )
    assert terms["preserve"] > 0 and terms["destroy"] > 0 and float(real_loss.detach()) > float(loss.detach())


def test_paper_literal_weights_favour_the_full_mask():
    """Why the default swaps λ1/λ2: with TV 10, area 1e-3 keeping everything beats a smaller mask."""
    bb = tiny_blackbox()
    x = torch.rand(8, 3, 32, 32)
    half = torch.zeros(8, 1, 32, 32)
    half[..., 8:24, 8:24] = 1
    full = torch.ones(8, 1, 32, 32)
    real = torch.zeros(8, dtype=torch.bool)
    att = torch.zeros(8)
    labels = bb(x).argmax(1)

    def loss(m, w):
        with torch.no_grad():
            return float(realtime_loss(bb, x, m, labels, real, att, torch.Generator().manual_seed(0), w)[0])

    literal = Weights.paper_literal()
    assert loss(full, literal) < loss(half, literal)
    assert loss(full, Weights()) > loss(half, Weights())  # the default weights make the mask shrink


def test_checkpoint_roundtrip_and_rejections(tmp_path: Path):
    bb = tiny_blackbox()
    masker = tiny_masker(bb)
    path = export_weights(masker, tmp_path / "m.pt", half=False)
    loaded = load_masker(bb, path)
    x, sel = torch.rand(2, 3, 32, 32), torch.tensor([1, 4])
    assert torch.allclose(loaded(x, sel)[0], masker.eval()(x, sel)[0], atol=1e-6)
    with pytest.raises(CheckpointError, match="classifier 'tiny', not 'other'"):
        load_masker(tiny_blackbox(name="other"), path)
    with pytest.raises(CheckpointError, match="5 classes"):
        load_masker(tiny_blackbox(classes=7), path)
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(path.read_bytes()[:200])
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_masker(bb, corrupt)
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_masker(bb, tmp_path / "missing.pt")
    pickled = tmp_path / "pickled.pt"
    torch.save({"config": masker.config, "model": masker.state_dict(), "evil": object()}, pickled)
    with pytest.raises(CheckpointError):  # weights_only=True refuses arbitrary objects
        load_masker(bb, pickled)


def test_realtime_saliency_returns_explanation(tmp_path: Path):
    bb = tiny_blackbox()
    path = export_weights(tiny_masker(bb), tmp_path / "m.pt")
    x = torch.rand(3, 3, 40, 36)
    exp = get_method("realtime")(bb, x, target=[0, 1, 2], masker=str(path))
    assert isinstance(exp, Explanation) and exp.method == "realtime"
    assert exp.masks.shape == (3, 1, 40, 36) and exp.targets[:, 0].tolist() == [0, 1, 2]
    assert exp.p_original is not None and exp.p_deleted.shape == (3,)
    again = realtime_saliency(bb, x, target="top1", masker=load_masker(bb, path))
    assert again.targets[:, 0].tolist() == bb(x).argmax(1).tolist()


@pytest.mark.parametrize("case", ["foreign", "corrupt"])
def test_cli_explain_bad_checkpoint_exits_2(tmp_path: Path, case: str, capsys, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "tinymods.py").write_text(TINY_MODULE)
    bb = tiny_blackbox()
    path = export_weights(tiny_masker(bb), tmp_path / "m.pt")
    if case == "corrupt":
        path.write_bytes(b"not a checkpoint")
    video = tmp_path / "missing.mp4"  # never reached: the checkpoint is checked first
    spec = "tinymods:other" if case == "foreign" else "tinymods:tiny"
    code = main(
        [
            "explain-video",
            str(video),
            "--out",
            str(tmp_path / "o.mp4"),
            "--classifier",
            spec,
            "--masker",
            str(path),
            "--quiet",
        ]
    )
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and err.startswith("maskscope: error:")
    assert ("not a readable checkpoint" in err) if case == "corrupt" else ("trained for classifier" in err)


def test_shipped_masker_for_default_classifier():
    """The shipped masker loads onto the default classifier and gives a real mask on real photos (a
    part of the image, not a constant, different per photo), and an almost empty one for a class
    that is not in the photo (the selector is read: Dabkowski & Gal's fake-selector behaviour)."""
    from maskscope.data.photos import demo_photos
    from maskscope.images import resize_image, to_tensor
    from maskscope.zoo import load_classifier

    assert shipped_masker_path("efficientnet-lite0").is_file()
    bb = load_classifier()
    masker = load_masker(bb)
    photos = demo_photos()
    x = torch.stack([resize_image(to_tensor(photos[name][..., :3]), (224, 224))
                     for name in ("chelsea", "coffee")])
    with torch.no_grad():
        top1 = bb(x).argmax(1)
    exp = realtime_saliency(bb, x, target=top1.tolist(), masker=masker, scores=False)
    assert exp.masks.shape == (2, 1, 224, 224)
    area = exp.masks.mean((1, 2, 3))
    assert ((area > 0.05) & (area < 0.9)).all(), area
    assert exp.masks.flatten(1).std(1).min() > 0.05  # not a constant map
    assert (exp.masks[0] - exp.masks[1]).abs().mean() > 0.02
    absent = realtime_saliency(bb, x, target=[779, 779], masker=masker, scores=False)  # school bus
    assert (absent.masks.mean((1, 2, 3)) * 5 < area).all()


def test_realtime_saliency_with_the_shipped_masker_leaves_the_global_rng_alone():
    """Fault: API: realtime_saliency(masker=None) with the shipped masker — the global RNG is unchanged."""
    from maskscope.zoo import load_classifier

    bb = load_classifier()
    images = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    torch.manual_seed(123)
    state = torch.get_rng_state()
    explanation = realtime_saliency(bb, images, masker=None, scores=False)
    assert torch.equal(torch.get_rng_state(), state)
    assert explanation.masks.shape == (1, 1, 64, 64)
