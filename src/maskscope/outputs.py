"""An explanation written to files and drawn as a figure: the ``.npy`` masks, mask PNGs, overlays,
Figure-1 panels and JSON records ``maskscope explain`` writes, and the notebook figure.

It sits above ``Explanation``, which is a plain record and knows nothing of files; the record's
``save``, ``plot`` and ``output_names`` are shortcuts that call these functions.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from . import viz
from .errors import ConfigError, OutputError
from .explanation import Explanation
from .storage import atomic_path, safe_name, short_hash

HALF_MASK_PIXELS = 16_000_000  # masks of more pixels are saved as float16 (``mask_dtype`` in the JSON)


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


def plot_explanation(explanation: Explanation, i: int = 0):
    """Image i's explanation as a matplotlib figure (image, perturbed image, mask; the paper's
    Figure 1), returned so that a notebook shows it; ``.savefig(path)`` keeps it."""
    import matplotlib.pyplot as plt  # the user's backend (inline in a notebook), chosen by them

    if not 0 <= i < len(explanation):
        raise ConfigError(f"no image {i}: the explanation has {len(explanation)}")
    return viz.explanation_figure(explanation, i, plt.figure())


def save_explanation(explanation: Explanation, out_dir: str | os.PathLike, figures: bool = True,
                     names: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    """Write per image: ``<stem>.npy`` (float mask at the file's size), ``<stem>_mask.png``,
    ``<stem>_overlay.png``, ``<stem>_figure.png`` (original / perturbed / mask, as the paper's
    Figure 1) and ``<stem>.json``. Returns the JSON records.

    Several masks per image (extremal: stems ``<name>_area<a>``) get instead one figure per
    image, ``<name>_areas.png``, with a column per area (``viz.save_area_figure``).

    ``names`` maps a source path to its output name (``output_names`` makes them unique over a
    whole run); by default the file's stem. Every file is written to a temporary name and
    renamed, so a reader never sees a half-written one; each record holds its source path."""
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create output folder {out}: {exc.strerror or exc}") from None
    if not os.access(out, os.W_OK):
        raise OutputError(f"output folder {out} is not writable")
    records = []
    for i in range(len(explanation)):
        try:
            records.append(_save_row(explanation, i, out, figures, names))
        except OSError as exc:
            raise OutputError(f"cannot write results to {out}: {exc.strerror or exc}") from None
    return records


def _save_row(e: Explanation, i: int, out: Path, figures: bool,
              names: Mapping[str, str] | None) -> dict[str, Any]:
    """Row i's files and its JSON record (which it returns)."""
    src = e.sources[i] if e.sources else None
    if names and src is not None and src in names:
        base = names[src]
    else:
        base = safe_name(e.image_name(i), empty="image")
    stem = base if e.requested_area is None else f"{base}_area{float(e.requested_area[i]):g}"
    mask = e.mask(i).cpu().numpy().astype(np.float32)
    # above 16 MP a float32 mask is 64 MB+: float16 (11-bit mantissa) halves it
    stored = mask.astype(np.float16) if mask.size > HALF_MASK_PIXELS else mask
    with atomic_path(out / f"{stem}.npy") as tmp:
        np.save(tmp, stored)
    with atomic_path(out / f"{stem}_mask.png") as tmp:
        viz.save_mask_png(mask, tmp)
    image = viz.source_image(e, i)
    with atomic_path(out / f"{stem}_overlay.png") as tmp:
        viz.save_overlay(image, mask, tmp)
    figure = None
    if figures and e.image_index is None:
        figure = f"{stem}_figure.png"
        with atomic_path(out / figure) as tmp:
            viz.save_figure(e, i, tmp)
    elif figures and e.image_index is not None:
        # one figure for all the rows of this image, written at its first row
        same = e.image_index == e.image_index[i]
        rows = [j for j in range(len(e)) if bool(same[j])]
        figure = base + "_areas.png"
        if i == rows[0]:
            with atomic_path(out / figure) as tmp:
                viz.save_area_figure(e[rows], tmp)
    rec = e.record(i)
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
    return rec
