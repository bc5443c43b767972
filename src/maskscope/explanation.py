"""The result every method returns: masks plus what is needed to read and check them.

Mask convention: ``masks`` are *salient* masks of shape (B, 1, H, W) in [0, 1], **1 = salient**.
For the deletion game the salient region is what was deleted (1 − the paper's keep mask m); for the
preservation game it is what was kept (= m). So a mask means the same thing for every method.

A method may return several masks per image (extremal perturbations: one per area). Each such
mask is then a row of its own, carrying its own copy of the image, target and scores, so that
everything here works row by row; ``image_index`` says which input image a row explains and
``requested_area`` the area it was constrained to (``None`` for one-mask-per-image methods).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .errors import ConfigError, OutputError
from .masks import resize_mask
from .perturb import Perturbation
from .storage import atomic_path, safe_name, short_hash

HALF_MASK_PIXELS = 16_000_000  # masks of more pixels are saved as float16 (``mask_dtype`` in the JSON)


@dataclass
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

    def plot(self, i: int = 0):
        """Image i's explanation as a matplotlib figure (image, perturbed image, mask; the paper's
        Figure 1), returned so that a notebook shows it: ``e.plot()``; ``.savefig(path)`` to keep it."""
        import matplotlib.pyplot as plt  # the user's backend (inline in a notebook), chosen by them

        from .viz import explanation_figure

        if not 0 <= i < len(self):
            raise ConfigError(f"no image {i}: the explanation has {len(self)}")
        return explanation_figure(self, i, plt.figure())

    def name(self, i: int) -> str:
        stem = self._image_name(i)
        return stem if self.requested_area is None else f"{stem}_area{float(self.requested_area[i]):g}"

    def _image_name(self, i: int) -> str:
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

    @staticmethod
    def output_names(paths: Sequence[str | os.PathLike]) -> dict[str, str]:
        """Source path → output name, unique over ``paths`` and deterministic: the file-system safe
        stem, with a short hash of the resolved path appended wherever two different files would
        share it (``a/x.jpg`` and ``b/x.png``; ``good 1.jpg`` and ``good_1.jpg``)."""
        stems = {str(p): safe_name(Path(p).stem, empty="image") for p in paths}
        owners: dict[str, set[str]] = {}
        for p, stem in stems.items():
            owners.setdefault(stem.lower(), set()).add(os.path.realpath(p))
        return {p: stem if len(owners[stem.lower()]) == 1 else f"{stem}-{short_hash(os.path.realpath(p))}"
                for p, stem in stems.items()}

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

    def save(self, out_dir: str | os.PathLike, figures: bool = True,
             names: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
        """Write per image: ``<stem>.npy`` (float mask at the file's size), ``<stem>_mask.png``,
        ``<stem>_overlay.png``, ``<stem>_figure.png`` (original / perturbed / mask, as the paper's
        Figure 1) and ``<stem>.json``. Returns the JSON records.

        Several masks per image (extremal: stems ``<name>_area<a>``) get instead one figure per
        image, ``<name>_areas.png``, with a column per area (``viz.save_area_figure``).

        ``names`` maps a source path to its output name (``output_names`` makes them unique over a
        whole run); by default the file's stem. Every file is written to a temporary name and
        renamed, so a reader never sees a half-written one; each record holds its source path."""
        from . import viz

        out = Path(out_dir)
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"cannot create output folder {out}: {exc.strerror or exc}") from None
        if not os.access(out, os.W_OK):
            raise OutputError(f"output folder {out} is not writable")
        records = []
        for i in range(len(self)):
            src = self.sources[i] if self.sources else None
            if names and src is not None and src in names:
                base = names[src]
            else:
                base = safe_name(self._image_name(i), empty="image")
            stem = base if self.requested_area is None else f"{base}_area{float(self.requested_area[i]):g}"
            mask = self.mask(i).cpu().numpy().astype(np.float32)
            # above 16 MP a float32 mask is 64 MB+: float16 (11-bit mantissa) halves it
            stored = mask.astype(np.float16) if mask.size > HALF_MASK_PIXELS else mask
            try:
                with atomic_path(out / f"{stem}.npy") as tmp:
                    np.save(tmp, stored)
                with atomic_path(out / f"{stem}_mask.png") as tmp:
                    viz.save_mask_png(mask, tmp)
                image = viz.source_image(self, i)
                with atomic_path(out / f"{stem}_overlay.png") as tmp:
                    viz.save_overlay(image, mask, tmp)
                figure = None
                if figures and self.image_index is None:
                    figure = f"{stem}_figure.png"
                    with atomic_path(out / figure) as tmp:
                        viz.save_figure(self, i, tmp)
                elif figures and self.image_index is not None:
                    # one figure for all the rows of this image, written at its first row
                    same = self.image_index == self.image_index[i]
                    rows = [j for j in range(len(self)) if bool(same[j])]
                    figure = base + "_areas.png"
                    if i == rows[0]:
                        with atomic_path(out / figure) as tmp:
                            viz.save_area_figure(self[rows], tmp)
                rec = self.record(i)
                if src:
                    rec["source"] = os.path.realpath(src)
                rec["mask_dtype"] = str(stored.dtype)
                rec["files"] = {
                    "mask_npy": f"{stem}.npy",
                    "mask_png": f"{stem}_mask.png",
                    "overlay": f"{stem}_overlay.png",
                    **({"figure": figure} if figure else {}),
                }
                text = json.dumps(rec, indent=2)
                with atomic_path(out / f"{stem}.json") as tmp:
                    tmp.write_text(text)
            except OSError as exc:
                raise OutputError(f"cannot write results to {out}: {exc.strerror or exc}") from None
            records.append(rec)
        return records
