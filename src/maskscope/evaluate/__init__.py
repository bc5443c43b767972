"""Evaluate saliency methods on a dataset with the papers' protocols: cached masks, tables, plots.

``evaluate_folder`` is what ``maskscope evaluate --data`` runs, ``evaluate_synthetic`` what
``maskscope evaluate --synthetic`` runs; ``runner.evaluate`` is the part without files for tables.
What is measured is a list of ``Protocol`` objects (``protocols``: ``--protocols``), one's own included.
"""

from __future__ import annotations

from pathlib import Path

from ..blackbox import BlackBox
from ..data.folders import Dataset
from .config import REFERENCE_ROWS, EvalConfig
from .markdown import escape_markdown
from .plots import write_plots
from .protocols import PROTOCOLS, Protocol, register
from .runner import Results, evaluate
from .synthetic import evaluate_synthetic
from .tables import markdown_table, write_tables


def evaluate_folder(dataset: Dataset, model: BlackBox, out: str | Path, config: EvalConfig,
                    examples: int = 8, title: str | None = None) -> str | None:
    """Evaluate, then write metrics.json / metrics.md / details.json and the plots; returns the markdown
    (under torchrun: rank 0 writes and returns it, the other ranks return ``None``)."""
    results = evaluate(dataset, model, out, config)
    if results is None:
        return None
    title = title or f"maskscope evaluation: {escape_markdown(dataset.root.name)}"
    text = write_tables(out, results.metrics, results.info, title, results.protocols)
    write_plots(out, results, examples)
    return text


__all__ = [
    "PROTOCOLS",
    "REFERENCE_ROWS",
    "EvalConfig",
    "Protocol",
    "Results",
    "evaluate",
    "evaluate_folder",
    "evaluate_synthetic",
    "markdown_table",
    "register",
    "write_tables",
]
