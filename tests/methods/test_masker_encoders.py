"""The masker's encoder read from the user's own model: a CNN's stages, a transformer's token grid
at several depths, layers named by the user; the model left as it was; the shipped EfficientNet
masker unchanged; and known answers: trained for seconds, the masker finds the evidence quadrant."""

from __future__ import annotations

import copy
import hashlib
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from fixtures import checkerboard
from PIL import Image
from torch import nn

from maskscope.blackbox import BlackBox
from maskscope.cli.main import main
from maskscope.errors import CheckpointError, ConfigError
from maskscope.methods.realtime import (
    TrainConfig,
    build_masker,
    export_weights,
    load_masker,
    masker_config,
    train_masker,
)
from maskscope.methods.realtime.backbone import find_stages, model_backbone
from maskscope.methods.realtime.data import read_folder
from maskscope.methods.realtime.progress import epoch_line

pytestmark = pytest.mark.usefixtures("one_thread")
SIZE = 32


class Residual(nn.Module):
    """A ResNet basic block; with ``stride`` 2 its 1×1 ``downsample`` shortcut runs after the main path."""

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1)
        self.bn = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1)
        self.downsample = nn.Conv2d(cin, cout, 1, stride) if stride > 1 or cin != cout else nn.Identity()

    def forward(self, x):
        out = self.conv2(torch.relu(self.bn(self.conv1(x))))
        return torch.relu(out + self.downsample(x))


class TinyResNet(nn.Module):
    """torchvision's layout: a stride-2 stem, ``layer1``..``layer4`` at strides 4..32, pool, ``fc``."""

    def __init__(self, classes: int = 3) -> None:
        super().__init__()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), nn.ReLU())
            self.layer1 = Residual(8, 8, 2)
            self.layer2 = Residual(8, 12, 2)
            self.layer3 = Residual(12, 16, 2)
            self.layer4 = Residual(16, 16, 2)
            self.fc = nn.Linear(16, classes)

    def forward(self, x):
        x = self.layer4(self.layer3(self.layer2(self.layer1(self.stem(x)))))
        return self.fc(x.mean(dim=(2, 3)))


def tiny_resnet() -> BlackBox:
    """TinyResNet on 64 px inputs, as ``--classifier test_masker_encoders:tiny_resnet`` loads it."""
    return BlackBox(TinyResNet().eval(), input_size=(64, 64), mean=(0.5,) * 3, std=(0.5,) * 3,
                    name="tiny-resnet")


def _state(model: nn.Module) -> tuple:
    hooks = sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())
    flags = tuple(p.requires_grad for p in model.parameters())
    modes = tuple(m.training for m in model.modules())
    weights = hashlib.sha256(b"".join(t.detach().numpy().tobytes() for t in model.state_dict().values()))
    return hooks, flags, modes, weights.hexdigest()


def test_cnn_stages_are_each_strides_last_main_path_module_and_the_model_is_left_alone():
    bb = tiny_resnet()
    bb.model.layer2.train()  # a mix of modes, to be restored exactly
    before = _state(bb.model)
    assert find_stages(bb) == ["layer1", "layer2", "layer3", "layer4"]  # never layer2.downsample
    encoder = model_backbone(bb)
    maps = encoder(torch.rand(2, 3, 64, 64))
    assert [tuple(m.shape[1:]) for m in maps] == [(8, 16, 16), (12, 8, 8), (16, 4, 4), (16, 2, 2)]
    assert encoder.strides == [4, 8, 16, 32] and encoder.channels == [8, 12, 16, 16]
    config = masker_config(bb)
    assert config["encoder"] == "model" and config["encoder_layers"] == [f"layer{i}" for i in range(1, 5)]
    assert config["selector"] == "classifier-tied"  # fc reads layer4's global average
    masker = build_masker(bb, config)
    assert torch.equal(masker.decoder.filter.class_weights, bb.model.fc.weight)
    assert all(not k.startswith("encoder") for k in masker.state_dict())  # only what is learned
    masker.train()
    masks, attention = masker(torch.rand(2, 3, 64, 64), torch.tensor([0, 2]))
    (masks.mean() + attention.mean()).backward()
    assert _state(bb.model) == before  # no hook left, no flag flipped, modes and weights as they were
    assert all(p.grad is None for p in bb.model.parameters())


