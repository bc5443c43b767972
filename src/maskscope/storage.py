"""File-system helpers shared by everything that writes results: safe file names, atomic writes.

A run killed mid-write (an evaluation cache, a masker checkpoint) must leave at worst a stray
``*.tmp`` file, never a truncated one that a resumed run would read back.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO


def safe_name(name: str, empty: str = "_") -> str:
    """A file-system-safe version of a method name, image key or stem (``empty`` if nothing is left)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name) or empty


def write_atomic(path: str | os.PathLike, write: Callable[[IO[bytes]], object]) -> None:
    """Call ``write(file_object)`` on a temporary file next to ``path``, then rename it over
    ``path`` (atomic on POSIX and Windows). A writer that wraps a failed write in its own error
    (``torch.save`` on a full disk raises RuntimeError) raises the OSError behind it, so callers
    need to catch one kind only; the temporary file is gone either way."""
    try:
        with atomic_path(path, keep_suffix=False) as tmp, open(tmp, "wb") as handle:
            write(handle)
    except RuntimeError as exc:
        cause = exc.__cause__ or exc.__context__
        if isinstance(cause, OSError):
            raise cause from None
        raise


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    """``write_atomic`` of bytes already in memory."""
    write_atomic(path, lambda handle: handle.write(data))


def content_hash(path: str | os.PathLike) -> str:
    """sha256 (hex) of a file's bytes: what every cache keys an image by, so an edited file, a
    same-named file in another folder or ``a.jpg`` beside ``a.png`` never shares a cache entry."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def short_hash(text: str, length: int = 8) -> str:
    """A short, deterministic hex digest of ``text`` (disambiguates colliding output names)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:length]


def _public(path: str | os.PathLike) -> None:
    """mkstemp makes 0600 files; give results the permissions a plain ``open`` would."""
    mask = os.umask(0)
    os.umask(mask)
    with contextlib.suppress(OSError):
        os.chmod(path, 0o666 & ~mask)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, keep_suffix: bool = True) -> Iterator[Path]:
    """A temporary path beside ``path`` (same suffix, so writers that pick a format by extension
    still work) that is renamed over ``path`` when the block succeeds, and removed when it fails:
    a reader never sees a half-written file, and two writers never interleave their bytes.
    ``keep_suffix=False`` names it ``.<name>.XXXX.tmp`` instead (byte writers, ``write_atomic``)."""
    path = Path(path)
    if keep_suffix:
        prefix, suffix = f".{path.stem}.", f".tmp{path.suffix}"
    else:
        prefix, suffix = f".{path.name}.", ".tmp"
    fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        _public(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


LOCK_NAME = ".maskscope.lock"


@contextlib.contextmanager
def output_lock(folder: str | os.PathLike) -> Iterator[None]:
    """An advisory, exclusive lock on an output folder for the length of a run (``fcntl.flock`` on
    ``<folder>/.maskscope.lock``; released by the OS if the process dies). A second run into the
    same folder gets an OutputError at once, naming the process that holds it. On systems without
    ``fcntl`` the lock is skipped."""
    with _held(Path(folder) / LOCK_NAME, folder):
        yield


@contextlib.contextmanager
def file_lock(path: str | os.PathLike) -> Iterator[None]:
    """``output_lock`` for one output file (``train --out m.pt``): the lock is ``.m.pt.lock`` beside
    it, so two runs into one file exclude each other while runs into other files of the folder do not."""
    path = Path(path)
    with _held(path.parent / f".{path.name}.lock", path):
        yield


@contextlib.contextmanager
def _held(lock: Path, folder: str | os.PathLike) -> Iterator[None]:
    """The flock on ``lock`` while the block runs; ``folder`` is what the error line names."""
    from .errors import OutputError

    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks here
        yield
        return
    try:
        handle = open(lock, "a+")  # noqa: SIM115 (held for the whole run)
    except OSError as exc:
        raise OutputError(f"cannot lock {folder}: {exc.strerror or exc}") from None
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise OutputError(f"{folder} is in use by another maskscope run ({holder}); wait for it to "
                              "finish or choose another --out") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}")
        handle.flush()
        try:
            yield
        finally:
            handle.seek(0)
            handle.truncate()
            handle.flush()
            fcntl.flock(handle, fcntl.LOCK_UN)
    finally:
        handle.close()
