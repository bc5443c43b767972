"""Run saliency methods over a dataset, cache every mask, and score them with the chosen protocols.

Two phases, so that an interrupted run loses at most one batch:

1. *compute*: for each method, the images whose mask is not yet cached are explained in batches and
   each mask is stored (float16) with the per-image scores of the model-based protocols (Dabkowski's
   saliency metric, Godi's % drop, RISE's curves, Fong's boxes and §5.2, ...), all computed from
   the stored values (``compute_masks``). Cached entries that lack a protocol's scores (cached by an
   earlier release, or by a run with fewer ``--protocols``) get them from their cached mask, the
   rows of every method of a batch of images scored together (``scoring.complete_scores``).
2. *score*: the cached masks and scores are read back and every protocol summarises them over the
   *report* split (localisation thresholds tuned on the held-out *tune* split,
   ``data.folders.split``).

Samples, geometry and targets: ``samples``; the protocols: ``protocols``; the cache key: ``cache``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from ..blackbox import BlackBox
from ..data.folders import Dataset
from ..errors import ConfigError, MaskscopeError
from ..methods import METHODS, get_method, get_spec
from ..methods.registry import call_method, per_image_iterations, per_image_masks
from ..methods.settings import MAX_ITERATIONS, whole_number
from .cache import MaskCache, cache_settings
from .config import GROUND_TRUTH, REFERENCE_ROWS, EvalConfig
from .protocols import Protocol, resolve
from .samples import EvalSample, cache_status, cached_samples, load_images, make_samples, working_size
from .scoring import (
    COUNTS,
    TIMES,
    applicable,
    complete_scores,
    fresh_records,
    gather_counts,
    run_info,
    score_method,
)

# Options each method runs with during evaluation (listed in the table footer). Every method
# explains the ground-truth class with its default settings: meaningful its default preset
# (``fong2017``: fixed-blur, relative score, λ1 = 1e-3), crisp Godi's two-stage schedule on
# ``fong2017-paper-blur``. ``--option meaningful.preset=...`` measures another preset.
METHOD_OPTIONS: dict[str, dict[str, Any]] = {}

__all__ = ["GROUND_TRUTH", "REFERENCE_ROWS", "EvalConfig", "EvalSample", "Results", "evaluate", "load_images",
           "make_samples"]


@dataclass
class Results:
    """What ``evaluate`` returns: per-method metrics, plus what the plots and tables need."""

    metrics: dict[str, dict[str, Any]]
    info: dict[str, Any]
    samples: list[EvalSample]
    size: tuple[int, int]
    caches: dict[str, MaskCache]
    protocols: list[Protocol] | None = None  # None: every registered one


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
        if name in METHODS:
            options.update(METHODS[name].iteration_options(iterations))
    options.update((extra or {}).get(name, {}))
    return options


def check_options(methods: Sequence[str], extra: dict[str, dict[str, Any]]) -> None:
    """ConfigError for an option of a method not being evaluated, or one the method does not take."""
    for name, opts in extra.items():
        if name not in methods or name == GROUND_TRUTH:
            raise ConfigError(f"option for {name!r}, which is not among the methods evaluated")
        spec = get_spec(name)
        for key, value in opts.items():  # a count or a size in px: a whole number, iterations capped
            kinds = spec.options[key].kinds if key in spec.options else frozenset()
            if "int" in kinds and "float" not in kinds and value is not None:
                whole_number(f"--option {name}.{key}", value, 0 if key in ("seed", "jitter") else 1,
                             MAX_ITERATIONS if "iterations" in key else None)
        spec.check_options(opts)


def check_methods(names: Sequence[str]) -> None:
    """ConfigError for any unknown method, before any work is done."""
    if not names:
        raise ConfigError("no methods given")
    for name in names:
        if name != GROUND_TRUTH:
            get_method(name)  # imported now: a missing extra stops the run before any work


# -- masks ---------------------------------------------------------------------------------------
def _call_method(name: str, model: BlackBox, images: torch.Tensor, samples: Sequence[EvalSample],
                 options: dict[str, Any], size: tuple[int, int]) -> tuple[torch.Tensor, list[float] | None]:
    """Salient masks (B, 1, h, w) in [0, 1] of one batch, and the optimiser iterations each image's
    mask took (iterative methods; extremal: the mean over its area rows)."""
    if name == GROUND_TRUTH:  # the largest box; why: ``evaluate.reference.ground_truth_boxes``
        from .reference import ground_truth_boxes

        return ground_truth_boxes(images.new_zeros(len(samples), 3, *size).cpu(),
                                  [s.boxes for s in samples]).masks.cpu(), None
    targets = torch.tensor([s.target for s in samples], dtype=torch.long)
    explanation = call_method(name, model, images, targets, options, progress=False,
                              function=get_method(name))
    return (per_image_masks(explanation, images.shape[-2:]),
            per_image_iterations(explanation, len(samples)))


def _model_scores(name: str, model: BlackBox, images: torch.Tensor, masks: torch.Tensor,
                  samples: Sequence[EvalSample],
                  protocols: Sequence[Protocol] | None = None) -> list[dict[str, Any]]:
    """Per image, the record a fresh mask is stored with: its target and the scores of the run's
    model-based protocols (all of them when none are named), so a stored entry is complete."""
    return fresh_records(name, model, images, masks, samples,
                         resolve(None) if protocols is None else protocols)


def compute_masks(name: str, model: BlackBox, samples: list[EvalSample], cache: MaskCache,
                  size: tuple[int, int], config: EvalConfig, counts: dict[str, int] | None = None,
                  timing: dict[str, float] | None = None, protocols: Sequence[Protocol] | None = None) -> int:
    """Explain every sample whose cache entry is missing or stale with ``name``; returns how many
    masks were computed (``counts``, when given, receives ``cache_status``'s counts, ``timing``
    the seconds spent in the method itself under ``"method"``; each fresh mask is stored with the
    scores of ``protocols``, all of them when none are named).

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
                records = _model_scores(name, model, images, stored, chunk, protocols)
            for i, record in enumerate(records):
                if used is not None:
                    record["iterations_used"] = used[i]
            for s, mask, record in zip(chunk, stored, records):
                cache.put(s.item.key, mask[0].numpy(), {**record, "sha256": s.sha256})
            bar.update(len(chunk))
    finally:
        bar.close()
    return todo