def _vit(layers: int = 4, size: int = 64):
    transformers = pytest.importorskip("transformers")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        config = transformers.ViTConfig(image_size=size, patch_size=8, hidden_size=32, num_attention_heads=2,
                                        num_hidden_layers=layers, intermediate_size=64, num_labels=2)
        return transformers.ViTForImageClassification(config).eval()


def test_a_vit_is_read_at_evenly_spaced_depths_resampled_to_each_stride():
    model = _vit()
    bb = BlackBox(model, input_size=(64, 64), mean=(0.5,) * 3, std=(0.5,) * 3, name="vit")
    names = find_stages(bb)
    assert [n.rsplit(".", 2)[-2:] for n in names[:3]] == [[d, "layernorm_before"] for d in "123"]
    assert names[3] == "vit.layernorm"  # the final norm: what the head reads
    encoder = model_backbone(bb)
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    maps = encoder(x)
    assert [tuple(m.shape[1:]) for m in maps] == [(32, 16, 16), (32, 8, 8), (32, 4, 4), (32, 2, 2)]
    assert not any(m._forward_hooks for m in model.modules())
    config = masker_config(bb)
    assert config["encoder"] == "model" and config["widths"] == [128, 64, 32]
    assert config["selector"] == "learned"  # a class-token head: its rows give no map over patches
    with torch.no_grad():  # (transformers leaves hooks of its own after output_hidden_states)
        hidden = model(bb.preprocess(x), output_hidden_states=True).hidden_states[-1]
        patches = model.vit.layernorm(hidden)[:, 1:]  # the 8×8 patch tokens, class token dropped
    assert torch.allclose(maps[3].mean((2, 3)), patches.mean(1), atol=1e-5)  # 8×8 average-pooled to 2×2


class MeanTokenViT(nn.Module):
    """A transformer whose head reads the mean patch token after the final norm (no class token)."""

    def __init__(self, dim: int = 16, classes: int = 3) -> None:
        super().__init__()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            self.patch_embed = nn.Conv2d(3, dim, 8, stride=8)
            layer = nn.TransformerEncoderLayer(dim, 2, 32, batch_first=True)
            self.blocks = nn.ModuleList([layer, copy.deepcopy(layer)])
            self.norm = nn.LayerNorm(dim)
            self.head = nn.Linear(dim, classes)

    def forward(self, x):
        x = self.patch_embed(x).flatten(2).transpose(1, 2)
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x).mean(1))


def test_a_transformer_head_over_the_mean_patch_token_ties_the_selector():
    model = MeanTokenViT().eval()
    bb = BlackBox(model, input_size=(SIZE, SIZE), mean=(0.5,) * 3, std=(0.5,) * 3, name="mean-vit")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's nested-tensor note on TransformerEncoderLayer
        config = masker_config(bb)
        masker = build_masker(bb, config)
    assert config["encoder_layers"][-1] == "norm" and config["selector"] == "classifier-tied"
    assert torch.equal(masker.decoder.filter.class_weights, model.head.weight)


def test_named_layers_are_read_in_order_and_bad_names_are_one_line():
    bb = tiny_resnet()
    config = masker_config(bb, encoder_layers=["layer2", "layer3"])
    assert config["encoder"] == "model" and config["encoder_layers"] == ["layer2", "layer3"]
    assert config["widths"] == [32]  # one upsampler
    maps = build_masker(bb, config).encode(torch.rand(1, 3, 64, 64))
    assert [tuple(m.shape[1:]) for m in maps] == [(12, 16, 16), (16, 8, 8)]  # resampled to strides 4, 8
    with pytest.raises(ConfigError, match=r"no layer named 'layer22'; closest: layer2"):
        masker_config(bb, encoder_layers=["layer1", "layer22"])
    with pytest.raises(ConfigError, match=r"cannot read this layer: it outputs \(1, 3\)"):
        masker_config(bb, encoder_layers=["layer1", "fc"])
    with pytest.raises(ConfigError, match="'small' encoder reads none"):
        masker_config(bb, "small", encoder_layers=["layer1", "layer2"])
    assert not any(m._forward_hooks for m in bb.model.modules())


