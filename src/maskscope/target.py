"""What a method explains: a target, parsed once where the user gives it.

A target is one of:

- a class index or name shared by every image (``2``, ``"tabby cat"``);
- ``"topK"``: each image's own K best classes, their scores summed (``None`` means ``"top1"``);
- one class per image: a list of indices or names, a tensor or array (B,) or (B, K);
- a callable of the model's output giving one score per image, ``fn(logits (N, C)) -> (N,)``
  (the sum of all dog classes, a regression output), or a list of one callable per image called
  on that image's output ``(C,) -> scalar``, as pytorch-grad-cam's target objects are.

``Target.parse`` reads any of these; ``resolve`` turns one into what the methods take: class indices
(B, K), or a ``ScoreTarget`` for a callable. ``class_targets`` is for code that needs classes (the
metrics, the real-time masker): it refuses a callable with one line.
"""

from __future__ import annotations

import numbers
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Union, cast

import numpy as np
import torch

from .errors import TargetError

if TYPE_CHECKING:
    from .blackbox import BlackBox

ScoreFunction = Callable[[torch.Tensor], torch.Tensor]
TargetSpec = Union[
    int, str, Sequence[int], Sequence[str], torch.Tensor, np.ndarray, ScoreFunction, Sequence[ScoreFunction],
    "Target", None,
]
TOP = re.compile(r"top(\d+)", re.IGNORECASE)


@dataclass(frozen=True, eq=False)
class Target:
    """A parsed target: ``top`` K best classes, or ``classes`` (one row shared by every image, or
    one row per image when ``per_image``), or a ``score`` function (or one per image)."""

    top: int | None = None
    classes: tuple[tuple[int | str, ...], ...] = ()
    per_image: bool = False
    score: ScoreFunction | tuple[ScoreFunction, ...] | None = None

    @classmethod
    def parse(cls, spec: TargetSpec, default: str = "top1") -> Target:
        """Any accepted target form (module docstring) as a ``Target``; ``None`` is ``default``."""
        if isinstance(spec, Target):
            return spec
        if spec is None:
            spec = default
        if isinstance(spec, np.ndarray):
            spec = torch.from_numpy(spec)
        if isinstance(spec, torch.Tensor) and spec.dim() > 0:
            return cls._from_tensor(spec)
        if callable(spec):
            return cls(score=spec)
        spec = scalar_target(spec)
        if isinstance(spec, str):
            match = TOP.fullmatch(spec.strip())
            if match:
                return cls(top=int(match.group(1)))
        if isinstance(spec, (int, str)):
            return cls(classes=((spec,),))
        items = list(cast(Sequence[Any], spec))
        if items and all(callable(item) for item in items):
            return cls(score=tuple(items), per_image=True)
        return cls(classes=tuple((scalar_target(item),) for item in items), per_image=True)

    @classmethod
    def _from_tensor(cls, t: torch.Tensor) -> Target:
        if t.is_meta:
            raise TargetError("the target tensor is on the meta device: it holds no class indices")
        if t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
            raise TargetError(f"a target tensor must hold integer class indices, got {t.dtype}")
        if t.dim() > 2:
            raise TargetError(f"a target tensor must be (B,) or (B, K), got shape {tuple(t.shape)}")
        rows = t.detach().cpu().long().view(t.shape[0], -1).tolist()
        # a single row of a tensor is shared by every image (a list of one is one image's target)
        return cls(classes=tuple(tuple(row) for row in rows), per_image=len(rows) != 1)

    def check(self, blackbox: BlackBox) -> Target:
        """This target with class names made indices, checked against the model's classes (before
        any image is read, so a bad class fails fast with one line)."""
        if self.top is not None:
            if not 1 <= self.top <= blackbox.num_classes:
                raise TargetError(f"cannot take the top {self.top} of {blackbox.num_classes} classes")
            return self
        if self.score is not None:
            return self
        rows = tuple(tuple(blackbox.class_index(c) for c in row) for row in self.classes)
        check_range(torch.tensor(rows, dtype=torch.long).view(len(rows), -1), blackbox.num_classes)
        return Target(classes=rows, per_image=self.per_image)

    def resolve(self, blackbox: BlackBox, images: torch.Tensor) -> torch.Tensor | ScoreTarget:
        """Class indices (B, K) int64 on the CPU for this batch, or a ``ScoreTarget``."""
        batch = images.shape[0]
        if self.score is not None:
            if isinstance(self.score, tuple) and len(self.score) != batch:
                raise TargetError(f"got {len(self.score)} target functions for {batch} images")
            return ScoreTarget(self.score, torch.arange(batch))
        if self.top is not None:
            self.check(blackbox)
            with torch.no_grad(), blackbox.evaluating():
                logits = blackbox(images.to(blackbox.device))
            return logits.topk(self.top, dim=1).indices.cpu()
        rows = [[blackbox.class_index(c) for c in row] for row in self.classes]
        if not rows:
            raise TargetError(f"got 0 targets for {batch} images")
        t = torch.tensor(rows, dtype=torch.long).view(len(rows), -1)
        if not self.per_image:
            t = t.expand(batch, -1)
        if t.shape[0] != batch:
            raise TargetError(f"got {t.shape[0]} targets for {batch} images")
        check_range(t, blackbox.num_classes)
        return t.clone()


