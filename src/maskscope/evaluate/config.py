"""What one evaluation run is asked to do (``EvalConfig``), apart from the code that does it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..distributed import Distributed

GROUND_TRUTH = "gt-boxes"
# rows added to every table, as the papers do: centred box of half the area, whole image, the truth
REFERENCE_ROWS = ("center", "full", GROUND_TRUTH)


@dataclass
class EvalConfig:
    methods: Sequence[str]  # registered names; a user's function is registered under its own name
    batch_size: int = 8
    iterations: int | None = None
    limit: int | None = None
    seed: int = 0
    tune_fraction: float = 0.3
    progress: bool = True
    references: bool = True  # the reference rows (``REFERENCE_ROWS``)
    pointing_tolerance: float = 15.0  # pixels at the evaluation size (Zhang et al.: 15 px)
    options: dict[str, dict[str, Any]] = field(default_factory=dict)  # method → extra keyword options
    report: Callable[[str], None] | None = None  # told, in one line per method, about stale cache entries
    # score only the images whose masks of this method are already cached (a time-boxed run of a
    # slow method: every row is then compared on the same images; the others compute theirs)
    cached_only: str | None = None
    # this process's place under torchrun: it computes its share of the batches, rank 0 scores
    ddp: Distributed = field(default_factory=Distributed)
    # protocol names (``protocols.PROTOCOLS``) or ``protocols.Protocol`` objects (typed Any: the
    # protocols sit above this module); None: every registered one
    protocols: Sequence[Any] | None = None

    def __post_init__(self) -> None:
        from ..methods.registry import method_name

        self.methods = [method_name(m) for m in self.methods]

    def rows(self) -> list[str]:
        """Methods requested, then the reference rows not already among them."""
        rows = list(dict.fromkeys(self.methods))
        if self.references:
            rows += [r for r in REFERENCE_ROWS if r not in rows]
        return rows
