"""The black box: any classifier, queried (and differentiated) only through its input.

Every method in maskscope works on images in [0, 1] with shape (B, 3, H, W). The wrapper owns the
model's own preprocessing (resize to its input size, normalise) so that methods never need to know
which model they explain.
"""

from __future__ import annotations

import contextlib
import numbers
from collections.abc import Callable, Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .errors import TargetError

TargetSpec = int | str | Sequence[int] | Sequence[str] | torch.Tensor | None


class BlackBox(nn.Module):
    """Wrap a classifier mapping a normalised image batch to logits (B, C).

    Args:
        model: any callable or ``nn.Module`` (torchvision, timm or your own).
        input_size: (H, W) the model expects; images of another size are resized bilinearly.
            ``None`` passes images through at their own size.
        mean, std: per-channel normalisation applied to [0, 1] images.
        class_names: optional list of C human-readable names, for targets given by name.
    """

    def __init__(
        self,
        model: Callable[[torch.Tensor], torch.Tensor],
        input_size: tuple[int, int] | None = (224, 224),
        mean: Sequence[float] = (0.485, 0.456, 0.406),
        std: Sequence[float] = (0.229, 0.224, 0.225),
        class_names: Sequence[str] | None = None,
        name: str = "model",
    ) -> None:
        super().__init__()
        if isinstance(model, BlackBox):
            raise TypeError("model is already a BlackBox")
        self.model = model
        self.input_size = tuple(input_size) if input_size is not None else None
        self.register_buffer(
            "mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1), persistent=False
        )
        self.register_buffer(
            "std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1), persistent=False
        )
        self.class_names = list(class_names) if class_names is not None else None
        self.name = name
        self._num_classes: int | None = len(self.class_names) if self.class_names else None

    # -- queries -------------------------------------------------------------------------------
    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """[0, 1] images → the model's normalised input."""
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"expected images of shape (B, 3, H, W), got {tuple(images.shape)}")
        if self.input_size is not None and tuple(images.shape[-2:]) != self.input_size:
            images = F.interpolate(images, size=self.input_size, mode="bilinear", align_corners=False)
        return (images - self.mean.to(images)) / self.std.to(images)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Logits (B, C) for a batch of [0, 1] images."""
        return self.model(self.preprocess(images))

    def probabilities(self, images: torch.Tensor) -> torch.Tensor:
        return self(images).softmax(dim=1)

    @property
    def device(self) -> torch.device:
        if isinstance(self.model, nn.Module):
            for p in self.model.parameters():
                return p.device
        return self.mean.device

    @property
    def num_classes(self) -> int:
        if self._num_classes is None:
            h, w = self.input_size or (64, 64)
            with torch.no_grad(), self.evaluating():
                self._num_classes = int(self(torch.zeros(1, 3, h, w, device=self.device)).shape[1])
        return self._num_classes

    def class_name(self, index: int) -> str:
        if self.class_names is None:
            return f"class {index}"
        return self.class_names[index].split(",")[0].strip()

    # -- state management ---------------------------------------------------------------------
    @contextlib.contextmanager
    def evaluating(self) -> Iterator[BlackBox]:
        """Put the model in eval mode for the duration, then restore every submodule's mode.

        Methods differentiate with ``torch.autograd.grad`` w.r.t. their own tensors only, so no
        parameter ``requires_grad`` flag is ever touched and no ``.grad`` is ever written.
        """
        with eval_mode(self.model):
            yield self

    # -- targets -------------------------------------------------------------------------------
    def resolve_targets(self, images: torch.Tensor, target: TargetSpec = "top1") -> torch.Tensor:
        """Resolve a target spec to a LongTensor (B, K) of class indices (K = 1 except top-k).

        Accepted: an int (same class for all), a class name ("tabby cat"), a per-sample list or
        tensor of ints or names, ``"top1"`` or ``"topK"`` (the model's own K best classes), ``None``
        (= "top1").
        """
        batch = images.shape[0]
        if target is None:
            target = "top1"
        target = _scalar_target(target)
        if isinstance(target, np.ndarray):
            target = torch.from_numpy(target)
        if isinstance(target, str) and target.lower().startswith("top") and target[3:].isdigit():
            k = int(target[3:])
            if not 1 <= k <= self.num_classes:
                raise TargetError(f"cannot take the top {k} of {self.num_classes} classes")
            with torch.no_grad(), self.evaluating():
                logits = self(images.to(self.device))
            return logits.topk(k, dim=1).indices.cpu()
        if isinstance(target, (int, str)):
            target = [target] * batch
        if isinstance(target, torch.Tensor):
            if target.is_floating_point() or target.is_complex() or target.dtype == torch.bool:
                raise TargetError(f"a target tensor must hold integer class indices, got {target.dtype}")
            t = target.detach().cpu().long()
            t = t.view(-1, 1) if t.dim() <= 1 else t
            if t.dim() == 2 and t.shape[0] == 1 and batch > 1:
                t = t.expand(batch, -1)
        else:
            target = list(target)
            t = torch.tensor([[self.class_index(x)] for x in target], dtype=torch.long).view(len(target), 1)
        if t.shape[0] != batch:
            raise TargetError(f"got {t.shape[0]} targets for {batch} images")
        self._check_range(t)
        return t.clone()

    def check_target(self, target: TargetSpec) -> TargetSpec:
        """Check one target before any image is read, so a bad class fails fast with one line.

        ``None`` passes through, ``"topK"`` is checked against the number of classes (and
        lower-cased), a class name or index becomes its index; per-image lists and tensors are
        returned as they are (``resolve_targets`` checks them against the batch). This is the only
        place a target is validated: the CLI and the summaries call it rather than repeat it.
        """
        if target is None:
            return None
        target = _scalar_target(target)
        text = target.strip().lower() if isinstance(target, str) else ""
        if text.startswith("top") and text[3:].isdigit():
            k = int(text[3:])
            if not 1 <= k <= self.num_classes:
                raise TargetError(f"cannot take the top {k} of {self.num_classes} classes")
            return text
        if isinstance(target, (int, str)):
            index = self.class_index(target)
            self._check_range(torch.tensor([index]))
            return index
        return target

    def _check_range(self, t: torch.Tensor) -> None:
        bad = t[(t < 0) | (t >= self.num_classes)]
        if bad.numel():
            raise TargetError(
                f"target class {int(bad[0])} is out of range: the model has {self.num_classes} classes"
            )

    def class_index(self, name_or_index: int | str) -> int:
        """Index of a class given by int (numpy ints too), numeric string or (case-insensitive) name.

        A name matches a class's full entry or one of its synonyms; a full entry wins ("maillot"),
        and a name that still matches several classes ("crane": the bird and the machine, "panda")
        is a TargetError listing them, rather than a silent pick of the first.
        """
        value = _scalar_target(name_or_index)
        if isinstance(value, int):
            return value
        text = str(value).strip()
        if text.lstrip("-").isdigit():
            return int(text)
        if self.class_names is None:
            raise TargetError(f"unknown class {text!r}: this model has no class names, give an index")
        wanted = text.lower()
        entries = [entry.lower() for entry in self.class_names]
        matches = [i for i, entry in enumerate(entries) if entry == wanted] or [
            i for i, entry in enumerate(entries) if wanted in (s.strip() for s in entry.split(","))
        ]
        if len(matches) == 1:
            return matches[0]
        if matches:
            named = ", ".join(f"{i} ({self.class_name(i)})" for i in matches)
            raise TargetError(f"class name {text!r} is ambiguous: it names classes {named}; give the index")
        raise TargetError(f"unknown class name {text!r}")


def _scalar_target(value):
    """A target value as an ``int`` where it is an integer of any type (``np.int64``); a bool or a
    float (``2.5``, even ``3.0``) is a TargetError; anything else (a name) passes through."""
    if isinstance(value, torch.Tensor) and value.dim() == 0:
        value = value.item()
    if isinstance(value, bool):
        raise TargetError(f"invalid target {value!r}: give a class index or name")
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        raise TargetError(f"target must be a whole class index or a class name, got {value!r}")
    return value


@contextlib.contextmanager
def eval_mode(model: object) -> Iterator[None]:
    """Every submodule of ``model`` in eval mode for the duration, then each one's own mode back
    (``model.eval()`` / ``.train()`` would lose a mix of modes); a non-module is left alone."""
    modules = list(model.modules()) if isinstance(model, nn.Module) else []
    modes = [m.training for m in modules]
    try:
        for m in modules:
            m.training = False
        yield
    finally:
        for m, mode in zip(modules, modes):
            m.training = mode


def as_blackbox(model: BlackBox | Callable[[torch.Tensor], torch.Tensor]) -> BlackBox:
    """Accept either a BlackBox or a bare model, which then sees the [0, 1] images unchanged."""
    if isinstance(model, BlackBox):
        return model
    return BlackBox(model, input_size=None, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))
