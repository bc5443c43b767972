"""An explanation written to files and drawn as a figure: the ``.npy`` masks, mask PNGs, overlays,
Figure-1 panels and JSON records ``maskscope explain`` writes, and the notebook figure.

It sits above ``Explanation``, which is a plain record and knows nothing of files; the record's
``save``, ``plot`` and ``output_names`` are shortcuts that call these functions.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from . import viz
from .errors import ConfigError, OutputError
from .explanation import Explanation
from .storage import atomic_path, safe_name, short_hash

HALF_MASK_PIXELS = 16_000_000  # masks of more pixels are saved as float16 (``mask_dtype`` in the JSON)


# what ``save_explanation`` appends to an output name (extremal rows first add ``_area<a>``)
OUTPUT_SUFFIXES = (".npy", ".json", "_mask.png", "_overlay.png", "_figure.png", "_areas.png")
_AREA = re.compile(r"_area[0-9.e+-]+$")
_HASHED = re.compile(r"-[0-9a-f]{8}(?:[0-9a-f]{8})?(?:-[0-9]+)?$")  # what ``_candidates`` appends


def output_names(paths: Sequence[str | os.PathLike],
                 existing: Mapping[str, str | None] | None = None) -> dict[str, str]:
    """Source path → output name, unique over ``paths`` and deterministic: the file-system safe
    stem, with a short hash of the resolved path appended wherever two different files would
    share it (``a/x.jpg`` and ``b/x.png``; ``good 1.jpg`` and ``good_1.jpg``).

    ``existing`` (the output folder's files → the resolved source whose results they hold, None
    for a file maskscope did not write) keeps names unique across runs too: a name whose files
    hold another image's results, or someone else's file, is passed over for the hashed one, so
    only the same image explained again replaces its own earlier results."""
    stems = {str(p): safe_name(Path(p).stem, empty="image") for p in paths}
    owners: dict[str, set[str]] = {}
    for p, stem in stems.items():
        owners.setdefault(stem.lower(), set()).add(os.path.realpath(p))
    claims = _claims(existing or {})
    used: dict[str, str] = {}  # name (lower case) → the source this run gives it
    names = {}
    for p, stem in stems.items():
        source = os.path.realpath(p)
        first = stem if len(owners[stem.lower()]) == 1 else f"{stem}-{short_hash(source)}"
        names[p] = _pick(_candidates(first, stem, source), source, claims, used)
        used[names[p].lower()] = source
    return names


def passed_over(names: Mapping[str, str], existing: Mapping[str, str | None] | None) -> dict[str, str]:
    """Source path → its plain name, for those ``output_names`` gave another name because the
    plain one's files in the folder hold another image's results or files maskscope did not write."""
    plain = output_names(list(names))
    claims = _claims(existing or {})
    return {p: plain[p] for p, name in names.items()
            if name != plain[p] and not claims.get(plain[p].lower(), set()) <= {os.path.realpath(p)}}


def name_filter(paths: Sequence[str | os.PathLike]) -> Callable[[str], bool]:
    """Whether a file in the output folder could hold results under a name ``output_names`` may
    give one of ``paths`` (its stem, or the stem with a hash): only those need their bytes checked."""
    stems = {safe_name(Path(p).stem, empty="image").lower() for p in paths}
    return lambda name: any(b in stems or _HASHED.sub("", b) in stems for b in _bases(name.lower()))


def _bases(name: str) -> set[str]:
    """The output names whose results include a file ``name`` (``x_area0.1.npy``: ``x_area0.1``
    and ``x``)."""
    bases = set()
    for suffix in OUTPUT_SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix):
            base = name[: -len(suffix)]
            area = _AREA.search(base)
            bases |= {base, base[: area.start()] if area and area.start() else base}
    return bases


def _claims(existing: Mapping[str, str | None]) -> dict[str, set[str | None]]:
    """Output name (lower case) → the owners of the files in the folder that its results would
    replace."""
    claims: dict[str, set[str | None]] = {}
    for name, owner in existing.items():
        for base in _bases(name.lower()):
            claims.setdefault(base, set()).add(owner)
    return claims


def _candidates(first: str, stem: str, source: str) -> list[str]:
    hashed = [f"{stem}-{short_hash(source)}", f"{stem}-{short_hash(source, 16)}"]
    more = [f"{stem}-{short_hash(source)}-{k}" for k in range(2, 100)]
    return list(dict.fromkeys([first, stem, *hashed, *more]))


def _pick(candidates: list[str], source: str, claims: dict[str, set[str | None]],
          used: dict[str, str]) -> str:
    """The name this source already holds in the folder, else the first that replaces nothing."""
    free = [c for c in candidates if used.get(c.lower(), source) == source
            and claims.get(c.lower(), set()) <= {source}]
    if not free:
        raise OutputError(f"no free output name for {source}: move the folder's files away")
    return next((c for c in free if claims.get(c.lower())), free[0])


def plot_explanation(explanation: Explanation, i: int = 0):
    """Image i's explanation as a matplotlib figure (image, perturbed image, mask; the paper's
    Figure 1), returned so that a notebook shows it; ``.savefig(path)`` keeps it."""
    import matplotlib.pyplot as plt  # the user's backend (inline in a notebook), chosen by them

    if not 0 <= i < len(explanation):
        raise ConfigError(f"no image {i}: the explanation has {len(explanation)}")
    return viz.explanation_figure(explanation, i, plt.figure())


def save_explanation(explanation: Explanation, out_dir: str | os.PathLike, figures: bool = True,
                     names: Mapping[str, str] | None = None, overwrite: bool = True) -> list[dict[str, Any]]:
    """Write per image: ``<stem>.npy`` (float mask at the file's size), ``<stem>_mask.png``,
    ``<stem>_overlay.png``, ``<stem>_figure.png`` (original / perturbed / mask, as the paper's
    Figure 1) and ``<stem>.json``. Returns the JSON records.

    Several masks per image (extremal: stems ``<name>_area<a>``) get instead one figure per
    image, ``<name>_areas.png``, with a column per area (``viz.save_area_figure``).

    ``names`` maps a source path to its output name (``output_names`` makes them unique over a
    whole run); by default the file's stem. Every file is written to a temporary name and
    renamed, so a reader never sees a half-written one; each record holds its source path.

    ``overwrite=False`` refuses, before writing anything, a folder that already holds a record of
    one of these names (an earlier run's results are never replaced silently). The command line and
    the explorer pass their own unique ``names`` instead."""
    out = Path(out_dir)
    if not overwrite:
        stems = [_stems(explanation, i, names)[1] for i in range(len(explanation))]
        taken = [f"{s}.json" for s in stems if (out / f"{s}.json").exists() or (out / f"{s}.npy").exists()]
        if taken:
            more = f" and {len(taken) - 1} more" if len(taken) > 1 else ""
            raise OutputError(f"{out} already holds {taken[0]}{more} from an earlier save; pass "
                              "overwrite=True to replace them, or save to another folder")
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


def _stems(e: Explanation, i: int, names: Mapping[str, str] | None) -> tuple[str, str]:
    """(image's output name, row's file stem): extremal rows add ``_area<a>`` to the name."""
    src = e.sources[i] if e.sources else None
    if names and src is not None and src in names:
        base = names[src]
    else:
        base = safe_name(e.image_name(i), empty="image")
    return base, base if e.requested_area is None else f"{base}_area{float(e.requested_area[i]):g}"


def _save_row(e: Explanation, i: int, out: Path, figures: bool,
              names: Mapping[str, str] | None) -> dict[str, Any]:
    """Row i's files and its JSON record (which it returns)."""
    src = e.sources[i] if e.sources else None
    base, stem = _stems(e, i, names)
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
