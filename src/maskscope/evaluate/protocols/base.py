"""The one shape of an evaluation protocol, and what it is given to work on.

A protocol scores masks in up to two places: ``image_scores`` runs the classifier on (method, image)
rows and returns entries for each image's cached record (only a protocol with ``record_keys`` does
this; its rows mix the methods of one batch of images); ``summarise`` turns one method's report
split into the numbers of its ``metrics.json`` columns, its cells of the main table and its own
markdown sections.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ...blackbox import BlackBox
from ..samples import EvalSample

MODEL, BOXES, OBJECT_MASKS = "model", "boxes", "object_masks"  # what a protocol can need


@dataclass
class Rows:
    """(method, image) rows for the model-based protocols: images, stored masks, targets stacked."""

    model: BlackBox
    images: torch.Tensor  # (N, 3, h, w) on the model's device
    masks: torch.Tensor  # (N, 1, h, w) as stored in the cache, same device
    targets: torch.Tensor  # (N,) long
    samples: list[EvalSample]
    methods: list[str]

    @property
    def batch_size(self) -> int:
        """Forward chunk of the metrics: every row at once, and at least 32 images."""
        return max(32, len(self.samples))


@dataclass
class Split:
    """One method's cached masks and records, and the split of the images into tune and report."""

    method: str
    report: list[EvalSample]
    tune: list[EvalSample]
    masks: dict[str, torch.Tensor]  # item key → (h, w) as stored
    records: dict[str, dict[str, Any]]  # item key → cached record
    size: tuple[int, int]
    tolerance: float  # the pointing game's, in evaluation pixels

    def report_records(self) -> list[dict[str, Any]]:
        return [self.records[s.item.key] for s in self.report]


class Protocol:
    """One evaluation protocol. Subclasses set the attributes and override what they use.

    ``needs``: what the protocol needs beyond masks (``MODEL``, ``BOXES``, ``OBJECT_MASKS``); a
    protocol whose data a dataset lacks is left out there. ``passes``: classifier forward passes per
    image and method, as ``metrics.md`` states it. ``record_keys``: the entries ``image_scores``
    adds to a cached record (a record without them gets them from its cached mask). ``head``: its
    columns in the main table. ``summary_keys``: the entries ``summarise`` returns."""

    name: str = ""
    needs: frozenset[str] = frozenset()
    passes: str = "0"
    record_keys: tuple[str, ...] = ()
    head: tuple[str, ...] = ()
    summary_keys: tuple[str, ...] = ()

    def image_scores(self, rows: Rows) -> list[dict[str, Any]]:
        """Record entries for each row (same order)."""
        return [{} for _ in rows.samples]

    def needs_scores(self, record: dict[str, Any]) -> bool:
        """True when a cached record lacks this protocol's entries (or has them for other settings)."""
        return any(k not in record for k in self.record_keys)

    def summarise(self, split: Split) -> dict[str, Any]:
        """Summary entries of one method over ``split.report``."""
        return {}

    def columns(self, summary: dict[str, Any]) -> dict[str, Any]:
        """This protocol's ``metrics.json`` columns of one method's summary."""
        return {}

    def cells(self, summary: dict[str, Any]) -> list[str]:
        """One method's cells under ``head``."""
        return []

    def sections(self, metrics: dict[str, dict[str, Any]], row_names: dict[str, str]) -> list[str]:
        """Markdown blocks after the main table (paragraphs and tables), [] for none."""
        return []

    def present(self, summary: dict[str, Any]) -> bool:
        return any(k in summary for k in self.summary_keys)

    def __repr__(self) -> str:
        return f"<protocol {self.name}>"


def mean(values: Sequence[float | None]) -> float | None:
    kept = [v for v in values if v is not None and not math.isnan(v)]
    return math.fsum(kept) / len(kept) if kept else None


def stderr(values: Sequence[float | None]) -> float | None:
    kept = [v for v in values if v is not None and not math.isnan(v)]
    if len(kept) < 2:
        return None
    return float(np.std(kept, ddof=1) / math.sqrt(len(kept)))


def cell(value: float | None, fmt: str) -> str:
    return "—" if value is None else format(value, fmt)


def pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f}"
