"""Layers of the user's model: by name (with close names for a typo), by default (a CNN's last
spatial conv, a transformer's last block's first norm) and patch tokens read as a grid."""

from __future__ import annotations

import warnings

import pytest
import torch
from fixtures import quadrant_images
from fixtures import run_fast as run
from PIL import Image
from torch import nn

import maskscope as ms
from maskscope.errors import ConfigError
from maskscope.layers import TokenGrid, default_layer, find_layer, grid_view, token_layout, tokens_back

SIZE = 32


@pytest.mark.parametrize(("count", "size", "layout"), [
    (17, (32, 32), (1, 4, 4)),  # ViT: a class token + 4×4 patches
    (197, (224, 224), (1, 14, 14)),  # ViT-B/16
    (198, (224, 224), (2, 14, 14)),  # DeiT distilled: class + distillation tokens
    (261, (224, 224), (5, 16, 16)),  # DINOv2 with 4 registers, patch 14
    (49, (224, 224), (0, 7, 7)),  # Swin's last stage: no class token
    (33, (32, 64), (1, 4, 8)),  # a wide input: a wide grid
    (1, (128, 32), None),  # one token cannot be a tall grid
])
def test_token_layout_from_the_count_and_the_input_size(count, size, layout):
    assert token_layout(count, size) == layout


def test_token_grid_is_the_patches_in_row_order_and_goes_back_unchanged():
    tokens = torch.randn(2, 1 + 4 * 8, 5)
    grid = TokenGrid((32, 64))(tokens)
    assert grid.shape == (2, 5, 4, 8)
    assert torch.equal(grid[1, :, 2, 3], tokens[1, 1 + 2 * 8 + 3])  # the class token is dropped
    assert torch.equal(tokens_back(tokens, grid), tokens)
    channels_last = torch.randn(2, 4, 4, 5)  # Swin's norms: (B, h, w, C)
    assert torch.equal(TokenGrid((32, 32))(channels_last), channels_last.permute(0, 3, 1, 2))


class Block(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, 2, batch_first=True)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))

    def forward(self, x):
        h = self.norm1(x)
        x = x + self.attn(h, h, h, need_weights=False)[0]
        return x + self.mlp(self.norm2(x))


class TinyViT(nn.Module):
    """timm's layout: patch_embed, cls_token, blocks.N.norm1, a final norm, a head on the class token."""

    def __init__(self, dim: int = 16, classes: int = 3) -> None:
        super().__init__()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            self.patch_embed = nn.Conv2d(3, dim, 8, stride=8)
            self.cls_token = nn.Parameter(torch.randn(1, 1, dim))
            self.pos_embed = nn.Parameter(torch.randn(1, 17, dim) * 0.1)
            self.blocks = nn.ModuleList([Block(dim), Block(dim)])
            self.norm = nn.LayerNorm(dim)
            self.head = nn.Linear(dim, classes)

    def forward(self, x):
        tokens = self.patch_embed(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls_token.expand(len(x), -1, -1), tokens], 1) + self.pos_embed
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x)[:, 0])


def _images(n: int = 2) -> torch.Tensor:
    return torch.rand(n, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(0))


def test_default_layer_of_a_token_model_is_the_last_blocks_first_norm(one_thread):
    model = TinyViT().eval()
    bb = ms.BlackBox(model, input_size=(SIZE, SIZE), mean=(0.5,) * 3, std=(0.5,) * 3)
    assert default_layer(bb, _images()) == ("blocks.1.norm1", model.blocks[1].norm1)
    with pytest.warns(UserWarning, match="using blocks.1.norm1"):
        e = ms.get_method("gradcam")(bb, _images())
    assert e.masks.shape == (2, 1, SIZE, SIZE) and float(e.masks.amax()) == pytest.approx(1.0)
    assert not model.blocks[1].norm1._forward_hooks  # the grid view is gone again
    named = ms.get_method("gradcam")(bb, _images(), layer="blocks.0.norm2")
    assert named.params["layer"] == "blocks.0.norm2"


def test_a_cnn_keeps_its_last_spatial_conv():
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2)).eval()
    assert default_layer(ms.BlackBox(model, input_size=(SIZE, SIZE)), _images()) == ("2", model[2])


def test_a_wrong_layer_name_lists_the_closest_names():
    bb = ms.BlackBox(TinyViT().eval(), input_size=(SIZE, SIZE))
    with pytest.raises(ConfigError, match=r"no layer named 'blocks.1.nrom1'; closest: blocks.1.norm1, "):
        find_layer(bb, "blocks.1.nrom1")
    assert find_layer(bb, "model.blocks.1.norm1")[0] == "blocks.1.norm1"  # the BlackBox's own path too


def test_a_layer_with_neither_maps_nor_tokens_is_refused():
    model = TinyViT().eval()
    bb = ms.BlackBox(model, input_size=(SIZE, SIZE))
    with pytest.raises(ConfigError, match=r"head does not output \(B, C, H, W\).*--layer"):
        with grid_view(bb, model.head, _images()):
            pass
    assert not model.head._forward_hooks