def test_a_model_without_stages_gets_the_small_encoder_unless_it_names_layers():
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(4), nn.Flatten(),
                        nn.Linear(128, 5))
    bb = BlackBox(net.eval(), input_size=(SIZE, SIZE), mean=(0.5,) * 3, std=(0.5,) * 3, name="flat")
    assert find_stages(bb) is None and masker_config(bb)["encoder"] == "small"
    with pytest.raises(ConfigError, match=r"no spatial stages.*encoder_layers=\[\.\.\.\] \(--encoder-layers"):
        masker_config(bb, "model")
    assert masker_config(bb, encoder_layers=["0", "1"])["encoder"] == "model"


def test_a_model_encoder_masker_saves_and_loads_with_the_same_masks(tmp_path: Path):
    bb = tiny_resnet()
    masker = build_masker(bb, masker_config(bb, blocks=1)).eval()
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        expected = masker(x, torch.tensor([1, 2]))[0]
    path = export_weights(masker, tmp_path / "m.pt", half=False)
    with torch.no_grad():
        assert torch.equal(load_masker(bb, path)(x, torch.tensor([1, 2]))[0], expected)
    data = torch.load(path, weights_only=True)
    del data["config"]["encoder_layers"]
    torch.save(data, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match="'encoder_layers' must be a non-empty list of layer names"):
        load_masker(bb, tmp_path / "bad.pt")


