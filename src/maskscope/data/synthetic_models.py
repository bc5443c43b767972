"""A small CNN for the synthetic scenes: how it is built, trained, shipped and probed.

The network is deliberately tiny (about 100k parameters, two stride-2 convolutions up front) so
that it trains on one CPU core in about a minute and explains quickly: a mask optimisation runs
hundreds of forward/backward passes.
"""

from __future__ import annotations

import io
import pickle
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources

import torch
import torch.nn.functional as F
from torch import nn

from ..blackbox import BlackBox
from ..errors import CheckpointError, ConfigError
from .synthetic_scenes import (
    BACKGROUNDS,
    PART_NAMES,
    POLAR_BEAR,
    SNOW,
    VARIANTS,
    SyntheticSet,
    class_names,
    make_scenes,
)

# [0, 1] images are normalised to roughly zero mean, unit spread before the first layer
SYNTHETIC_MEAN = (0.5, 0.5, 0.5)
SYNTHETIC_STD = (0.25, 0.25, 0.25)


class SmallCNN(nn.Module):
    """conv-BN-ReLU ×4 (strides 2, 2, 1, pool 2) → global average pool → linear.

    Global pooling makes the logits a sum of local evidence, so a region's contribution is
    removed by perturbing that region: what a perturbation mask needs to find it.
    """

    def __init__(self, num_classes: int, widths: tuple[int, int, int, int] = (32, 48, 64, 96)) -> None:
        super().__init__()
        w1, w2, w3, w4 = widths

        def block(cin: int, cout: int, stride: int = 1) -> list[nn.Module]:
            conv = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
            return [conv, nn.BatchNorm2d(cout), nn.ReLU()]

        self.features = nn.Sequential(
            *block(3, w1, 2), *block(w1, w2, 2), *block(w2, w3), nn.MaxPool2d(2), *block(w3, w4)
        )
        self.classifier = nn.Linear(w4, num_classes)
        self.num_classes = num_classes
        self.widths = tuple(widths)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).mean(dim=(2, 3)))


def _normalise(images: torch.Tensor) -> torch.Tensor:
    mean = torch.tensor(SYNTHETIC_MEAN, dtype=images.dtype).view(1, 3, 1, 1)
    std = torch.tensor(SYNTHETIC_STD, dtype=images.dtype).view(1, 3, 1, 1)
    return (images - mean) / std


def train_classifier(
    train_set: SyntheticSet,
    epochs: int = 6,
    seed: int = 0,
    batch_size: int = 64,
    lr: float = 3e-3,
    threads: int | None = 1,
    widths: tuple[int, int, int, int] = (32, 48, 64, 96),
) -> SmallCNN:
    """Train a ``SmallCNN`` on a synthetic set with Adam and a one-cycle schedule.

    ``threads`` sets torch's CPU threads for the duration (1 by default: on a shared machine one
    thread is usually faster than contending for two); ``None`` leaves the setting alone.
    Returns the model in eval mode.
    """
    if epochs < 1 or batch_size < 1:
        raise ConfigError(f"need epochs >= 1 and batch_size >= 1, got {epochs}, {batch_size}")
    previous_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        torch.manual_seed(seed)
        model = SmallCNN(train_set.num_classes, widths)
        x, y = _normalise(train_set.images), train_set.labels
        steps = epochs * ((len(y) + batch_size - 1) // batch_size)
        optimiser = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
        schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=lr, total_steps=steps)
        order_gen = torch.Generator().manual_seed(seed)
        model.train()
        for _ in range(epochs):
            order = torch.randperm(len(y), generator=order_gen)
            for start in range(0, len(y), batch_size):
                idx = order[start : start + batch_size]
                loss = F.cross_entropy(model(x[idx]), y[idx])
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                optimiser.step()
                schedule.step()
    finally:
        torch.set_num_threads(previous_threads)
    return model.eval()


def as_synthetic_blackbox(model: SmallCNN, variant: str) -> BlackBox:
    """Wrap a SmallCNN with the synthetic normalisation and its variant's class names."""
    return BlackBox(
        model.eval(), input_size=None, mean=SYNTHETIC_MEAN, std=SYNTHETIC_STD,
        class_names=class_names(variant), name=f"synthetic-{variant}",
    )