class ScoreTarget:
    """A callable target resolved for a batch: ``self(logits)`` scores the rows it stands for.

    It indexes like the class-index tensor it replaces (``target[rows]``), so a method's images
    can leave the batch (early stopping) and each keeps its own function.
    """

    def __init__(self, score: ScoreFunction | tuple[ScoreFunction, ...], rows: torch.Tensor) -> None:
        self.score = score
        self.rows = rows

    @property
    def name(self) -> str:
        """A label for figures and records: the function's name, or "custom score"."""
        fn = self.score[0] if isinstance(self.score, tuple) else self.score
        name = getattr(fn, "__name__", type(fn).__name__)
        return "custom score" if name == "<lambda>" else str(name)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: Any) -> ScoreTarget:
        if torch.is_tensor(index):
            index = index.cpu()
        return ScoreTarget(self.score, self.rows[index])

    def to(self, *_args, **_kwargs) -> ScoreTarget:
        return self

    def cpu(self) -> ScoreTarget:
        return self

    def __call__(self, logits: torch.Tensor) -> torch.Tensor:
        if isinstance(self.score, tuple):
            scores = [self.score[int(r)](row) for r, row in zip(self.rows, logits)]
            out = torch.stack([torch.as_tensor(s, device=logits.device).reshape(()) for s in scores])
        else:
            out = torch.as_tensor(self.score(logits))
        if out.shape != (len(logits),):
            raise TargetError(
                f"a target function must give one score per image, shape ({len(logits)},); "
                f"got {tuple(out.shape)}"
            )
        return out.float()


def resolve(blackbox: BlackBox, images: torch.Tensor, target: TargetSpec,
            default: str = "top1") -> torch.Tensor | ScoreTarget:
    """``target`` for this batch: class indices (B, K) on the CPU or a ``ScoreTarget``."""
    if blackbox._num_classes is None and images.shape[0]:
        with torch.no_grad(), blackbox.evaluating():
            blackbox(images[:1].to(blackbox.device))  # learns the class count at these images' size
    return Target.parse(target, default).resolve(blackbox, images)


def class_targets(blackbox: BlackBox, images: torch.Tensor, target: TargetSpec, what: str = "this",
                  default: str = "top1") -> torch.Tensor:
    """``resolve`` for code that needs class indices (B, K): a callable target is a TargetError."""
    resolved = resolve(blackbox, images, target, default)
    if isinstance(resolved, ScoreTarget):
        raise TargetError(
            f"{what} needs class targets (an index, a name or topK), not a function of the output"
        )
    return resolved


def check_target(blackbox: BlackBox, target: TargetSpec) -> TargetSpec:
    """``BlackBox.check_target``: ``None`` passes through, ``"topK"`` comes back lower-cased, a class
    name or index becomes its index; per-image lists, tensors and callables come back as they are
    (``resolve`` checks them against the batch)."""
    if target is None:
        return None
    parsed = Target.parse(target)
    if parsed.top is not None:
        parsed.check(blackbox)
        return f"top{parsed.top}"
    if parsed.score is not None or not isinstance(scalar_target(target), (int, str)):
        return target
    return parsed.check(blackbox).classes[0][0]


def check_range(t: torch.Tensor, num_classes: int) -> None:
    bad = t[(t < 0) | (t >= num_classes)]
    if bad.numel():
        raise TargetError(f"target class {int(bad[0])} is out of range: the model has {num_classes} classes")


def scalar_target(value: Any) -> Any:
    """A target value as an ``int`` where it is an integer of any type (``np.int64``); a bool or a
    float (``2.5``, even ``3.0``) is a TargetError; anything else (a name) passes through."""
    if isinstance(value, torch.Tensor) and value.is_meta:
        raise TargetError("the target tensor is on the meta device: it holds no class indices")
    if isinstance(value, torch.Tensor) and value.dim() == 0:
        value = value.item()
    if isinstance(value, bool):
        raise TargetError(f"invalid target {value!r}: give a class index or name")
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        raise TargetError(f"target must be a whole class index or a class name, got {value!r}")
    return value
