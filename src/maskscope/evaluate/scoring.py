"""Scoring the cached masks with the chosen protocols, and what a run reports about itself.

``complete_scores`` runs the model-based protocols on every cached entry that lacks their scores,
fresh masks and masks cached by an earlier release alike, one batch of images at a time with the
rows of every method stacked, so each protocol's forward passes are shared by all the methods.
``score_method`` summarises one method over the report split. Under torchrun every rank scores its
share of the entries; ``gather_counts`` adds up what the ranks did and ``run_info`` is the run's
record in ``details.json``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from tqdm.auto import tqdm

from ..blackbox import BlackBox
from ..data.folders import Dataset
from ..distributed import Distributed
from ..fingerprint import model_fingerprint
from .cache import MaskCache
from .config import EvalConfig
from .protocols import BOXES, MODEL, OBJECT_MASKS, Protocol, Rows, Split
from .protocols.base import mean
from .samples import EvalSample, load_images

# the field order cached records have always had; entries of other protocols follow
RECORD_ORDER = ("target", "p_original", "p_blurred", "saliency", "drop", "area", "suppression_areas",
                "deletion_auc", "insertion_auc", "representativeness", "cross_drop")
COUNTS = ("computed_now", "stale_recomputed_now", "legacy_adopted_now", "scores_completed_now")
TIMES = ("seconds_now", "method_seconds_now")


def applicable(protocols: Sequence[Protocol], dataset: Dataset) -> list[Protocol]:
    """The protocols whose data ``dataset`` has (boxes, object masks)."""
    have = {MODEL} | ({BOXES} if dataset.has_boxes else set())
    have |= {OBJECT_MASKS} if dataset.has_object_masks else set()
    return [p for p in protocols if p.needs <= have]


def _ordered(record: dict[str, Any]) -> dict[str, Any]:
    first = {k: record[k] for k in RECORD_ORDER if k in record}
    return {**first, **{k: v for k, v in record.items() if k not in first}}


@torch.no_grad()
def complete_scores(model: BlackBox, samples: Sequence[EvalSample], caches: dict[str, MaskCache],
                    protocols: Sequence[Protocol], size: tuple[int, int], batch_size: int,
                    progress: bool = False) -> dict[str, int]:
    """Add each protocol's per-image scores to the cached entries of ``samples`` that lack them,
    from their cached masks; returns per method how many entries got scores. Only the json of an
    entry is rewritten, never its mask."""
    scored = [p for p in protocols if p.record_keys]
    counts = dict.fromkeys(caches, 0)
    todo = []  # per batch of images, its rows: (method, sample, protocols its record lacks)
    for start in range(0, len(samples), batch_size) if scored else ():
        rows = []
        for name, cache in caches.items():
            for s in samples[start : start + batch_size]:
                if cache.has(s.item.key):
                    lacking = [p for p in scored if p.needs_scores(cache.record(s.item.key))]
                    if lacking:
                        rows.append((name, s, lacking))
        if rows:
            todo.append(rows)
    bar = tqdm(total=sum(map(len, todo)), desc="protocols", unit="mask", disable=not progress or not todo)
    try:
        for rows in todo:
            _score_rows(model, rows, scored, size, caches)
            for name, _, _ in rows:
                counts[name] += 1
            bar.update(len(rows))
    finally:
        bar.close()
    return counts


def _score_rows(model: BlackBox, rows: list[tuple[str, EvalSample, list[Protocol]]],
                protocols: Sequence[Protocol], size: tuple[int, int], caches: dict[str, MaskCache]) -> None:
    """One batch of images: every protocol once over the rows (of all methods) that lack it."""
    unique = list({s.item.key: s for _, s, _ in rows}.values())
    images = load_images(unique, size).to(model.device)
    position = {s.item.key: i for i, s in enumerate(unique)}
    entries = [caches[name].get(s.item.key) for name, s, _ in rows]
    masks = torch.stack([torch.from_numpy(m) for m, _ in entries])[:, None].to(images.device)
    new: list[dict[str, Any]] = [{} for _ in rows]
    for protocol in protocols:
        picked = [i for i, (_, _, lacking) in enumerate(rows) if protocol in lacking]
        if picked:
            batch = Rows(model, images[[position[rows[i][1].item.key] for i in picked]], masks[picked],
                         _targets([rows[i][1] for i in picked]), [rows[i][1] for i in picked],
                         [rows[i][0] for i in picked])
            for i, scores in zip(picked, protocol.image_scores(batch)):
                new[i].update(scores)
    for (name, s, _), (_, record), scores in zip(rows, entries, new):
        caches[name].update_scores(s.item.key, _ordered({**record, **scores}))


def _targets(samples: Sequence[EvalSample]) -> torch.Tensor:
    return torch.tensor([s.target for s in samples], dtype=torch.long)


@torch.no_grad()
def fresh_records(name: str, model: BlackBox, images: torch.Tensor, masks: torch.Tensor,
                  samples: Sequence[EvalSample], protocols: Sequence[Protocol]) -> list[dict[str, Any]]:
    """The records of one batch of fresh (stored) masks of method ``name``: target and scores."""
    records: list[dict[str, Any]] = [{"target": s.target} for s in samples]
    rows = Rows(model, images, masks.to(images.device), _targets(samples), list(samples),
                [name] * len(samples))
    for protocol in protocols:
        if protocol.record_keys:
            for record, scores in zip(records, protocol.image_scores(rows)):
                record.update(scores)
    return [_ordered(r) for r in records]


def score_method(name: str, samples: list[EvalSample], cache: MaskCache, size: tuple[int, int],
                 protocols: Sequence[Protocol], tolerance: float = 15.0) -> dict[str, Any]:
    """Every protocol's summary of one method over the report split (thresholds tuned on the tune
    split)."""
    report = [s for s in samples if s.split == "report"]
    tune = [s for s in samples if s.split == "tune"] or report
    split = Split(name, report, tune, {}, {}, size, tolerance)
    for s in samples:
        mask, split.records[s.item.key] = cache.get(s.item.key)
        split.masks[s.item.key] = torch.from_numpy(mask)
    out: dict[str, Any] = {"n_report": len(report), "n_tune": len(tune)}
    for protocol in protocols:
        out.update(protocol.summarise(split))
    records = split.report_records()
    if any("iterations_used" in r for r in records):  # optimiser iterations (forward+backward) per mask
        out["iterations_used"] = mean([r.get("iterations_used") for r in records])
    return out


def gather_counts(ddp: Distributed, rows: Sequence[str], counts: dict[str, Any]) -> dict[str, Any]:
    """``COUNTS`` and ``TIMES`` (name → method → value) and ``protocol_seconds_now`` of every rank:
    counts added up, times the slowest rank's."""
    parts = ddp.gather(counts)
    out = {k: {n: sum(p[k][n] for p in parts) for n in rows} for k in COUNTS}
    out.update({k: {n: max(p[k][n] for p in parts) for n in rows} for k in TIMES})
    out["protocol_seconds_now"] = max(p["protocol_seconds_now"] for p in parts)
    return out


def run_info(dataset: Dataset, model: BlackBox, size: tuple[int, int], samples: Sequence[EvalSample],
             config: EvalConfig, caches: dict[str, MaskCache], counts: dict[str, Any],
             protocols: Sequence[Protocol]) -> dict[str, Any]:
    """The run's settings and what it did, as ``details.json`` records them."""
    n_tune = sum(s.split == "tune" for s in samples)
    return {
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
        "method_options": {name: cache.settings["options"] for name, cache in caches.items()},
        "computed_now": counts["computed_now"],
        "stale_recomputed_now": counts["stale_recomputed_now"],
        "legacy_adopted_now": counts["legacy_adopted_now"],
        "scores_completed_now": counts["scores_completed_now"],
        "seconds_now": counts["seconds_now"],
        "method_seconds_now": counts["method_seconds_now"],  # of seconds_now, in the method itself
        "protocol_seconds_now": counts["protocol_seconds_now"],  # the model-based protocols, all methods
        "annotated": dataset.annotated,
        "class_names": {str(k): v for k, v in dataset.class_names.items()},
        # forward passes per image and method (``metrics.md`` states them)
        "protocols": {p.name: p.passes for p in protocols},
    }
