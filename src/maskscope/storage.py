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
from collections.abc import Callable
from pathlib import Path
from typing import IO


def safe_name(name: str, empty: str = "_") -> str:
    """A file-system-safe version of a method name, image key or stem (``empty`` if nothing is left)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name) or empty


def write_atomic(path: str | os.PathLike, write: Callable[[IO[bytes]], object]) -> None:
    """Call ``write(file_object)`` on a temporary file next to ``path``, then rename it over
    ``path`` (atomic on POSIX and Windows)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


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
