"""Build a masker from a JSON-able config, and save / load masker checkpoints safely.

A checkpoint holds the config (which classifier, how many classes, the architecture) and the
learned weights only: with a frozen pretrained encoder that is the decoder and the class embedding,
the encoder being rebuilt from the classifier itself. Loading uses ``torch.load(weights_only=True)``
(no pickled code runs) and refuses a checkpoint made for another classifier or class count.

A masker records the fingerprint of the classifier it was trained for: the sha256 of its parameters
and buffers, so that two models of the same architecture, name and class count are still told apart.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import textwrap
import warnings
from importlib import resources
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ...blackbox import BlackBox
from ...errors import CheckpointError, ConfigError
from ...storage import write_atomic
from .backbone import find_stages, model_backbone
from .encoders import Encoder, SmallEncoder, efficientnet_backbone
from .model import SELECTORS, RealTimeMasker, classifier_head

FORMAT = "maskscope-realtime-masker"
VERSION = 1
ENCODERS = ("auto", "efficientnet", "model", "small")
# upsampler widths, deepest first. The paper's 768/384/192 suit ResNet-50's 2048-channel maps; the
# Lite0 maps are 6–8× narrower, and so is this decoder (it must stay cheap next to the classifier).
DEFAULT_WIDTHS = {"efficientnet": [128, 64, 32], "model": [128, 64, 32], "small": [64]}
# paper: 3 bottlenecks per upsampler on ImageNet, 1 on CIFAR-10
DEFAULT_BLOCKS = {"efficientnet": 3, "model": 3, "small": 1}


def shipped_masker_path(classifier: str) -> Path:
    return Path(str(resources.files("maskscope").joinpath(f"resources/masker_{classifier}.pt")))


def masker_config(
    blackbox: BlackBox,
    encoder: str = "auto",
    widths: list[int] | None = None,
    blocks: int | None = None,
    selector: str = "auto",
    encoder_layers: list[str] | None = None,
) -> dict[str, Any]:
    """The config describing a masker for ``blackbox``; ``auto`` picks the frozen EfficientNet
    backbone when the classifier is one, else the classifier's own stages or token blocks when
    they are found (``model``, see ``backbone.py``), else the small from-scratch encoder.
    ``encoder_layers`` names the classifier's layers to read instead (``model`` only).

    ``selector="auto"`` ties the class selector to the classifier's last linear layer
    (``classifier-tied``, see ``FeatureFilter``) whenever that layer reads the encoder's deepest
    map — the case for the frozen backbone of a classifier that ends in pooling + linear; for the
    user's own model only when the head reads the map's average (``backbone.head_pools``), not a
    class token — and otherwise learns it (``learned``)."""
    if encoder not in ENCODERS:
        raise ConfigError(f"unknown encoder {encoder!r}; choose one of {', '.join(ENCODERS)}")
    if selector not in ("auto", *SELECTORS):
        choices = ", ".join(SELECTORS)
        raise ConfigError(f"unknown class selector {selector!r}; choose auto or one of {choices}")
    if encoder_layers and encoder not in ("auto", "model"):
        raise ConfigError(f"encoder layers are the classifier's own; the {encoder!r} encoder reads none")
    if encoder == "auto":
        encoder = _auto_encoder(blackbox, encoder_layers)
    built = None if encoder == "small" else _encoder(blackbox, encoder, encoder_layers)
    layers = getattr(built, "layers", None) if encoder == "model" else None
    weights = None if built is None else _class_weights(blackbox, built)
    if selector == "auto":
        tied = weights is not None and getattr(built, "head_pools", True)
        selector = "classifier-tied" if tied else "learned"
    elif selector != "learned" and weights is None:
        raise ConfigError(
            f"selector {selector!r} needs a frozen classifier backbone whose last linear layer reads its "
            "deepest map; use --selector learned"
        )
    if layers and not widths:  # one upsampler per map but the deepest
        widths = DEFAULT_WIDTHS[encoder][-(len(layers) - 1):]
    return {
        "format": FORMAT,
        "version": VERSION,
        "classifier": blackbox.name,
        "num_classes": int(blackbox.num_classes),
        "encoder": encoder,
        **({"encoder_layers": layers} if layers else {}),
        "widths": list(widths or DEFAULT_WIDTHS[encoder]),
        "blocks": int(blocks or DEFAULT_BLOCKS[encoder]),
        "input_size": list(blackbox.input_size) if blackbox.input_size is not None else None,
        "selector": selector,
        # the mask times the class gate (MaskDecoder.forward); kept off for a learned selector, whose
        # random start would halve every mask, until it is measured there
        "output_gate": selector != "learned",
        "classifier_fingerprint": classifier_fingerprint(blackbox),
    }


def classifier_fingerprint(blackbox: BlackBox) -> str | None:
    """The sha256 of the classifier's parameters and buffers (values, dtypes, shapes, in module
    order); None for a classifier that is not an ``nn.Module``."""
    model = blackbox.model
    if not isinstance(model, nn.Module):
        return None
    digest = hashlib.sha256()
    for tensor in itertools.chain(model.parameters(), model.buffers()):
        data = tensor.detach().cpu().contiguous().reshape(-1)
        digest.update(f"{data.dtype}{tuple(tensor.shape)}".encode())
        digest.update(data.view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _auto_encoder(blackbox: BlackBox, layers: list[str] | None) -> str:
    if hasattr(blackbox.model, "_conv_stem"):  # the embedded EfficientNet: its own tested path
        return "efficientnet"
    return "model" if layers or find_stages(blackbox) else "small"


def _encoder(blackbox: BlackBox, kind: str, layers: list[str] | None = None) -> Encoder:
    if kind == "efficientnet":
        return efficientnet_backbone(blackbox)
    if kind == "model":
        return model_backbone(blackbox, layers)
    if kind == "small":
        return SmallEncoder()
    raise ConfigError(f"unknown encoder {kind!r}")


def _class_weights(blackbox: BlackBox, encoder: Encoder) -> torch.Tensor | None:
    """The classifier's last-layer rows when they read the frozen encoder's deepest map (pooled,
    or a token of it: a vision transformer's class-token head reads the final norm's tokens)."""
    if isinstance(encoder, SmallEncoder):  # a from-scratch encoder's features are not the classifier's
        return None
    return classifier_head(blackbox.model, encoder.channels[-1], int(blackbox.num_classes))


def build_masker(blackbox: BlackBox, config: dict[str, Any]) -> RealTimeMasker:
    """A freshly initialised masker for ``blackbox`` from ``config`` (see ``masker_config``)."""
    encoder = _encoder(blackbox, config["encoder"], config.get("encoder_layers"))
    size = config.get("input_size")
    selector = config.get("selector", "learned")  # checkpoints before selectors existed: learned
    masker = RealTimeMasker(
        encoder,
        config["num_classes"],
        config["widths"],
        config["blocks"],
        tuple(size) if size else None,
        config=config,
        selector=selector,
        class_weights=None if selector == "learned" else _class_weights(blackbox, encoder),
        output_gate=bool(config.get("output_gate", False)),  # older checkpoints: no gate
    )
    return masker.to(blackbox.device)


def check_compatible(config: dict[str, Any], blackbox: BlackBox, source: str,
                     allow_other_classifier: bool = False, shipped: bool = False) -> None:
    """CheckpointError unless ``config`` was made for this classifier (its name and, where the
    checkpoint records one, its fingerprint) and class count. ``allow_other_classifier`` skips the
    classifier check (the class count must still match). An older checkpoint without a fingerprint
    is accepted with a warning, once per file; the shipped masker is matched by its name alone."""
    if config.get("format") != FORMAT:
        raise CheckpointError(f"{source}: not a maskscope masker checkpoint")
    if int(config.get("version", -1)) > VERSION:
        raise CheckpointError(f"{source}: made by a newer maskscope (format version {config.get('version')})")
    if int(config.get("num_classes", -1)) != blackbox.num_classes:
        raise CheckpointError(
            f"{source}: masker has {config.get('num_classes')} classes, "
            f"the classifier has {blackbox.num_classes}"
        )
    if not allow_other_classifier:
        _check_classifier(config, blackbox, source, shipped)


_UNCHECKED: set[str] = set()  # checkpoints without a fingerprint already warned about
OVERRIDE = "allow_other_classifier=True (--masker-any-classifier on the command line)"


def _check_classifier(config: dict[str, Any], blackbox: BlackBox, source: str, shipped: bool) -> None:
    trained_for = config.get("classifier_fingerprint")
    current = classifier_fingerprint(blackbox) if trained_for else None
    if trained_for and current and trained_for != current:
        raise CheckpointError(
            f"{source}: masker was trained for classifier {config.get('classifier')!r} (weights "
            f"{trained_for[:12]}), not for this classifier {blackbox.name!r} (weights {current[:12]}); "
            f"pass {OVERRIDE} to use it anyway"
        )
    if config.get("classifier") != blackbox.name:
        raise CheckpointError(
            f"{source}: masker was trained for classifier {config.get('classifier')!r}, not "
            f"{blackbox.name!r}; pass {OVERRIDE} to use it anyway"
        )
    if not trained_for and not shipped and source not in _UNCHECKED:
        _UNCHECKED.add(source)
        warnings.warn(
            f"{source}: an older masker checkpoint without a classifier fingerprint; it cannot be checked "
            f"against this classifier's weights (only its name, {blackbox.name!r})",
            stacklevel=4,
        )


def read_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """The checkpoint dictionary, or CheckpointError for a missing, corrupt or foreign file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for corrupt files (pickle, zip, runtime)
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{path}: not a readable checkpoint ({shorten(reason, 160)})") from None
    if not isinstance(data, dict) or not isinstance(data.get("config"), dict) or "model" not in data:
        raise CheckpointError(f"{path}: not a maskscope masker checkpoint")
    check_schema(data, str(path))
    return data


