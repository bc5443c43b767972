"""Class names: given as a list or a dict {index: name}, or read from the model itself (a Hugging
Face ``config.id2label``), so that targets, outputs and the explorer show the user's own names."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from .errors import ConfigError


def class_list(classes: Sequence[str] | Mapping[int, str]) -> list[str]:
    """Class names as a list: a sequence of names, or a dict {index: name} covering 0 … C-1."""
    if isinstance(classes, str):
        raise ConfigError("class names must be a list of names or a dict {index: name}, not one string")
    if isinstance(classes, Mapping):
        try:
            named = {int(k): str(v) for k, v in classes.items()}
        except (TypeError, ValueError):
            raise ConfigError("a dict of class names needs integer indices as keys") from None
        if sorted(named) != list(range(len(named))):
            first = min(set(range(len(named))) - set(named))
            raise ConfigError(f"class names must be indexed 0 to {len(named) - 1} without gaps; "
                              f"index {first} has no name")
        names = [named[i] for i in range(len(named))]
    else:
        try:
            names = [str(n) for n in classes]
        except TypeError:
            raise ConfigError(f"class names must be a list or a dict, got {type(classes).__name__}") from None
    if not names:
        raise ConfigError("the list of class names is empty")
    return names


def model_class_names(model: object) -> list[str] | None:
    """A Hugging Face model's ``config.id2label``, unless it holds only the library's placeholders
    (``LABEL_0``, ``LABEL_1``, ...), which name nothing."""
    labels = getattr(getattr(model, "config", None), "id2label", None)
    if not isinstance(labels, Mapping) or not labels:
        return None
    try:
        names = class_list(labels)
    except ConfigError:
        return None
    if all(name == f"LABEL_{i}" for i, name in enumerate(names)):
        return None
    return names
