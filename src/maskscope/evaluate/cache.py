"""Per-image, per-method cache of masks and scores, so an interrupted evaluation resumes.

Layout under the output folder::

    cache/<method>/settings.json   what produced these masks (method options, model, size, data)
    cache/<method>/<key>.npy       the salient mask (H, W), float16, at the evaluation size
    cache/<method>/<key>.json      per-image scores that needed the model (saliency metric, % drop, ...),
                                   with the entry's key: ``sha256`` of the image file's bytes and ``target``

``<key>`` is the image's key in the dataset (its stem), made file-system safe; a key that had to be
changed for that (``good 1``) gets a short hash of the original appended, so ``good 1`` and
``good_1`` never share an entry. An entry is reused only when its ``sha256`` and ``target`` match
the image as it is now (``MaskCache.status``): replacing an image's pixels or changing its label
recomputes that entry. Entries written before content keys existed (no ``sha256``) are adopted
when their target matches and the image file is not newer than the entry, and are recomputed
otherwise; the run reports both counts.

Every file is written to a temporary name in the same folder and then renamed, which is atomic on
POSIX and Windows: a run killed mid-write leaves at worst a stray ``*.tmp`` file, never a truncated
mask. The ``.json`` is written *after* the ``.npy``, so an entry is complete exactly when its json
exists. Masks are stored as float16 (11-bit mantissa: far finer than any threshold grid) and every
metric is computed from the stored values, so a resumed run and an uninterrupted one agree exactly.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import ConfigError, OutputError
from ..fingerprint import model_fingerprint
from ..storage import safe_name, short_hash, write_atomic

if TYPE_CHECKING:
    from ..blackbox import BlackBox
    from ..data.folders import Dataset

SETTINGS = "settings.json"
# 2: blur σ0 and occlusion's blur fill scale with the image (masks at 224 px are unchanged)
CACHE_VERSION = 2


def write_json_atomic(path: Path, data: Any) -> None:
    """JSON with keys in insertion order (tables list methods in the order asked for)."""
    text = json.dumps(data, indent=1).encode("utf-8")
    write_atomic(path, lambda handle: handle.write(text))


def entry_stem(key: str) -> str:
    """The file stem of an image key's entry: "good 1" and "good_1" must not share a file."""
    stem = safe_name(key)
    return stem if stem == key else f"{stem}-{short_hash(key)}"


def _schedule_said_once(stored: Any) -> Any:
    """Settings as this release writes them: until it, an explicit ``early_stop`` true/false stayed
    in the options beside the "schedule" that already says it, so the same masks would not match."""
    if isinstance(stored, dict) and "schedule" in stored and isinstance(stored.get("options"), dict):
        options = stored["options"]
        if isinstance(options.get("early_stop"), bool):
            kept = {k: v for k, v in options.items() if k != "early_stop"}
            return {**stored, "options": kept}
    return stored


