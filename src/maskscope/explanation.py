"""The result every method returns: masks plus what is needed to read and check them.

Mask convention: ``masks`` are *salient* masks of shape (B, 1, H, W) in [0, 1], **1 = salient**.
For the deletion game the salient region is what was deleted (1 − the paper's keep mask m); for the
preservation game it is what was kept (= m). So a mask means the same thing for every method.

A method may return several masks per image (extremal perturbations: one per area). Each such
mask is then a row of its own, carrying its own copy of the image, target and scores, so that
everything here works row by row; ``image_index`` says which input image a row explains and
``requested_area`` the area it was constrained to (``None`` for one-mask-per-image methods).

This is a plain record: writing it to files and drawing it live in ``maskscope.outputs`` above it
(``save``, ``plot`` and ``output_names`` here are shortcuts to those functions).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .masks import resize_mask
from .perturb import Perturbation

SHOWN_NAMES = 4  # the repr names this many targets, then counts the rest


@dataclass(repr=False)
class Explanation:
    """Masks, the images and classes they explain, and the scores that check them.

    **One rule for the scores.** ``p_deleted`` and ``p_preserved`` are the target probability with
    the salient region perturbed, or with all but it perturbed, by ``perturbation``: the
    perturbation the mask was optimised against (meaningful, crisp), and for methods that optimise
    against none (the baselines, the real-time masker) ``Blur()``, Fong & Vedaldi's σ0 = 10 blur and
    meaningful's default. That way an optimised mask is scored by what it was asked to do, and every
    other method by the blur that Fong's §5.3 box protocol and Godi's % drop (Table 2) apply, so a
    baseline's scores compare with a default meaningful mask's. ``perturbation`` is the object
    itself, not its name, so figures redraw exactly what was scored.
    """

    masks: torch.Tensor  # (B, 1, H, W), 1 = salient
    images: torch.Tensor  # (B, 3, H, W) in [0, 1], the images that were explained
    targets: torch.Tensor  # (B, K) class indices (K > 1 for top-k objectives)
    class_names: list[str]  # name of targets[:, 0] per image
    method: str
    p_original: torch.Tensor | None = None  # (B,) target probability on the image
    p_deleted: torch.Tensor | None = None  # (B,) after perturbing the salient region
    p_preserved: torch.Tensor | None = None  # (B,) keeping only the salient region
    history: torch.Tensor | None = None  # (iterations, B) total loss per image
    params: dict[str, Any] = field(default_factory=dict)
    sources: list[str | None] | None = None  # file path per image, when explained from files
    source_sizes: list[tuple[int, int] | None] | None = None  # (height, width) of each file
    perturbation: Perturbation | None = None  # what p_deleted / p_preserved were measured with
    image_index: torch.Tensor | None = None  # (B,) input image of each row, when several per image
    requested_area: torch.Tensor | None = None  # (B,) the fixed area of each row (extremal)
    # (B,) optimiser iterations each mask took (iterative methods; fewer than scheduled when it
    # stopped early, the forward+backward passes it cost)
    iterations_used: torch.Tensor | None = None

    def __len__(self) -> int:
        return self.masks.shape[0]

    @property
    def area(self) -> torch.Tensor:
        """Mean mask value per image: the fraction of the image that is salient."""
        return self.masks.flatten(1).mean(1)

    def mask(self, i: int, native: bool = True) -> torch.Tensor:
        """Mask i as (H, W); with ``native`` at the source file's own size when known."""
        m = self.masks[i]
        size = self.source_sizes[i] if (native and self.source_sizes) else None
        if size is not None:
            m = resize_mask(m, size)
        return m[0]

    def to_numpy(self) -> np.ndarray:
        """The masks as a float32 array (B, H, W) at the explained images' size, 1 = salient
        (``mask(i)`` gives one at its source file's size)."""
        return self.masks[:, 0].detach().float().cpu().numpy()

    def name(self, i: int) -> str:
        """Row i's name: its image's, with the row's area appended when it has one."""
        stem = self.image_name(i)
        return stem if self.requested_area is None else f"{stem}_area{float(self.requested_area[i]):g}"

    def image_name(self, i: int) -> str:
        """The name of row i's image, without the per-row area suffix."""
        src = self.sources[i] if self.sources else None
        image = int(self.image_index[i]) if self.image_index is not None else i
        return Path(src).stem if src else f"image_{image:04d}"

    def record(self, i: int) -> dict[str, Any]:
        """A JSON-serialisable summary of image i."""

        def val(t: torch.Tensor | None) -> float | None:
            return None if t is None else round(float(t[i]), 6)

        return {
            "image": self.sources[i] if self.sources else None,
            "method": self.method,
            "target": int(self.targets[i, 0]),
            "targets": [int(t) for t in self.targets[i]],
            "class_name": self.class_names[i],
            "p_original": val(self.p_original),
            "p_deleted": val(self.p_deleted),
            "p_preserved": val(self.p_preserved),
            "area": val(self.area),
            **({} if self.requested_area is None else {"requested_area": val(self.requested_area)}),
            **({} if self.iterations_used is None else {"iterations_used": int(self.iterations_used[i])}),
            "params": {
                k: v for k, v in self.params.items() if isinstance(v, (int, float, str, bool, type(None)))
            },
        }

    def __getitem__(self, index: slice | list[int]) -> Explanation:
        idx = list(range(len(self)))[index] if isinstance(index, slice) else list(index)

        def pick(t):
            return None if t is None else t[idx] if t.dim() and t.shape[0] == len(self) else t

        return Explanation(
            masks=self.masks[idx],
            images=self.images[idx],
            targets=self.targets[idx],
            class_names=[self.class_names[i] for i in idx],
            method=self.method,
            p_original=pick(self.p_original),
            p_deleted=pick(self.p_deleted),
            p_preserved=pick(self.p_preserved),
            history=None if self.history is None else self.history[:, idx],
            params=dict(self.params),
            sources=[self.sources[i] for i in idx] if self.sources else None,
            source_sizes=[self.source_sizes[i] for i in idx] if self.source_sizes else None,
            perturbation=self.perturbation,
            image_index=pick(self.image_index),
            requested_area=pick(self.requested_area),
            iterations_used=pick(self.iterations_used),
        )

    def __repr__(self) -> str:
        """One line, whatever the batch: method, rows, target names and mean mask area."""
        names = [repr(n) for n in self.class_names[:SHOWN_NAMES]]
        if len(self.class_names) > SHOWN_NAMES:
            names.append(f"... {len(self.class_names) - SHOWN_NAMES} more")
        area = f"{float(self.masks.detach().float().mean()):.3f}" if self.masks.numel() else "n/a"
        images = "" if self.image_index is None else f", images={len(torch.unique(self.image_index))}"
        return (f"Explanation(method={self.method!r}, batch={len(self)}{images}, "
                f"targets=[{', '.join(names)}], mean_area={area})")

    # Shortcuts kept for users: the code is in ``maskscope.outputs``, imported on first use so that
    # this record does not depend on the file writers at import time.

    def save(self, out_dir: str | os.PathLike, figures: bool = True,
             names: Mapping[str, str] | None = None, overwrite: bool = False) -> list[dict[str, Any]]:
        """Write the masks, mask PNGs, overlays, figures and JSON records to ``out_dir``
        (``outputs.save_explanation``); returns the records. Results already in ``out_dir`` under
        the same names are an ``OutputError`` unless ``overwrite``: nothing is replaced silently."""
        from .outputs import save_explanation

        return save_explanation(self, out_dir, figures=figures, names=names, overwrite=overwrite)

    def plot(self, i: int = 0):
        """Image i's explanation as a matplotlib figure (image, perturbed image, mask; the paper's
        Figure 1), returned so that a notebook shows it: ``e.plot()``; ``.savefig(path)`` to keep it
        (``outputs.plot_explanation``)."""
        from .outputs import plot_explanation

        return plot_explanation(self, i)

    @staticmethod
    def output_names(paths: Sequence[str | os.PathLike]) -> dict[str, str]:
        """Source path → unique output name over ``paths`` (``outputs.output_names``)."""
        from .outputs import output_names

        return output_names(paths)