def test_the_shipped_masker_still_reads_the_embedded_efficientnet_and_gives_the_same_masks():
    from maskscope.zoo import load_classifier

    bb = load_classifier()
    masker = load_masker(bb)
    assert masker.config["encoder"] == "efficientnet" and masker_config(bb)["encoder"] == "efficientnet"
    x = torch.rand(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        masks, attention = masker(x, torch.tensor([281, 779]))
    # the masks of the code before the user-model encoders existed (commit 0fba5c8), a 4×4 grid of
    # each: bitwise digests differ between CPUs (their float kernels do), these values do not
    grid = masks[:, 0, 28::56, 28::56]
    expected = torch.tensor([
        [[0.02019, 0.02819, 0.02753, 0.03405], [0.03179, 0.04340, 0.04541, 0.02056],
         [0.02894, 0.01184, 0.03335, 0.03537], [0.03394, 0.02823, 0.02709, 0.02352]],
        [[0.03099, 0.02528, 0.03067, 0.03066], [0.01545, 0.01948, 0.03623, 0.03450],
         [0.03573, 0.02682, 0.02979, 0.02907], [0.03775, 0.04048, 0.02723, 0.03757]],
    ])
    torch.testing.assert_close(grid, expected, atol=2e-5, rtol=0)
    torch.testing.assert_close(masks.sum(), torch.tensor(3122.7722), atol=0.05, rtol=0)
    torch.testing.assert_close(attention, torch.tensor([-2.86589, -2.68294]), atol=1e-4, rtol=0)


# -- known answers: evidence in the top-left quadrant ----------------------------------------------
def quadrant_scenes(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A fine checkerboard in each quadrant with probability ½ on a flat grey; the class is whether
    the TOP-LEFT quadrant has one. Blur and a constant fill both destroy a checkerboard."""
    gen = torch.Generator().manual_seed(seed)
    present = torch.rand(n, 4, generator=gen) < 0.5
    where = present.float().view(n, 1, 2, 2).repeat_interleave(SIZE // 2, 2).repeat_interleave(SIZE // 2, 3)
    base = 0.3 + 0.4 * torch.rand(n, 1, 1, 1, generator=gen)
    board = checkerboard(SIZE, period=8) - 0.5
    x = base + 0.4 * board * where + 0.03 * torch.randn(n, 3, SIZE, SIZE, generator=gen)
    return x.clamp(0, 1), present[:, 0].long()


def scene_folder(folder: Path, n: int, seed: int) -> Path:
    x, y = quadrant_scenes(n, seed)
    folder.mkdir(parents=True, exist_ok=True)
    notes = {}
    for i in range(n):
        pixels = (x[i].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"s{i:02d}.png")
        notes[f"s{i:02d}.png"] = {"class_index": int(y[i])}
    (folder / "annotations.json").write_text(json.dumps(notes))
    return folder


def _fit(model: nn.Module, forward, steps: int = 150) -> BlackBox:
    optimiser = torch.optim.Adam(model.parameters(), 3e-3)
    for step in range(steps):
        x, y = quadrant_scenes(64, 100 + step)
        loss = nn.functional.cross_entropy(forward((x - 0.5) / 0.5), y)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    bb = BlackBox(model.eval(), input_size=(SIZE, SIZE), mean=(0.5,) * 3, std=(0.5,) * 3, name="quadrants")
    x, y = quadrant_scenes(200, 1)
    with torch.no_grad():
        assert float((bb(x).argmax(1) == y).float().mean()) > 0.95  # it reads the top-left quadrant
    return bb


def _mass_in_the_quadrant(bb: BlackBox, tmp_path: Path) -> torch.Tensor:
    config = TrainConfig(epochs=30, batch_size=16, lr=3e-3, blocks=1, augment=False, checkpoint_every=10**6,
                         val_every=10**6)
    samples = read_folder(scene_folder(tmp_path / "d", 64, 2))
    summary = train_masker(bb, samples, tmp_path / "m.pt", config, progress=False)
    assert summary["config"]["encoder"] == "model"
    x, y = quadrant_scenes(200, 1)
    scenes = x[y == 1][:32]
    with torch.no_grad():
        masks = load_masker(bb, tmp_path / "m.pt")(scenes, torch.ones(len(scenes), dtype=torch.long))[0]
    return masks[..., : SIZE // 2, : SIZE // 2].sum((1, 2, 3)) / masks.sum((1, 2, 3))


def test_known_answer_a_masker_on_a_small_cnns_own_stages_finds_the_quadrant(tmp_path: Path):
    def block(cin: int, cout: int) -> nn.Module:
        return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=2, padding=1), nn.ReLU())

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = nn.Sequential(block(3, 8), block(8, 8), block(8, 16), block(16, 16), nn.Flatten(),
                              nn.Linear(16 * 4, 2))
    inside = _mass_in_the_quadrant(_fit(model, model), tmp_path)
    assert float(inside.mean()) > 0.7 and float(inside.min()) > 0.5  # a quarter of the image


def test_known_answer_a_masker_on_a_small_vits_token_grid_finds_the_quadrant(tmp_path: Path):
    model = _vit(layers=2, size=SIZE)
    bb = _fit(model.train(), lambda x: model(pixel_values=x).logits)
    inside = _mass_in_the_quadrant(bb, tmp_path)
    assert float(inside.mean()) > 0.7 and float(inside.min()) > 0.5  # a quarter of the image


# -- the command line ------------------------------------------------------------------------------
def test_cli_train_reads_named_layers_and_prints_a_line_per_epoch(tmp_path: Path, capsys):
    data = scene_folder(tmp_path / "d", 8, 0)
    base = ["train", "--data", str(data), "--classifier", "test_masker_encoders:tiny_resnet", "--epochs", "2",
            "--batch-size", "4", "--no-augment"]
    assert main([*base, "--out", str(tmp_path / "m.pt"), "--encoder-layers", "layer1,layer2,layer3"]) == 0
    out = capsys.readouterr().out
    assert "epoch 1/2: step 2/4, loss " in out and "epoch 2/2: step 4/4" in out and " left" in out
    config = load_masker(tiny_resnet(), tmp_path / "m.pt").config
    assert config["encoder_layers"] == ["layer1", "layer2", "layer3"]
    code = main([*base, "--out", str(tmp_path / "n.pt"), "--encoder-layers", "layer1,layre2", "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "closest: layer2" in err, err


def test_epoch_line_says_how_long_is_left_at_this_pace():
    line = epoch_line(step=20, per_epoch=10, total=50, elapsed=30.0, done=20, running={"loss": 1.23456})
    assert line == "epoch 2/5: step 20/50, loss 1.235, 0:30 so far, about 0:45 left"
    assert epoch_line(10, 10, 10_000, 10.0, 10, {}).endswith("about 2:46:30 left")
