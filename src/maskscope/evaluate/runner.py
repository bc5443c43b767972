"""Run saliency methods over a dataset, cache every mask, and score them with the papers' protocols.

Two phases, so that an interrupted run loses at most one batch:

1. *compute*: for each method, the images whose mask is not yet cached are explained in batches;
   each mask is stored with the per-image scores that need the classifier (Dabkowski's saliency
   metric, Godi's % drop, Fong's minimal suppressive boxes, RISE's deletion / insertion AUC, Fong's
   §5.2 representativeness and the cross-perturbation drops), all computed from the stored float16
   mask. Cached images are skipped; cached entries that predate the §5.2 scores get them from their
   mask (``representativeness.py``).
2. *score*: the cached masks are read back and the box-based protocols (localisation error, pointing
   game, background mass) are computed. Thresholds for localisation are tuned on the held-out *tune*
   split (``data.folders.split``) and every reported number is over the *report* split only.

Geometry: every image is resized (whole, without cropping) to the classifier's input size and the
ground-truth boxes are scaled with it (``boxes.scale_box``); all protocols work in those
pixels (the pointing game's 15 px tolerance included). For the shared 227×227 ImageNet sample and a
224×224 model this differs from the stored pixels by 1.3 %.

Targets: the ground-truth class for annotated folders (the papers' protocol: Dabkowski gives the
masking model the ground-truth label), the model's top-1 class for plain folders (which then get no
box-based metrics).
"""

from __future__ import annotations

import inspect
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ..blackbox import BlackBox
from ..data.folders import Dataset, Item, select, split
from ..distributed import Distributed
from ..errors import ConfigError, DataError, MaskscopeError
from ..fingerprint import model_fingerprint
from ..images import load_image, resize_image, to_tensor
from ..methods import get_method
from ..methods.optimise import MAX_ITERATIONS, whole_number
from ..metrics import (
    LEVELS,
    LocalisationError,
    PointingGame,
    background_by_class,
    deletion_insertion_auc,
    mask_box_suppression,
    probability_drop,
    saliency_metric,
    scale_box,
    tune_threshold,
)
from ..storage import content_hash
from . import representativeness as repr_group
from .cache import MaskCache

# 2: blur σ0 and occlusion's blur fill scale with the image (masks at 224 px are unchanged)
CACHE_VERSION = 2
TUNED_MODES = ("value", "energy", "mean")
ITERATIVE = ("meaningful", "crisp", "extremal")  # methods with an optimiser schedule (``early_stop``)
GROUND_TRUTH = "gt-boxes"
# rows added to every table, as the papers do: centred box of half the area, whole image, the truth
REFERENCE_ROWS = ("center", "full", GROUND_TRUTH)

# Options each method runs with during evaluation (listed in the table footer). Every method
# explains the ground-truth class with its default settings: meaningful its default preset
# (``fong2017``: fixed-blur, relative score, λ1 = 1e-3), crisp Godi's two-stage schedule on
# ``fong2017-paper-blur``. ``--option meaningful.preset=...`` measures another preset.
METHOD_OPTIONS: dict[str, dict[str, Any]] = {}


@dataclass
class EvalConfig:
    methods: Sequence[str]
    batch_size: int = 8
    iterations: int | None = None
    limit: int | None = None
    seed: int = 0
    tune_fraction: float = 0.3
    progress: bool = True
    references: bool = True
    pointing_tolerance: float = 15.0  # pixels at the evaluation size (Zhang et al.: 15 px)
    options: dict[str, dict[str, Any]] = field(default_factory=dict)  # method → extra keyword options
    report: Callable[[str], None] | None = None  # told, in one line per method, about stale cache entries
    # score only the images whose masks of this method are already cached (a time-boxed run of a
    # slow method: every row is then compared on the same images; the others compute theirs)
    cached_only: str | None = None
    # this process's place under torchrun: it computes its share of the batches, rank 0 scores
    ddp: Distributed = field(default_factory=Distributed)

    def rows(self) -> list[str]:
        """Methods requested, then the reference rows not already among them."""
        rows = list(dict.fromkeys(self.methods))
        if self.references:
            rows += [r for r in REFERENCE_ROWS if r not in rows]
        return rows


@dataclass
class EvalSample:
    """One evaluated image: its ground truth in evaluation pixels and its split (not to be confused
    with ``methods.realtime.data.Sample``, a training image of the masker)."""

    item: Item
    split: str
    target: int
    boxes: list[tuple[float, float, float, float]] = field(default_factory=list)
    sha256: str = ""  # of the image file's bytes: the cache key with the target