class MaskCache:
    """The cache folder of one method. ``settings`` must match what an earlier run stored there."""

    def __init__(self, root: str | os.PathLike, method: str, settings: dict[str, Any]) -> None:
        self.folder = Path(root) / safe_name(method)
        self.method = method
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"cannot create cache folder {self.folder}: {exc.strerror or exc}") from None
        settings = json.loads(json.dumps(settings))  # normalise tuples → lists for comparison
        stored_path = self.folder / SETTINGS
        if stored_path.exists():
            try:
                stored = _schedule_said_once(json.loads(stored_path.read_text()))
            except (OSError, json.JSONDecodeError):
                stored = None
            if stored != settings:
                changed = sorted(
                    k for k in set(settings) | set(stored or {}) if (stored or {}).get(k) != settings.get(k)
                )
                what = ", ".join(changed) or "unreadable settings"
                hint = ""
                if "schedule" in changed and stored and "schedule" in stored:  # the flag that gives it
                    made = stored["schedule"]
                    flag = "--fixed-schedule" if made == "fixed" else "--early-stop"
                    hint = f" (it was made with the {made} schedule: {flag} reuses it)"
                raise ConfigError(
                    f"{self.folder} holds masks made with other settings ({what}){hint}; "
                    "use another --out folder or delete that cache folder"
                )
        else:
            try:
                write_json_atomic(stored_path, settings)
            except OSError as exc:
                raise OutputError(f"cannot write {stored_path}: {exc.strerror or exc}") from None
        self.settings = settings

    def _paths(self, key: str) -> tuple[Path, Path]:
        stem = entry_stem(key)
        return self.folder / f"{stem}.npy", self.folder / f"{stem}.json"

    def status(self, key: str, sha256: str, target: int, image: str | os.PathLike | None = None) -> str:
        """``"ok"`` (reuse), ``"missing"``, ``"stale"`` (made from other pixels or for another
        target, or unreadable: recompute) or ``"legacy"`` (written before entries carried the image's
        content hash, with the same target and not older than ``image``: reusable once ``adopt``
        has recorded the hash)."""
        npy, meta = self._paths(key)
        if not meta.exists() or not npy.exists():
            return "missing"
        try:
            record = json.loads(meta.read_text())
        except (OSError, ValueError):
            return "stale"
        if not isinstance(record, dict) or record.get("target") != int(target) or not self._readable(npy):
            return "stale"
        if "sha256" in record:
            return "ok" if record["sha256"] == sha256 else "stale"
        if image is None:
            return "stale"
        try:
            edited_after = os.stat(image).st_mtime > meta.stat().st_mtime
        except OSError:
            return "stale"
        return "stale" if edited_after else "legacy"

    def _readable(self, npy: Path) -> bool:
        """A mask as ``put`` writes it: 2-D float of the evaluation size, finite (a wrong-shape or
        NaN-filled file is stale, recomputed, rather than trusted)."""
        try:
            array = np.load(npy, allow_pickle=False)
        except (OSError, ValueError, EOFError):
            return False
        size = self.settings.get("size")
        shaped = array.ndim == 2 and (size is None or list(array.shape) == list(size))
        return array.dtype.kind == "f" and shaped and bool(np.isfinite(array).all())

    def adopt(self, key: str, sha256: str) -> None:
        """Record the content hash in a legacy entry (its mask is left untouched)."""
        _, record = self.get(key)
        self.update_scores(key, {**record, "sha256": sha256})

    def has(self, key: str) -> bool:
        npy, meta = self._paths(key)
        return meta.exists() and npy.exists()

    def put(self, key: str, mask: np.ndarray, scores: dict[str, Any]) -> None:
        """Store one mask (H, W) and its scores; the mask is saved as float16."""
        npy, meta = self._paths(key)
        array = np.asarray(mask, dtype=np.float16)
        if array.ndim != 2:
            raise ValueError(f"expected a 2-D mask, got shape {array.shape}")
        try:
            write_atomic(npy, lambda handle: np.save(handle, array))
            write_json_atomic(meta, scores)
        except OSError as exc:
            raise OutputError(f"cannot write to the cache {self.folder}: {exc.strerror or exc}") from None

    def update_scores(self, key: str, scores: dict[str, Any]) -> None:
        """Replace the scores of a complete entry, leaving its mask file untouched (scores added
        after the mask was made are computed from the cached mask)."""
        npy, meta = self._paths(key)
        if not npy.exists():
            raise OutputError(f"no cached mask {npy} to attach scores to")
        try:
            write_json_atomic(meta, scores)
        except OSError as exc:
            raise OutputError(f"cannot write to the cache {self.folder}: {exc.strerror or exc}") from None

    def record(self, key: str) -> dict[str, Any]:
        """The scores of a cached entry, without reading its mask."""
        _, meta = self._paths(key)
        try:
            return json.loads(meta.read_text())
        except (OSError, ValueError) as exc:
            raise OutputError(f"corrupt cache entry {meta}: {exc}; delete it to recompute") from None

    def get(self, key: str) -> tuple[np.ndarray, dict[str, Any]]:
        """(mask as float32 (H, W), scores) of a cached entry."""
        npy, meta = self._paths(key)
        try:
            return np.load(npy, allow_pickle=False).astype(np.float32), json.loads(meta.read_text())
        except (OSError, ValueError, EOFError) as exc:  # EOFError: an empty file
            raise OutputError(f"corrupt cache entry {npy}: {exc}; delete it to recompute") from None

    @staticmethod
    def rounded(mask: np.ndarray) -> np.ndarray:
        """The mask exactly as ``get`` will return it: scores are computed from this."""
        return np.asarray(mask, dtype=np.float16).astype(np.float32)


def cache_settings(name: str, options: dict[str, Any], model: BlackBox, dataset: Dataset,
                   size: tuple[int, int]) -> dict[str, Any]:
    """Everything that changes a cached mask of ``name`` run with ``options``
    (``runner.method_options``): a mismatch with an earlier run is refused. The iterative methods'
    schedule is named even when left at its default (early stopping for meaningful, the fixed
    schedule for crisp and extremal), so masks cached under one schedule are never mixed with the
    other, whether it was asked for or the default."""
    from ..methods import METHODS  # the registry: each method says whether it iterates

    schedule = {}
    if name in METHODS and METHODS[name].iterative:  # the option as given, else the method's own default
        default = bool(METHODS[name].early_stop)
        schedule["schedule"] = "early-stop" if options.get("early_stop", default) else "fixed"
        if isinstance(options.get("early_stop"), bool):  # said by "schedule": the same cache
            options = {k: v for k, v in options.items() if k != "early_stop"}  # given or default
    fingerprint = METHODS[name].fingerprint() if name in METHODS else None  # a user's function's source
    return {
        "version": CACHE_VERSION,
        "method": name,
        "options": options,
        **schedule,
        **({"function": fingerprint} if fingerprint is not None else {}),
        "model": getattr(model, "name", type(model).__name__),
        "model_fingerprint": model_fingerprint(model),
        "size": list(size),
        "data": str(dataset.root.resolve()),
        "targets": "label" if dataset.annotated else "top1",
    }
