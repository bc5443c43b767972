"""``manifest.json`` of an ``explain --out`` folder: what maskscope wrote there, with proof.

The manifest carries a format marker and the sha256 of every file it lists, so ``--clean`` deletes
only files that maskscope wrote and nobody changed since: a file listed by a manifest without the
marker (another tool's, or a hand-edited one), or whose bytes no longer match, is kept. A
``manifest.json`` that another tool wrote is never replaced: the run stops before any work, with
one line. A manifest of an earlier maskscope release (no marker, but its own keys) is replaced,
and the files it lists are kept, since nothing proves who wrote them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .errors import OutputError
from .storage import content_hash, write_atomic

MANIFEST = "manifest.json"
FORMAT = "maskscope explain manifest"
VERSION = 2


def _read(out: Path) -> Any:
    try:
        return json.loads((out / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return "unreadable"


def _is_ours(manifest: Any) -> bool:
    return isinstance(manifest, dict) and manifest.get("format") == FORMAT


def _is_legacy(manifest: Any) -> bool:
    """A manifest of a release before the format marker: maskscope's keys, no proof."""
    return (isinstance(manifest, dict) and "format" not in manifest and manifest.get("command") == "explain"
            and isinstance(manifest.get("files"), list) and isinstance(manifest.get("stale", []), list))


def present_files(out: Path) -> set[str]:
    """Files already in ``out`` that a run could have written (not hidden, not the manifest);
    OutputError when ``out`` holds a ``manifest.json`` that maskscope did not write."""
    manifest = _read(out)
    if manifest is not None and not (_is_ours(manifest) or _is_legacy(manifest)):
        raise OutputError(f"{out / MANIFEST} was not written by maskscope; move it away or choose "
                          f"another --out (it would be replaced)")
    return {p.name for p in out.iterdir()
            if p.is_file() and not p.name.startswith(".") and p.name != MANIFEST}


def _plain_name(name: Any) -> bool:
    return isinstance(name, str) and bool(name) and "/" not in name and "\\" not in name \
        and not name.startswith(".") and name != MANIFEST


def previous_files(out: Path) -> dict[str, str]:
    """name → sha256 of the files earlier maskscope runs wrote into ``out``, per its manifest
    (its files and the stale files of earlier runs it carried on); empty without proof."""
    manifest = _read(out)
    if not _is_ours(manifest):
        return {}
    hashes = manifest.get("sha256")
    if not isinstance(hashes, dict):
        return {}
    listed = [*manifest.get("files", []), *manifest.get("earlier", [])]
    return {name: hashes[name] for name in listed
            if _plain_name(name) and isinstance(hashes.get(name), str)}


def owners(out: Path, wanted: Callable[[str], bool] = lambda name: True) -> dict[str, str | None]:
    """Each file in ``out`` that a run could replace → the resolved source image whose results it
    holds, per maskscope's manifest and unchanged since; None for any other file (a user's own,
    one edited since, or one listed without proof). Output names are chosen so that a run never
    replaces a file owned by another source or by nobody. Only the files ``wanted`` accepts are
    read back (the others: None), so a big folder is not hashed whole on every run."""
    present = present_files(out) if out.is_dir() else set()
    listed = previous_files(out)
    sources = _sources(out, sorted(present & set(listed)))
    return {name: sources[name] if name in sources and wanted(name) and _unchanged(out, name, listed[name])
            else None for name in present}


def _unchanged(out: Path, name: str, digest: str) -> bool:
    try:
        return content_hash(out / name) == digest
    except OSError:
        return False