def check_schema(data: dict[str, Any], source: str) -> None:
    """CheckpointError, with one line naming the field, unless every field the masker is built from
    has its type and range: a crafted or damaged file never reaches the model code."""
    config = data["config"]
    if config.get("format") != FORMAT:
        raise CheckpointError(f"{source}: not a maskscope masker checkpoint")

    def bad(key: str, expected: str) -> CheckpointError:
        return CheckpointError(f"{source}: config {key!r} must be {expected}, got {_show(config.get(key))}")

    if not _whole(config.get("version"), 1):
        raise bad("version", "an integer of at least 1")
    if config["version"] > VERSION:  # a newer layout: its other fields are not ours to judge
        raise CheckpointError(f"{source}: made by a newer maskscope (format version {config['version']})")
    if not isinstance(config.get("classifier"), str):
        raise bad("classifier", "a classifier name")
    if not _whole(config.get("num_classes"), 1):
        raise bad("num_classes", "an integer of at least 1")
    if config.get("encoder") not in ENCODERS[1:]:
        raise bad("encoder", f"one of {', '.join(ENCODERS[1:])}")
    layers = config.get("encoder_layers")
    if config["encoder"] == "model" and not (isinstance(layers, list) and layers
                                             and all(isinstance(n, str) for n in layers)):
        raise bad("encoder_layers", "a non-empty list of layer names")
    widths = config.get("widths")
    if not isinstance(widths, list) or not widths or not all(_whole(w, 1) for w in widths):
        raise bad("widths", "a non-empty list of positive integers")
    if not _whole(config.get("blocks"), 1):
        raise bad("blocks", "an integer of at least 1")
    size = config.get("input_size")
    if size is not None and not (isinstance(size, list) and len(size) == 2
                                 and all(_whole(v, 1) for v in size)):
        raise bad("input_size", "null or [height, width] in pixels")
    if config.get("selector", "learned") not in SELECTORS:
        raise bad("selector", f"one of {', '.join(SELECTORS)}")
    if not isinstance(config.get("output_gate", False), bool):
        raise bad("output_gate", "true or false")
    model = data["model"]
    if not isinstance(model, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                              for k, v in model.items()):
        raise CheckpointError(f"{source}: 'model' must map parameter names to tensors, got {_show(model)}")


