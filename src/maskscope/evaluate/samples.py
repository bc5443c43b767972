"""The evaluated images: which ones, their split, target and ground truth, and their pixels.

Geometry: every image is resized (whole, without cropping) to the classifier's input size and the
ground-truth boxes are scaled with it (``boxes.scale_box``); every protocol works in those pixels.
Targets: the ground-truth class for annotated folders (the papers' protocol), the model's top-1
class for plain folders (which then get no box-based metrics).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from ..blackbox import BlackBox
from ..data.folders import Dataset, Item, select, split
from ..distributed import Distributed
from ..errors import ConfigError, DataError
from ..images import load_image, resize_image, to_tensor
from ..metrics import scale_box
from ..storage import content_hash
from .cache import MaskCache
from .config import EvalConfig


@dataclass
class EvalSample:
    """One evaluated image: its ground truth in evaluation pixels and its split (not to be confused
    with ``methods.realtime.data.Sample``, a training image of the masker)."""

    item: Item
    split: str
    target: int
    boxes: list[tuple[float, float, float, float]] = field(default_factory=list)
    sha256: str = ""  # of the image file's bytes: the cache key with the target


def working_size(model: BlackBox, dataset: Dataset) -> tuple[int, int]:
    if model.input_size is not None:
        return model.input_size
    first = dataset.items[0]
    if first.height and first.width:
        return first.height, first.width
    h, w = load_image(first.path).shape[:2]
    return h, w


def load_images(samples: Sequence[EvalSample], size: tuple[int, int]) -> torch.Tensor:
    """(B, 3, h, w) batch; DataError when a file's size contradicts its annotation."""
    out = []
    for s in samples:
        array = load_image(s.item.path)
        h, w = array.shape[:2]
        if s.item.width is not None and (w, h) != (s.item.width, s.item.height):
            raise DataError(
                f"{s.item.path}: annotations say {s.item.width}x{s.item.height} but the image is {w}x{h}"
            )
        out.append(resize_image(to_tensor(array), size))
    return torch.stack(out)


def object_mask(item: Item, size: tuple[int, int]) -> torch.Tensor | None:
    """The item's pixel-exact object mask (synthetic data), resized (nearest) to ``size``."""
    if item.object_mask is None:
        return None
    array = load_image(item.object_mask)[..., 0] > 127
    m = torch.from_numpy(array).float()[None, None]
    return F.interpolate(m, size=size, mode="nearest")[0, 0] > 0.5


def make_samples(dataset: Dataset, model: BlackBox, config: EvalConfig,
                 size: tuple[int, int]) -> list[EvalSample]:
    items = select(dataset.items, config.limit, config.seed)
    splits = split(items, config.tune_fraction, config.seed)
    samples = []
    for item in items:
        boxes = []
        if item.boxes:
            boxes = [scale_box(b, item.size, size) for b in item.boxes]
        try:
            digest = content_hash(item.path)
        except OSError as exc:
            raise DataError(f"{item.path}: cannot read ({exc.strerror or exc})") from None
        samples.append(EvalSample(item, splits[item.key], -1 if item.label is None else item.label, boxes,
                                  digest))
    num_classes = model.num_classes
    bad = [s for s in samples if s.target >= num_classes]
    if bad:
        raise DataError(
            f"{bad[0].item.name}: class_index {bad[0].target} does not exist "
            f"for a model with {num_classes} classes"
        )
    if not dataset.annotated:
        _predict_targets(samples, model, size, config.batch_size, config.ddp)
    return samples


@torch.no_grad()
def _predict_targets(samples: list[EvalSample], model: BlackBox, size: tuple[int, int],
                     batch_size: int, ddp: Distributed) -> None:
    """Plain folders have no labels: explain the class the model predicts (each rank predicts its
    share of the batches; every rank then has every target)."""
    predicted: dict[str, int] = {}
    with model.evaluating():
        for chunk in ddp.batches(samples, batch_size):
            logits = model(load_images(chunk, size).to(model.device))
            predicted.update((s.item.key, int(t)) for s, t in zip(chunk, logits.argmax(1).tolist()))
    for part in ddp.gather(predicted):
        for s in samples:
            s.target = part.get(s.item.key, s.target)


def cached_samples(samples: list[EvalSample], caches: dict[str, MaskCache], method: str) -> list[EvalSample]:
    """The samples whose ``method`` mask is cached and still valid (``EvalConfig.cached_only``)."""
    if method not in caches:
        raise ConfigError(f"--cached-only {method!r} is not among the methods run ({', '.join(caches)})")
    cache = caches[method]
    kept = [s for s in samples
            if cache.status(s.item.key, s.sha256, s.target, s.item.path) in ("ok", "legacy")]
    if not kept:
        raise DataError(f"no cached {method} masks in {cache.folder}: nothing to score with --cached-only")
    return kept


def cache_status(samples: Sequence[EvalSample], cache: MaskCache) -> dict[str, str]:
    """Every sample's entry checked against its key (content hash + target): key → ``ok``,
    ``missing``, ``stale`` (to recompute) or ``legacy`` (adopted here: reused)."""
    out = {}
    for s in samples:
        out[s.item.key] = status = cache.status(s.item.key, s.sha256, s.target, s.item.path)
        if status == "legacy":
            cache.adopt(s.item.key, s.sha256)
    return out