def write_manifest(out: Path, written: dict[str, str], before: set[str],
                   clean: bool) -> tuple[list[str], int]:
    """``manifest.json``: ``files`` written (``sources``: file → source image, ``sha256``: file →
    hash), ``stale`` files (there before, not rewritten) and among them ``earlier``, those an
    earlier run wrote whose bytes still match; with ``clean`` those are deleted. Returns (stale
    files kept, how many were deleted)."""
    previous = previous_files(out)
    stale = sorted(before - set(written))
    ours = {name for name in stale if name in previous and _unchanged(out, name, previous[name])}
    removed = 0
    if clean:
        for name in sorted(ours):
            try:
                (out / name).unlink()
                removed += 1
            except OSError as exc:
                raise OutputError(f"cannot delete stale file {out / name}: {exc.strerror or exc}") from None
        stale = [s for s in stale if s not in ours]
        ours = set()
    earlier = [s for s in stale if s in ours]
    try:
        hashes = {name: content_hash(out / name) for name in sorted(written)}
    except OSError as exc:
        raise OutputError(f"cannot read back {out}: {exc.strerror or exc}") from None
    hashes.update({name: previous[name] for name in earlier})
    sources = {**_sources(out, earlier), **written}  # an earlier file keeps its source image
    manifest = {"format": FORMAT, "version": VERSION, "command": "explain", "files": sorted(written),
                "sources": dict(sorted(sources.items())), "stale": stale, "earlier": earlier,
                "sha256": dict(sorted(hashes.items()))}
    text = json.dumps(manifest, indent=1).encode("utf-8")
    try:
        write_atomic(out / MANIFEST, lambda handle: handle.write(text))
    except OSError as exc:
        raise OutputError(f"cannot write {out / MANIFEST}: {exc.strerror or exc}") from None
    return stale, removed


def _sources(out: Path, names: list[str]) -> dict[str, str]:
    """The source images the manifest in ``out`` names for ``names`` (those it names)."""
    manifest = _read(out)
    sources = manifest.get("sources") if _is_ours(manifest) else None
    if not isinstance(sources, dict):
        return {}
    return {n: sources[n] for n in names if isinstance(sources.get(n), str)}


# -- the record of the other commands' result files (evaluate) ---------------------------------------
RECORD = ".maskscope-results.json"  # hidden, so that explain never takes it for a result
RECORD_FORMAT = "maskscope results record"


def _recorded(out: Path) -> dict[str, str]:
    try:
        data = json.loads((out / RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    hashes = data.get("sha256") if isinstance(data, dict) and data.get("format") == RECORD_FORMAT else None
    return {k: v for k, v in hashes.items() if isinstance(v, str)} if isinstance(hashes, dict) else {}


def check_replaceable(out: Path, files: list[str], folders: Sequence[str] = ()) -> None:
    """Before any work: each of ``files`` (paths under ``out``) is absent or a file that an
    earlier run of the same kind wrote there (per the record, bytes unchanged), and none of their
    folders (nor ``folders``) is a file. Anything else stops the run with one line, so that a
    user's own ``metrics.json``, or explain's results of an image named ``metrics.png``, is never
    replaced, and a file in the way of a folder fails before the work rather than after it."""
    recorded = _recorded(out)
    for folder in [*folders, *(str(p) for name in files for p in Path(name).parents if str(p) != ".")]:
        if (out / folder).exists() and not (out / folder).is_dir():
            raise OutputError(f"{out / folder} is a file, but the results need a folder there; move it "
                              f"away or choose another --out")
    for name in files:
        path = out / name
        if path.is_dir():
            raise OutputError(f"{path} is a folder, but the results need a file there; move it away or "
                              f"choose another --out")
        if path.exists() and not (name in recorded and _unchanged(out, name, recorded[name])):
            raise OutputError(f"{path} was not written by maskscope (or was changed since) and would be "
                              f"replaced; move it away or choose another --out")


def record_written(out: Path, files: list[str]) -> None:
    """Add the sha256 of those of ``files`` that now exist to the record in ``out`` (after a run
    that ``check_replaceable`` let through: every one of them is then its own)."""
    recorded = _recorded(out)
    try:
        now = {name: content_hash(out / name) for name in files if (out / name).is_file()}
        if not now:  # nothing written (a run that failed early): no record in a folder it may remove
            return
        recorded.update(now)
        text = json.dumps({"format": RECORD_FORMAT, "sha256": dict(sorted(recorded.items()))}, indent=1)
        write_atomic(out / RECORD, lambda handle: handle.write(text.encode("utf-8")))
    except OSError as exc:
        raise OutputError(f"cannot write {out / RECORD}: {exc.strerror or exc}") from None