@torch.no_grad()
def predict(model: BlackBox | nn.Module, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Predicted class per [0, 1] image (a bare SmallCNN gets the synthetic normalisation)."""
    forward: Callable[[torch.Tensor], torch.Tensor]
    modules: object
    if isinstance(model, BlackBox):
        forward, modules = model, model.model
    else:
        forward, modules = (lambda x: model(_normalise(x))), model
    was_training = modules.training if isinstance(modules, nn.Module) else False
    if isinstance(modules, nn.Module):
        modules.eval()
    try:
        chunks = [images[i : i + batch_size] for i in range(0, len(images), batch_size)]
        return torch.cat([forward(chunk).argmax(1) for chunk in chunks])
    finally:
        if isinstance(modules, nn.Module):
            modules.train(was_training)


def accuracy(model: BlackBox | nn.Module, dataset: SyntheticSet) -> float:
    return float((predict(model, dataset.images) == dataset.labels).float().mean())


@dataclass
class Reliance:
    """How much the spurious classifier's 'polar bear' depends on the snow behind it."""

    kept: float  # polar-bear accuracy on snow (as in training)
    swapped: float  # the same scenes on every other background, mean accuracy
    per_background: dict[str, float]  # polar-bear accuracy per swapped-in background
    swapped_as: dict[str, float]  # what the swapped bears are called instead: class → fraction


def background_reliance(model: BlackBox | nn.Module, n: int = 200, seed: int = 1, size: int = 64) -> Reliance:
    """Render ``n`` test polar bears on snow, then the very same scenes on each other background,
    and compare the classifier's polar-bear accuracy. A classifier that reads the object would
    score the same on both; one that learned 'snow means bear' collapses when the snow goes."""
    names = class_names("spurious")
    kept_set = make_scenes(n, "spurious", "test", seed=seed, size=size, label=POLAR_BEAR)
    kept = float((predict(model, kept_set.images) == POLAR_BEAR).float().mean())
    per_background, predictions = {}, []
    for bg, name in enumerate(BACKGROUNDS):
        if bg == SNOW:
            continue
        swapped = make_scenes(n, "spurious", "test", seed=seed, size=size, label=POLAR_BEAR, background=bg)
        pred = predict(model, swapped.images)
        per_background[name] = float((pred == POLAR_BEAR).float().mean())
        predictions.append(pred)
    pred = torch.cat(predictions)
    counts = torch.bincount(pred, minlength=len(names)).float() / len(pred)
    swapped_as = {names[i]: round(float(c), 4) for i, c in enumerate(counts) if c > 0}
    return Reliance(kept, sum(per_background.values()) / len(per_background), per_background, swapped_as)


# -- shipped weights --------------------------------------------------------------------------------
def weights_resource(variant: str) -> str:
    return f"resources/synthetic_{variant}.pt"


def save_checkpoint(model: SmallCNN, variant: str, path, info: dict | None = None) -> None:
    """Half-precision weights plus what is needed to rebuild the network (loads with weights_only)."""
    state = {k: (v.half() if v.is_floating_point() else v) for k, v in model.state_dict().items()}
    torch.save(
        {"variant": variant, "num_classes": model.num_classes, "widths": list(model.widths),
         "class_names": class_names(variant), "state_dict": state, "info": dict(info or {})},
        path,
    )


def load_synthetic_classifier(variant: str = "clean", device: str = "cpu") -> BlackBox:
    """The shipped SmallCNN for a variant as a ready BlackBox (eval mode, [0, 1] inputs of any size).

    Weights are package data (``maskscope/resources/synthetic_<variant>.pt``), made by
    ``scripts/train_synthetic.py``.
    """
    return as_synthetic_blackbox(_load_network(variant), variant).to(device)


def _load_network(variant: str) -> SmallCNN:
    """The shipped SmallCNN of ``variant``, unwrapped."""
    if variant not in VARIANTS:
        raise ConfigError(f"unknown synthetic variant {variant!r}; choose one of {', '.join(VARIANTS)}")
    resource = resources.files("maskscope").joinpath(weights_resource(variant))
    try:
        blob = torch.load(io.BytesIO(resource.read_bytes()), map_location="cpu", weights_only=True)
        model = SmallCNN(int(blob["num_classes"]), tuple(blob["widths"]))
        state = blob["state_dict"]
        model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    except FileNotFoundError:
        raise CheckpointError(f"no shipped synthetic weights for {variant!r}: {resource}") from None
    except (KeyError, RuntimeError, ValueError, TypeError, EOFError, pickle.UnpicklingError) as exc:
        raise CheckpointError(f"corrupt synthetic checkpoint {resource}: {exc}") from None
    if blob.get("variant") != variant:
        trained_on = blob.get("variant")
        raise CheckpointError(f"{resource} was trained on the {trained_on!r} variant, not {variant!r}")
    return model



# -- one-part classifiers: the known answer of the part-saliency test -------------------------------
class PartMarginal(nn.Module):
    """The shipped 4-class parts network read as a 2-class classifier of ONE part.

    A parts class is (head, body); summing its probabilities over the other part,
    p(head h) = Σ_b p(h, b), gives a classifier whose label does not depend on the other part at
    all, so deleting that part cannot change the answer in expectation (measured:
    ``tests/analysis/test_parts.py``). Its logits are the log of those marginals (logsumexp).
    """

    def __init__(self, network: SmallCNN, part: str) -> None:
        super().__init__()
        if part not in PART_NAMES:
            raise ConfigError(f"unknown part {part!r}; choose one of {', '.join(PART_NAMES)}")
        self.network = network
        self.axis = 2 if part == "head" else 1  # classes are ordered head-major: index = 2 h + b

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.network(x)
        return logits.view(-1, 2, 2).logsumexp(dim=self.axis).log_softmax(dim=1)


def load_part_classifier(part: str = "head", device: str = "cpu") -> BlackBox:
    """The shipped parts network as a classifier of ``part`` alone ("head" or "body"), wrapped
    for [0, 1] images (``--classifier maskscope.data.synthetic_models:load_part_classifier`` gives
    the head classifier)."""
    network = _load_network("parts")
    names = [n.split()[0] if part == "head" else n.split()[1] for n in class_names("parts")]
    names = list(dict.fromkeys(names))
    model = PartMarginal(network, part).eval()
    return BlackBox(model, input_size=None, mean=SYNTHETIC_MEAN, std=SYNTHETIC_STD, class_names=names,
                    name=f"synthetic-parts-{part}").to(device)