def _quadrant_scenes(n: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Four flat quadrants of random brightness; the class is whether the TOP-LEFT one is bright."""
    levels = torch.rand(n, 4, generator=gen)
    x = levels.view(n, 1, 2, 2).repeat_interleave(SIZE // 2, 2).repeat_interleave(SIZE // 2, 3)
    x = (x.expand(n, 3, SIZE, SIZE) + 0.05 * torch.randn(n, 3, SIZE, SIZE, generator=gen)).clamp(0, 1)
    return x, (levels[:, 0] > 0.5).long()


def test_known_answer_a_trained_vits_default_gradcam_finds_the_quadrant(one_thread):
    transformers = pytest.importorskip("transformers")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        config = transformers.ViTConfig(image_size=SIZE, patch_size=8, hidden_size=32, num_hidden_layers=2,
                                        num_attention_heads=2, intermediate_size=64, num_labels=2)
        model = transformers.ViTForImageClassification(config)
    # lr 1e-3: at 3e-3 the run oscillated for 300 steps on one CPU and not on another (their float
    # kernels differ); training stops once it reads the quadrant, checked every 100 steps
    optimiser = torch.optim.Adam(model.parameters(), 1e-3)
    gen = torch.Generator().manual_seed(0)
    bb = ms.BlackBox(model, input_size=(SIZE, SIZE), mean=(0.5,) * 3, std=(0.5,) * 3)
    x, y = _quadrant_scenes(200, torch.Generator().manual_seed(1))
    for step in range(1, 1001):  # a few seconds on one CPU thread (200 steps here)
        xs, ys = _quadrant_scenes(64, gen)
        loss = nn.functional.cross_entropy(model(pixel_values=(xs - 0.5) / 0.5).logits, ys)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        if step % 100 == 0:
            with torch.no_grad():
                if float((bb(x).argmax(1) == y).float().mean()) > 0.95:  # it reads the top-left quadrant
                    break
    model.eval()
    with torch.no_grad():
        assert float((bb(x).argmax(1) == y).float().mean()) > 0.95
    scenes = x[y == 1][:16].clone()
    scenes[..., :, SIZE // 2:] = 0.1  # the evidence only where the class looks: the rest dark
    scenes[..., SIZE // 2:, :] = 0.1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        e = ms.get_method("gradcam")(bb, scenes, target=1)
    assert e.params["layer"].endswith(".1.layernorm_before")  # the last block's, before attention
    inside = e.masks[..., : SIZE // 2, : SIZE // 2].sum((1, 2, 3)) / e.masks.sum((1, 2, 3))
    assert float(inside.mean()) > 0.6 and float(inside.min()) > 0.4  # a quarter of the image


def tiny_vit() -> ms.BlackBox:
    """TinyViT as ``--classifier test_layers:tiny_vit`` loads it."""
    return ms.BlackBox(TinyViT().eval(), input_size=(SIZE, SIZE), mean=(0.5,) * 3, std=(0.5,) * 3,
                       name="tiny-vit")


def _explain(tmp_path, *flags: str) -> int:

    from maskscope.cli.main import main

    path = tmp_path / "noise.png"
    if not path.exists():
        Image.fromarray((_images(1)[0].permute(1, 2, 0).numpy() * 255).astype("uint8")).save(path)
    return main(["explain", str(path), "--classifier", "test_layers:tiny_vit", "--method", "gradcam",
                 "--out", str(tmp_path / "out"), "--json", "--no-figures", *flags])


@pytest.mark.parametrize("flags", [("--layer", "blocks.0.norm1"),
                                   ("--option", "gradcam.layer=blocks.0.norm1")])
def test_explain_layer_and_option_choose_the_layer(tmp_path, capsys, flags):
    import json

    assert _explain(tmp_path, *flags) == 0, capsys.readouterr().err
    [record] = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert record["params"]["layer"] == "blocks.0.norm1"


@pytest.mark.parametrize(("flags", "message"), [
    (("--layer", "blocks.0.nrom1"), "no layer named 'blocks.0.nrom1'; closest: blocks.0.norm1"),
    (("--option", "occlusion.stride=4"), "applies to --method occlusion, not gradcam"),
    (("--option", "gradcam.stride=4"), "method 'gradcam' has no option 'stride'"),
    (("--option", "gradcam"), "expected METHOD.KEY=VALUE"),
    (("--layer", "blocks.0.norm1", "--method", "center"), "--layer applies to methods that read a layer"),
])
def test_explain_bad_layer_or_option_is_one_line(tmp_path, capsys, flags, message):
    assert _explain(tmp_path, *flags) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err


class Small(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(0)
        self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)
        self.pool = torch.nn.AdaptiveAvgPool2d(2)
        self.fc = torch.nn.Linear(16, 3)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=gen) * 0.3)

    def forward(self, x):
        return self.fc(self.pool(torch.relu(self.conv(x))).flatten(1))


def test_gradcam_layer_that_is_not_spatial_or_not_in_the_model(model):
    """Fault: API: a Grad-CAM layer that is not spatial (Linear) or not in the model — ConfigError."""
    net = Small().eval()
    images = quadrant_images(2)
    with pytest.raises(ConfigError, match=r"fc does not output \(B, C, H, W\)"):
        run("gradcam", net, images, layer=net.fc)
    with pytest.raises(ConfigError, match="not part of the model"):
        run("gradcam", net, images, layer=torch.nn.Conv2d(3, 4, 3))
    relu_free = run("gradcam", net, images, layer=net.pool)  # a layer without weights: fine
    assert relu_free.masks.shape == (2, 1, 64, 64) and relu_free.params.get("layer_shape") is None
    with pytest.raises(ConfigError, match="score"):
        run("gradcam", net, images, score="foo")