def _whole(value: Any, minimum: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


def _show(value: Any) -> str:
    return shorten(repr(value), 60) if not isinstance(value, (dict, list)) else type(value).__name__


def shorten(text: str, width: int) -> str:
    """``text`` on one line, cut at a word boundary (never mid-word) with " …" when it is longer."""
    return textwrap.shorten(" ".join(text.split()), width, placeholder=" …")


def load_masker(
    blackbox: BlackBox,
    path: str | os.PathLike | None = None,
    device: torch.device | str | None = None,
    allow_other_classifier: bool = False,
) -> RealTimeMasker:
    """Load a trained masker for ``blackbox`` (``path=None``: the one shipped for it), in eval mode.
    A masker trained for another classifier (other weights) is refused unless
    ``allow_other_classifier``."""
    shipped = path is None
    if path is None:
        path = shipped_masker_path(blackbox.name)
        if not path.is_file():
            raise CheckpointError(
                f"no masker is shipped for classifier {blackbox.name!r}; train one with `maskscope train` "
                "and pass it as masker= (--masker on the command line)"
            )
    data = read_checkpoint(path)
    check_compatible(data["config"], blackbox, str(path), allow_other_classifier, shipped)
    with torch.random.fork_rng(devices=[]):  # the initial weights are overwritten: leave the global RNG alone
        masker = build_masker(blackbox, data["config"])
    state = {k: v.float() if v.is_floating_point() else v for k, v in data["model"].items()}
    try:
        masker.load_state_dict(state)
    except RuntimeError as exc:
        reason = shorten(str(exc), 200)
        raise CheckpointError(f"{path}: weights do not fit the masker architecture ({reason})") from None
    return masker.to(device or blackbox.device).eval()


def export_weights(masker: RealTimeMasker, path: str | os.PathLike, half: bool = True) -> Path:
    """Write only what inference needs (config + learned weights, fp16 by default) to ``path``,
    through a temporary file: training rewrites its best weights as it goes, and a run killed
    mid-write must leave the previous ones whole."""
    state = masker.state_dict()
    if half:
        state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"config": dict(masker.config), "model": {k: v.cpu() for k, v in state.items()}}
    write_atomic(path, lambda handle: torch.save(payload, handle))
    return path