# -- the whole run --------------------------------------------------------------------------------
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

    Under torchrun (``config.ddp``) every rank computes its share of the masks and their scores into
    the shared cache, then rank 0 alone reads them all back and summarises them: it returns the
    ``Results``, the other ranks ``None``."""
    if config.batch_size < 1:
        raise ConfigError(f"--batch-size must be at least 1, got {config.batch_size}")
    protocols = applicable(resolve(config.protocols), dataset)
    rows = config.rows()
    check_methods(rows)
    check_options(rows, config.options)
    if not dataset.has_boxes:
        rows = [r for r in rows if r != GROUND_TRUTH]
    out = Path(out)
    size = working_size(model, dataset)
    samples = make_samples(dataset, model, config, size)
    caches = {name: MaskCache(out / "cache", name, cache_settings(
        name, method_options(name, config.iterations, config.options), model, dataset, size))
        for name in rows}
    if config.cached_only is not None:
        samples = cached_samples(samples, caches, config.cached_only)
    ddp = config.ddp
    counts: dict[str, Any] = {k: dict.fromkeys(rows, 0) for k in (*COUNTS, *TIMES)}
    counts["protocol_seconds_now"] = 0.0
    error = None
    try:
        with model.evaluating():
            for name in rows:
                start = time.perf_counter()
                status: dict[str, int] = {}
                timing: dict[str, float] = {}
                counts["computed_now"][name] = compute_masks(name, model, samples, caches[name], size, config,
                                                             status, timing, protocols)
                counts["method_seconds_now"][name] = round(timing.get("method", 0.0), 2)
                counts["stale_recomputed_now"][name] = status["stale"]
                counts["legacy_adopted_now"][name] = status["legacy"]
                counts["seconds_now"][name] = round(time.perf_counter() - start, 2)
            # entries cached before a protocol ran (an earlier release, fewer --protocols) get its
            # scores from their cached masks, the rows of every method of a batch together
            start = time.perf_counter()
            share = ddp.share(samples, config.batch_size)
            counts["scores_completed_now"] = complete_scores(model, share, caches, protocols, size,
                                                             config.batch_size, config.progress)
            counts["protocol_seconds_now"] = round(time.perf_counter() - start, 2)
    except MaskscopeError as exc:
        error = exc
    ddp.agree(error)  # every rank has finished its share (or all stop with the first rank's error)
    counts = gather_counts(ddp, rows, counts)  # what the ranks did, added up
    if not ddp.main:
        return None
    for name in rows:
        found = {"stale": counts["stale_recomputed_now"][name], "legacy": counts["legacy_adopted_now"][name]}
        if config.report is not None and (found["stale"] or found["legacy"]):
            config.report(stale_line(name, found))
    metrics = {
        name: score_method(name, samples, caches[name], size, protocols, config.pointing_tolerance)
        for name in tqdm(rows, desc="scoring", disable=not config.progress, leave=False)
    }
    info = run_info(dataset, model, size, samples, config, caches, counts, protocols)
    return Results(metrics, info, samples, size, caches, protocols)
