"""The tiny analytic models every test shares: classifiers whose right answer is known by hand.

Each one's evidence sits somewhere known (a quadrant, a region, a coloured blob), so a saliency
method, a metric or the evaluation runner can be checked against the answer, not against a
recorded output.
"""

from __future__ import annotations

import functools
import json
import os
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from maskscope.blackbox import BlackBox

SIZE = 64


def checkerboard(size: int = SIZE, period: int = 8) -> torch.Tensor:
    ys, xs = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    return (((ys // (period // 2)) + (xs // (period // 2))) % 2).float()


class QuadrantClassifier(nn.Module):
    """Two classes; class 0's logit is the correlation of the TOP-LEFT quadrant (less a 4 px margin)
    with a fine checkerboard. Blur, a constant fill or noise all destroy that correlation, so the only
    region that matters (for deletion and for preservation) is the top-left quadrant."""

    def __init__(self, size: int = SIZE) -> None:
        super().__init__()
        template = checkerboard(size) - 0.5
        weight = torch.zeros(1, 3, size, size)
        inner = slice(size // 16, size // 2 - size // 16)  # a margin, so smooth masks fit inside
        weight[:, :, inner, inner] = template[inner, inner]
        self.register_buffer("weight", weight / weight.abs().sum() * 40.0)
        self.scale = nn.Parameter(torch.tensor(1.0))
        self.bias = nn.Parameter(torch.tensor(-3.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        corr = ((x - 0.5) * self.weight).flatten(1).sum(1)
        logit0 = self.scale * corr + self.bias
        return torch.stack([logit0, torch.zeros_like(logit0)], dim=1)


def quadrant_images(n: int = 1, seed: int = 0) -> torch.Tensor:
    """The checkerboard everywhere (so a mask must learn that only one quadrant matters)."""
    gen = torch.Generator().manual_seed(seed)
    board = checkerboard()
    images = board.expand(n, 3, SIZE, SIZE).clone() * 0.8 + 0.1
    return (images + 0.03 * torch.randn(images.shape, generator=gen)).clamp(0, 1)


# 16×16 mask grid on 64 px images; smoothing and jitter scale with the size by themselves. The
# L1 weight is raised from the paper's 1e-4 because this toy's score saturates.
TINY_SETTINGS = dict(iterations=80, mask_scale=4, l1=0.01 * 256 / 784)  # 0.01 per cell of the 16×16 grid


class QuadrantNet(nn.Module):
    """3 classes that only see the top-left quadrant: conv → ReLU → zero outside the quadrant → 1×1
    conv → ReLU → mean → linear. Positive weights make class 0 grow with every quadrant pixel."""

    def __init__(self, activation: type[nn.Module] = nn.ReLU) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(0)
        self.conv1 = nn.Conv2d(3, 4, 3, padding=1)
        self.act1 = activation()
        self.conv2 = nn.Conv2d(4, 4, 1, bias=False)
        self.act2 = activation()
        self.fc = nn.Linear(4, 3)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.rand(p.shape, generator=gen) * 0.5)
            self.fc.weight[0] += 1.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        f = self.act1(self.conv1(x))
        keep = torch.zeros(1, 1, h, w, device=x.device)
        keep[..., : h // 2, : w // 2] = 1.0
        f = self.act2(self.conv2(f * keep))
        return self.fc(f.mean(dim=(2, 3)))


class MeanModel(nn.Module):
    """Two classes with p(class 0) = mean of the red channel (in (0, 1)) over the whole input."""

    def __init__(self) -> None:
        super().__init__()
        self.sizes: list[tuple[int, int]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.sizes.append(tuple(x.shape[-2:]))
        s = x[:, 0].mean(dim=(1, 2))
        return torch.stack([s.log(), (1 - s).log()], dim=1)


class RegionModel(nn.Module):
    """p(class 0) = 0.05 + 0.9 · mean red value of the 8×8 top-left region R, so on an all-ones
    image p0 = 0.95, on an all-zero image 0.05, and blacking out a fraction f of R gives
    p = 0.05 + 0.9 (1 − f): normalised score 1 − f, suppression f."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = 0.05 + 0.9 * x[:, 0, :8, :8].mean(dim=(1, 2))
        return torch.stack([s.log(), (1 - s).log()], dim=1)


BLOB_H, BLOB_W = 40, 48


class BlobDetector(nn.Module):
    """Class c = how bright colour channel c gets above 0.5 anywhere: the evidence is the blob."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 2, 1)
        with torch.no_grad():
            self.conv.weight.zero_()
            self.conv.weight[0, 0] = 12.0
            self.conv.weight[1, 1] = 12.0
            self.conv.bias.fill_(-6.0)
        self.act = nn.ReLU()
        self.pool = nn.AdaptiveMaxPool2d(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.act(self.conv(x))).flatten(1)


def tiny_model() -> BlackBox:
    return BlackBox(
        BlobDetector(), input_size=(BLOB_H, BLOB_W), mean=(0, 0, 0), std=(1, 1, 1), name="blob-detector"
    )


def seeded_model(seed: int, classes: int = 5) -> BlackBox:
    """A small random CNN whose weights follow ``seed``, always named "mymodel": two seeds are two
    models with the same name (what content-keyed caches must tell apart)."""
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(),
                        nn.Linear(16, classes))
    return BlackBox(net.eval(), input_size=(32, 32), mean=(0.5,) * 3, std=(0.25,) * 3, name="mymodel")


class Linear(nn.Module):
    def __init__(self, classes=5):
        super().__init__()
        self.fc = nn.Linear(3, classes)

    def forward(self, x):
        return self.fc(x.mean(dim=(2, 3)))


class OwnModel(nn.Module):
    """QuadrantClassifier's evidence behind the input and output forms real models have.

    Class 0's logit is the correlation of the top-left quadrant (less a margin) of the channel mean
    with a fine checkerboard, for inputs normalised to [-1, 1]; class 1's is 0. ``channels`` and
    ``size`` (H, W) set the input, ``form`` the output: ``logits``, ``tuple`` ((logits, features), as
    models with auxiliary heads return), ``dict`` ({"features", "logits"}) or ``probabilities``
    (softmax applied inside the model). ``.to(torch.float16)`` makes it a half-precision model.
    """

    def __init__(self, channels: int = 3, size: tuple[int, int] = (SIZE, SIZE), form: str = "logits") -> None:
        super().__init__()
        h, w = size
        ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
        template = (((ys // 4) + (xs // 4)) % 2).float() - 0.5
        weight = torch.zeros(1, 1, h, w)
        rows, cols = slice(h // 16, h // 2 - h // 16), slice(w // 16, w // 2 - w // 16)
        weight[..., rows, cols] = template[rows, cols]
        self.register_buffer("weight", weight / weight.abs().sum() * 6.0)
        self.mix = nn.Conv2d(channels, 1, 1, bias=False)  # the channel mean, as a real first layer
        with torch.no_grad():
            self.mix.weight.fill_(1.0 / channels)
        self.bias = nn.Parameter(torch.tensor(-3.0))
        self.form = form

    def forward(self, x: torch.Tensor):
        features = self.mix(x)
        logit0 = (features * self.weight).flatten(1).sum(1) + self.bias
        logits = torch.stack([logit0, torch.zeros_like(logit0)], dim=1)
        if self.form == "tuple":
            return logits, features
        if self.form == "dict":
            return {"features": features, "logits": logits}
        if self.form == "probabilities":
            return logits.softmax(dim=1)
        return logits


def own_images(n: int = 1, size: tuple[int, int] = (SIZE, SIZE), seed: int = 0) -> torch.Tensor:
    """OwnModel's checkerboard everywhere in [0.1, 0.9] (grey), plus a little noise."""
    h, w = size
    ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    board = (((ys // 4) + (xs // 4)) % 2).float()
    gen = torch.Generator().manual_seed(seed)
    images = board.expand(n, 3, h, w) * 0.8 + 0.1
    return (images + 0.03 * torch.randn(images.shape, generator=gen)).clamp(0, 1)


def own_classifier(size: int = SIZE, form: str = "logits", fail: bool = False) -> BlackBox:
    """OwnModel as the CLI's ``--classifier fixtures:own_classifier`` gets it (square ``size``)."""
    if fail:
        raise RuntimeError("weights file not found")
    return _own_blackbox(OwnModel(size=(size, size), form=form), size, form)


def _own_blackbox(model: OwnModel, size: int = SIZE, form: str = "logits") -> BlackBox:
    return BlackBox(model.eval(), input_size=(size, size), mean=(0.5,) * 3, std=(0.5,) * 3,
                    outputs="probabilities" if form == "probabilities" else "auto", name=f"own-{form}")


def stalling_classifier(after: str, rank: int) -> BlackBox:
    """own_classifier (same name, same outputs, same weights fingerprint) that, in the torchrun
    worker of ``RANK`` = ``rank`` only, stops in its next forward pass once the file ``after`` exists
    and never resumes: a test can then SIGKILL that worker at a known point of its run, not whenever
    a race lets it. The wait replaces the instance's ``forward``, so the model stays an OwnModel
    with the same settings, as every rank's model is in a real run."""
    blackbox = own_classifier()
    if int(os.environ.get("RANK", "0")) != rank:
        return blackbox
    model = blackbox.model
    plain_forward = model.forward

    def forward(x: torch.Tensor):
        while os.path.exists(after):
            time.sleep(0.05)
        return plain_forward(x)

    model.forward = forward
    return blackbox

# -- data builders for the summary tests ----------------------------------------------------------
MODEL = "efficientnet-lite0"


@functools.cache
def _model_fingerprint(name: str) -> str:
    """What an earlier run's cache entries record about the classifier (its weights' hash)."""
    from maskscope.fingerprint import model_fingerprint
    from maskscope.zoo import load_classifier

    return model_fingerprint(load_classifier(name))


def cache_crisp_mask(out: Path, image: Path, mask: np.ndarray, target: int) -> Path:
    """Pre-compute a 'crisp mask' of ``image`` in the CLI's cache, as an earlier run would have left
    it (keyed by the file's content hash and the target); returns the entry's ``.npy``."""
    from maskscope.storage import content_hash
    from maskscope.summaries.masks import mask_cache_key, mask_entry_name

    (out / "masks").mkdir(parents=True, exist_ok=True)
    digest = content_hash(image)
    name = mask_entry_name(image, digest, target)
    np.save(out / "masks" / f"{name}.npy", mask.astype(np.float32))
    key = mask_cache_key(MODEL, 1, 1, target, digest, _model_fingerprint(MODEL))
    (out / "masks" / f"{name}.json").write_text(json.dumps({**key, "file": str(image.resolve())}))
    return out / "masks" / f"{name}.npy"


def parts_folder(tmp: Path, n: int) -> tuple[Path, list[np.ndarray]]:
    from maskscope.summaries.masks import WORK_SIZE

    synthetic = pytest.importorskip("maskscope.data.synthetic_scenes")
    ds = synthetic.make_scenes(n, "parts", seed=5, size=112, label=1)
    folder = tmp / "parts"
    folder.mkdir()
    masks = []
    for i, (img, obj) in enumerate(zip(ds.images, ds.object_masks)):
        rgb = (img.permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)
        Image.fromarray(rgb).save(folder / f"s{i:02d}.png")
        big = Image.fromarray(obj[0].numpy().astype(np.uint8) * 255).resize(WORK_SIZE[::-1], Image.NEAREST)
        masks.append(np.asarray(big) > 0)
    return folder, masks


def random_photo(path: Path, seed: int = 0, size: tuple[int, int] = (30, 40)) -> Path:
    """A random-noise RGB image file (H, W = ``size``) at ``path``, parents created."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (*size, 3), dtype=np.uint8)).save(path)
    return path


def square_image(value_in=0.8, value_out=0.2, box=(4, 4, 11, 11), size=16):
    """A (1, 3, size, size) image: ``value_in`` inside the box, ``value_out`` around it."""
    x = torch.full((1, 3, size, size), value_out)
    x[..., box[1] : box[3] + 1, box[0] : box[2] + 1] = value_in
    return x


# -- the fault tests' helpers -----------------------------------------------------------------------
METHOD_TESTS = str(Path(__file__).parent / "methods")  # test_realtime's tiny masker, also when run alone
FAST = {"meaningful": {"iterations": 1}, "crisp": {"iterations": 1, "crisp_iterations": 1},
        "extremal": {"iterations": 1, "areas": [0.1]}, "rise": {"n_masks": 4}}


def run_fast(name: str, model, images, **options):
    """A registered method with the fewest iterations that still exercise its checks."""
    from maskscope.methods import get_method

    return get_method(name)(model, images, **{**FAST.get(name, {}), **options})


def error_line(capsys) -> str:
    """The run's single ``maskscope: error:`` line, and no traceback."""
    err = capsys.readouterr().err.strip()
    lines = [ln for ln in err.splitlines() if ln.startswith("maskscope: error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def own_error_line(capsys) -> str:
    """The run's single error line; it must start a line of its own (not glued to a progress bar)."""
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if "maskscope: error:" in ln]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("maskscope: error:"), repr(lines[0])
    return lines[0]


def json_records(capsys) -> list[dict]:
    """The JSON lines a ``--json`` run printed."""
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]


def folder_contents(out: Path) -> dict[str, bytes]:
    """The visible files of a folder, by name."""
    return {p.name: p.read_bytes() for p in sorted(out.iterdir())
            if p.is_file() and not p.name.startswith(".")}


SLOW_MODULE = """
import time

import torch
from torch import nn

from maskscope.blackbox import BlackBox


class Sleep(nn.Module):
    def forward(self, x):
        time.sleep(0.03)
        return x


def slow():
    gen = torch.Generator().manual_seed(0)
    net = nn.Sequential(Sleep(), nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2),
                        nn.Flatten(), nn.Linear(16, 3))
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.3)
    return BlackBox(net, input_size=(24, 24), mean=(0.5,) * 3, std=(0.25,) * 3,
                    class_names=["c0", "c1", "c2"], name="slow")
"""