@dataclass
class Results:
    """What ``evaluate`` returns: per-method metrics, plus what the plots need."""

    metrics: dict[str, dict[str, Any]]
    info: dict[str, Any]
    samples: list[EvalSample]
    size: tuple[int, int]
    caches: dict[str, MaskCache]


# -- options -------------------------------------------------------------------------------------
def method_options(name: str, iterations: int | None,
                   extra: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """The keyword options ``name`` runs with; ``iterations`` scales the iterative methods
    (crisp's full-resolution stage keeps the paper's 2:1 ratio, 300 + 150); ``extra[name]`` (the
    user's ``--option``) overrides the rest."""
    options = dict(METHOD_OPTIONS.get(name, {}))
    if iterations is not None:
        if iterations < 1:
            raise ConfigError(f"--iterations must be at least 1, got {iterations}")
        if name in ITERATIVE:
            options["iterations"] = iterations
        if name == "crisp":
            options["crisp_iterations"] = max(1, iterations // 2)
    options.update((extra or {}).get(name, {}))
    return options


def check_options(methods: Sequence[str], extra: dict[str, dict[str, Any]]) -> None:
    """ConfigError for an option of a method not being evaluated, or one the method does not take."""
    for name, opts in extra.items():
        if name not in methods or name == GROUND_TRUTH:
            raise ConfigError(f"option for {name!r}, which is not among the methods evaluated")
        accepted = inspect.signature(get_method(name)).parameters
        for key, value in opts.items():
            if key not in accepted or key in ("model", "images", "target"):
                raise ConfigError(f"method {name!r} has no option {key!r}")
            annotation = str(accepted[key].annotation)  # a count or a size in px: whole, capped
            if annotation.split("|")[0].strip() == "int" and not (value is None and "None" in annotation):
                whole_number(f"--option {name}.{key}", value, 0 if key in ("seed", "jitter") else 1,
                             MAX_ITERATIONS if "iterations" in key else None)


def check_methods(names: Sequence[str]) -> None:
    """ConfigError for any unknown method, before any work is done."""
    if not names:
        raise ConfigError("no methods given")
    for name in names:
        if name != GROUND_TRUTH:
            get_method(name)


# -- data ----------------------------------------------------------------------------------------
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


# -- phase 1: masks and model-based scores --------------------------------------------------------
def _call_method(name: str, model: BlackBox, images: torch.Tensor, samples: Sequence[EvalSample],
                 options: dict[str, Any], size: tuple[int, int]) -> tuple[torch.Tensor, list[float] | None]:
    """Salient masks (B, 1, h, w) in [0, 1] of one batch, and the optimiser iterations each image's
    mask took (iterative methods; extremal: the mean over its area rows)."""
    if name == GROUND_TRUTH:  # the largest box; why: ``methods.baselines.ground_truth_boxes``
        from ..methods.baselines import ground_truth_boxes  # captum: only when asked for

        return ground_truth_boxes(images.new_zeros(len(samples), 3, *size).cpu(),
                                  [s.boxes for s in samples]).masks.cpu(), None
    fn = get_method(name)
    kwargs = dict(options)
    if "progress" in inspect.signature(fn).parameters:
        kwargs["progress"] = False
    targets = torch.tensor([s.target for s in samples], dtype=torch.long)
    explanation = fn(model, images, target=targets, **kwargs)
    masks = explanation.masks.detach().float()
    used = explanation.iterations_used
    if used is not None:
        index = explanation.image_index if explanation.image_index is not None else torch.arange(len(used))
        used = [float(used[index == i].float().mean()) for i in range(len(samples))]
    if explanation.image_index is not None:  # several masks per image (extremal): combine them
        from ..methods.extremal import combine_areas

        masks = combine_areas(explanation).float()
    if masks.shape[-2:] != images.shape[-2:]:
        masks = F.interpolate(masks, size=images.shape[-2:], mode="bilinear", align_corners=False)
    return masks.clamp(0, 1).cpu(), used


def _model_scores(name: str, model: BlackBox, images: torch.Tensor, masks: torch.Tensor,
                  samples: Sequence[EvalSample]) -> list[dict[str, Any]]:
    """Per image: saliency metric, % drop, minimal suppressive box areas, p of the target."""
    targets = torch.tensor([s.target for s in samples], dtype=torch.long)
    masks = masks.to(images.device)
    if name == GROUND_TRUTH:  # the paper averages the metric over the ground-truth boxes
        saliency = saliency_metric(model, images, targets, boxes=[s.boxes for s in samples])
    else:
        saliency = saliency_metric(model, images, targets, masks=masks)
    drop = probability_drop(model, images, masks, targets)
    suppression = mask_box_suppression(model, images, masks, targets, levels=LEVELS,
                                       batch_size=max(32, len(samples)))
    curves = deletion_insertion_auc(model, images, masks, targets, batch_size=max(32, len(samples)))
    records = []
    for i, s in enumerate(samples):
        areas = suppression.areas[i].tolist()
        records.append({
            "target": s.target,
            "p_original": float(suppression.p_original[i]),
            "p_blurred": float(suppression.p_blurred[i]),
            "saliency": float(saliency[i]),
            "drop": float(drop[i]),
            "area": float(masks[i].mean()),
            "suppression_areas": [None if math.isnan(a) else a for a in areas],
            "deletion_auc": float(curves.deletion[i]),
            "insertion_auc": float(curves.insertion[i]),
        })
    extra = repr_group.image_scores(model, images, masks, targets, max(32, len(samples)))
    for record, more in zip(records, extra):
        record.update(more)
    return records


def cache_status(samples: Sequence[EvalSample], cache: MaskCache) -> dict[str, str]:
    """Every sample's entry checked against its key (content hash + target): key → ``ok``,
    ``missing``, ``stale`` (to recompute) or ``legacy`` (adopted here: reused)."""
    out = {}
    for s in samples:
        out[s.item.key] = status = cache.status(s.item.key, s.sha256, s.target, s.item.path)
        if status == "legacy":
            cache.adopt(s.item.key, s.sha256)
    return out


def compute_masks(name: str, model: BlackBox, samples: list[EvalSample], cache: MaskCache,
                  size: tuple[int, int], config: EvalConfig, counts: dict[str, int] | None = None,
                  timing: dict[str, float] | None = None) -> int:
    """Explain every sample whose cache entry is missing or stale with ``name``; returns how many
    masks were computed (``counts``, when given, receives ``cache_status``'s counts, ``timing``
    the seconds spent in the method itself under ``"method"``).

    Batches are consecutive samples and the images of a batch that are already cached are left out
    of it, so a resumed run groups the remaining images as the first run did; under torchrun this
    process takes its own share of the batches (``Distributed.batches``)."""
    batches = config.ddp.batches(samples, config.batch_size)
    status = cache_status([s for chunk in batches for s in chunk], cache)
    if counts is not None:
        counts.update({k: sum(v == k for v in status.values()) for k in ("ok", "missing", "stale", "legacy")})
    batches = [[s for s in chunk if status[s.item.key] in ("missing", "stale")] for chunk in batches]
    todo = sum(len(chunk) for chunk in batches)
    options = cache.settings["options"]
    bar = tqdm(total=len(status), initial=len(status) - todo, desc=f"{name:>15}", unit="img",
               disable=not config.progress, leave=True)
    try:
        for chunk in [c for c in batches if c]:
            images = load_images(chunk, size).to(model.device)
            start_method = time.perf_counter()
            masks, used = _call_method(name, model, images, chunk, options, size)
            if timing is not None:
                timing["method"] = timing.get("method", 0.0) + time.perf_counter() - start_method
            # score exactly what is stored, so a resumed run computes identical numbers
            stored = torch.from_numpy(np.stack([MaskCache.rounded(m[0].numpy()) for m in masks]))[:, None]
            with torch.no_grad():
                records = _model_scores(name, model, images, stored, chunk)
            for i, record in enumerate(records):
                if used is not None:
                    record["iterations_used"] = used[i]
            for s, mask, record in zip(chunk, stored, records):
                cache.put(s.item.key, mask[0].numpy(), {**record, "sha256": s.sha256})
            bar.update(len(chunk))
    finally:
        bar.close()
    return todo


# -- phase 2: box-based protocols -----------------------------------------------------------------
def _mean(values: Sequence[float | None]) -> float | None:
    kept = [v for v in values if v is not None and not math.isnan(v)]
    return math.fsum(kept) / len(kept) if kept else None


def _stderr(values: Sequence[float | None]) -> float | None:
    kept = [v for v in values if v is not None and not math.isnan(v)]
    if len(kept) < 2:
        return None
    return float(np.std(kept, ddof=1) / math.sqrt(len(kept)))


def score_method(name: str, samples: list[EvalSample], cache: MaskCache, size: tuple[int, int],
                 with_boxes: bool, with_objects: bool, tolerance: float = 15.0) -> dict[str, Any]:
    """All metrics of one method over the report split (thresholds tuned on the tune split)."""
    report = [s for s in samples if s.split == "report"]
    tune = [s for s in samples if s.split == "tune"] or report
    masks: dict[str, torch.Tensor] = {}
    records: dict[str, dict[str, Any]] = {}
    for s in samples:
        m, record = cache.get(s.item.key)
        masks[s.item.key], records[s.item.key] = torch.from_numpy(m), record
    out: dict[str, Any] = {"n_report": len(report), "n_tune": len(tune)}
    rec = [records[s.item.key] for s in report]
    out["saliency"] = _mean([r["saliency"] for r in rec])
    out["drop"] = _mean([r["drop"] for r in rec])
    out["area"] = _mean([r["area"] for r in rec])
    if any("iterations_used" in r for r in rec):  # optimiser iterations (forward+backward passes) per mask
        out["iterations_used"] = _mean([r.get("iterations_used") for r in rec])
    # RISE deletion / insertion AUC (absent from masks cached before they were computed)
    out["deletion_auc"] = _mean([r.get("deletion_auc") for r in rec])
    out["insertion_auc"] = _mean([r.get("insertion_auc") for r in rec])
    out["suppression"] = {
        f"{round(100 * lv)}": {
            "mean_area": _mean([r["suppression_areas"][i] for r in rec]),
            "stderr": _stderr([r["suppression_areas"][i] for r in rec]),
            "n": sum(r["suppression_areas"][i] is not None for r in rec),
        }
        for i, lv in enumerate(LEVELS)
    }
    out.update(repr_group.summarise(rec))
    if with_boxes:
        tune_masks = [masks[s.item.key] for s in tune]
        tune_boxes = [s.boxes for s in tune]
        report_masks = [masks[s.item.key] for s in report]
        report_boxes = [s.boxes for s in report]
        out["localisation"] = {}
        for mode in TUNED_MODES:
            alpha, _ = tune_threshold(tune_masks, tune_boxes, mode)
            acc = LocalisationError(mode, alpha)
            acc.update(report_masks, report_boxes)
            out["localisation"][mode] = {"alpha": alpha, "error": acc.compute()}
        fixed = LocalisationError("fixed", 0.5)
        fixed.update(report_masks, report_boxes)
        out["localisation"]["fixed@0.5"] = {"alpha": 0.5, "error": fixed.compute()}
        pointing = PointingGame(tolerance)
        pointing.update(report_masks, report_boxes)
        out["pointing"] = pointing.compute()
    if with_objects:
        out["background"] = object_backgrounds(report, masks, size)
    return out


def object_backgrounds(samples: Sequence[EvalSample], masks: dict[str, torch.Tensor],
                       size: tuple[int, int]) -> dict[str, dict[str, float]]:
    """``metrics.background_by_class`` over the samples that have an object mask."""
    pairs = [(s, object_mask(s.item, size)) for s in samples]
    with_object = [(s, obj) for s, obj in pairs if obj is not None]
    return background_by_class([masks[s.item.key] for s, _ in with_object], [obj for _, obj in with_object],
                               [s.target for s, _ in with_object])


# -- the whole run --------------------------------------------------------------------------------
def cache_settings(name: str, model: BlackBox, dataset: Dataset, size: tuple[int, int],
                   config: EvalConfig) -> dict[str, Any]:
    """Everything that changes a cached mask: a mismatch with an earlier run is refused. The
    iterative methods' schedule is named even when left at its default (early stopping for
    meaningful, the fixed schedule for crisp and extremal), so masks cached under one schedule are
    never mixed with the other, whether it was asked for or the default."""
    options = method_options(name, config.iterations, config.options)
    schedule = {}
    if name in ITERATIVE:  # the option as given, else the method's own default
        from .. import methods  # the registry itself: its signature is the method's

        default = inspect.signature(methods.get_method(name)).parameters["early_stop"].default
        schedule["schedule"] = "early-stop" if options.get("early_stop", default) else "fixed"
        if isinstance(options.get("early_stop"), bool):  # said by "schedule": the same cache
            options = {k: v for k, v in options.items() if k != "early_stop"}  # given or default
    return {
        "version": CACHE_VERSION,
        "method": name,
        "options": options,
        **schedule,
        "model": getattr(model, "name", type(model).__name__),
        "model_fingerprint": model_fingerprint(model),
        "size": list(size),
        "data": str(dataset.root.resolve()),
        "targets": "label" if dataset.annotated else "top1",
    }


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


def stale_line(name: str, counts: dict[str, int]) -> str:
    """One line: how many of a method's cache entries were recomputed (stale) or adopted."""
    parts = []
    if counts.get("stale"):
        parts.append(f"{counts['stale']} stale cache entries recomputed (image pixels or label changed)")
    if counts.get("legacy"):
        parts.append(f"{counts['legacy']} entries from before content keys adopted (target matches, "
                     "image not newer)")
    return f"{name}: " + "; ".join(parts)


def evaluate(dataset: Dataset, model: BlackBox, out: str | Path, config: EvalConfig) -> Results | None:
    """Compute (or resume) every method's masks on ``dataset`` and score them. See the module doc.

    Under torchrun (``config.ddp``) every rank computes its share of the masks into the shared
    cache, then rank 0 alone reads them all back and scores them: it returns the ``Results``, the
    other ranks ``None``."""
    if config.batch_size < 1:
        raise ConfigError(f"--batch-size must be at least 1, got {config.batch_size}")
    rows = config.rows()
    check_methods(rows)
    check_options(rows, config.options)
    with_boxes = dataset.has_boxes
    if not with_boxes:
        rows = [r for r in rows if r != GROUND_TRUTH]
    out = Path(out)
    size = working_size(model, dataset)
    samples = make_samples(dataset, model, config, size)
    caches = {name: MaskCache(out / "cache", name, cache_settings(name, model, dataset, size, config))
              for name in rows}
    if config.cached_only is not None:
        samples = cached_samples(samples, caches, config.cached_only)
    ddp = config.ddp
    computed, completed, seconds, stale, adopted, method_seconds = {}, {}, {}, {}, {}, {}
    error = None
    try:
        with model.evaluating():
            for name in rows:
                start = time.perf_counter()
                counts: dict[str, int] = {}
                timing: dict[str, float] = {}
                computed[name] = compute_masks(name, model, samples, caches[name], size, config, counts,
                                               timing)
                method_seconds[name] = round(timing.get("method", 0.0), 2)
                stale[name], adopted[name] = counts["stale"], counts["legacy"]
                # entries cached before the §5.2 column group existed get it from their cached mask
                completed[name] = repr_group.complete_cached(model, ddp.share(samples, config.batch_size),
                                                             caches[name], size, config.batch_size,
                                                             config.progress)
                seconds[name] = round(time.perf_counter() - start, 2)
    except MaskscopeError as exc:
        error = exc
    ddp.agree(error)  # every rank has finished its share (or all stop with the first rank's error)
    # what the ranks did, added up (seconds: the slowest rank's)
    parts = ddp.gather((computed, completed, stale, adopted, seconds, method_seconds))
    if not ddp.main:
        return None
    computed, completed, stale, adopted = ({n: sum(p[i][n] for p in parts) for n in rows} for i in range(4))
    seconds, method_seconds = ({n: max(p[i][n] for p in parts) for n in rows} for i in (4, 5))
    for name in rows:
        if config.report is not None and (stale[name] or adopted[name]):
            config.report(stale_line(name, {"stale": stale[name], "legacy": adopted[name]}))
    with_objects = dataset.has_object_masks
    metrics = {
        name: score_method(name, samples, caches[name], size, with_boxes, with_objects,
                           config.pointing_tolerance)
        for name in tqdm(rows, desc="scoring", disable=not config.progress, leave=False)
    }
    n_tune = sum(s.split == "tune" for s in samples)
    info = {
        "data": str(dataset.root),
        "model": getattr(model, "name", type(model).__name__),
        "model_fingerprint": model_fingerprint(model),
        "size": list(size),
        "images": len(samples),
        "tune_images": n_tune,
        "report_images": len(samples) - n_tune,
        "limit": config.limit,
        "cached_only": config.cached_only,
        "seed": config.seed,
        "tune_fraction": config.tune_fraction,
        "pointing_tolerance": config.pointing_tolerance,
        "iterations": config.iterations,
        "method_options": {name: caches[name].settings["options"] for name in rows},
        "computed_now": computed,
        "stale_recomputed_now": stale,
        "legacy_adopted_now": adopted,
        "scores_completed_now": completed,
        "seconds_now": seconds,
        "method_seconds_now": method_seconds,  # of seconds_now, in the method itself (not the scoring)
        "annotated": dataset.annotated,
        "class_names": {str(k): v for k, v in dataset.class_names.items()},
    }
    return Results(metrics, info, samples, size, caches)
