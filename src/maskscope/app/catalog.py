"""The images the explorer may show: those in the folders it was given, the demo photos and uploads.

Every image is known by the sha256 of its bytes (``storage.content_hash``), and the pages ask for
images only by that id, never by a path: a request can reach no file that was not registered here.
A second file with the same bytes is an entry of its own (its id hashes the bytes' hash and its
path), since its name and folder are what the page shows.
Uploads are size-limited, written to the session's own folder and decoded with the same validated
loader as ``maskscope explain`` (``images.load_image``) before they are accepted. The upload store
is bounded in count and bytes: a new upload past either bound evicts the oldest ones.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError, ImageError
from ..images import IMAGE_EXTENSIONS, MAX_PIXELS, list_images, load_image
from ..storage import content_hash, safe_name

MAX_UPLOAD_BYTES = 20 * 1024 * 1024  # a 20 MB photo is already larger than any camera JPEG
MAX_UPLOADS = 20  # uploads kept per server; the oldest go first
MAX_UPLOAD_STORE_BYTES = 100 * 1024 * 1024


class UploadTooLarge(ImageError):
    """An upload above the size limit (the server answers 413)."""


@dataclass(frozen=True)
class ImageEntry:
    id: str  # sha256 of the file's bytes
    name: str  # file name as shown (escaped by the templates)
    group: str  # the folder it came from, "demo" or "uploads"
    path: Path

    def public(self) -> dict[str, str]:
        return {"id": self.id, "name": self.name, "group": self.group}


class Catalog:
    """id → image file, for the given files and folders, the demo photos and uploads."""

    def __init__(self, sources: Sequence[str | os.PathLike] = (), demo: bool = False,
                 max_upload_bytes: int = MAX_UPLOAD_BYTES, max_pixels: int = MAX_PIXELS,
                 max_uploads: int = MAX_UPLOADS,
                 max_upload_store_bytes: int = MAX_UPLOAD_STORE_BYTES) -> None:
        self.max_upload_bytes = max_upload_bytes
        self.max_uploads = max_uploads
        self.max_upload_store_bytes = max(max_upload_store_bytes, max_upload_bytes)
        self._uploads: dict[str, int] = {}  # id → bytes of the kept uploads, oldest first
        self.max_pixels = max_pixels
        self._entries: dict[str, ImageEntry] = {}
        self._lock = threading.Lock()
        self._scratch = tempfile.TemporaryDirectory(prefix="maskscope-serve-")
        self.scratch = Path(self._scratch.name)
        for source in sources:
            path = Path(source)
            if path.is_dir():
                files = list_images(path)
                if not files:
                    raise ConfigError(f"{path}: folder contains no images")
                for f in files:
                    self._add(f, path.name or str(path))
            elif path.is_file():
                self._add(path, path.parent.name or ".")
            else:
                raise ConfigError(f"{path}: no such file or folder")
        if demo:
            self._add_demo_photos()

    def _add(self, path: Path, group: str) -> ImageEntry:
        digest = content_hash(path)
        with self._lock:
            known = self._entries.get(digest)
            if known is not None and known.path.resolve() == path.resolve():  # one file, listed twice
                return known
            image_id = digest
            if known is not None:
                image_id = hashlib.sha256(f"{digest}\0{path.resolve()}".encode()).hexdigest()
            return self._entries.setdefault(image_id, ImageEntry(image_id, path.name, group, path))

    def _add_demo_photos(self) -> None:
        from PIL import Image

        from ..data.photos import demo_photos

        folder = self.scratch / "demo"
        folder.mkdir()
        for name, array in demo_photos().items():
            path = folder / f"{safe_name(name)}.png"
            Image.fromarray(array).save(path)
            self._add(path, "demo")

    def entries(self) -> list[ImageEntry]:
        with self._lock:
            return list(self._entries.values())

    def get(self, image_id: str) -> ImageEntry | None:
        with self._lock:
            return self._entries.get(image_id)

    def add_upload(self, name: str, data: bytes) -> ImageEntry:
        """Keep an uploaded image if it is within the size limit and decodes; ImageError otherwise."""
        if len(data) > self.max_upload_bytes:
            raise UploadTooLarge(f"{name}: upload is {len(data) / 1e6:.1f} MB, above the limit of "
                                 f"{self.max_upload_bytes / 1e6:g} MB")
        if not data:
            raise ImageError(f"{name}: empty file")
        suffix = Path(name).suffix.lower()
        stem = safe_name(Path(name).stem, empty="upload")[:80]
        folder = self.scratch / "uploads"
        folder.mkdir(exist_ok=True)
        path = folder / f"{stem}{suffix if suffix in IMAGE_EXTENSIONS else '.img'}"
        fd, tmp_name = tempfile.mkstemp(prefix=".upload-", suffix=path.suffix, dir=folder)
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            try:
                load_image(tmp, max_pixels=self.max_pixels)  # the validated loader: raises ImageError
            except ImageError as exc:
                raise ImageError(str(exc).replace(str(tmp), name)) from None
            digest = content_hash(tmp)
            known = self.get(digest)
            if known is not None:
                self._keep_upload(digest, len(data))
                return known
            final = path.with_name(f"{digest[:12]}-{path.name}")
            os.replace(tmp, final)
        finally:
            tmp.unlink(missing_ok=True)
        entry = ImageEntry(digest, Path(name).name or "upload", "uploads", final)
        with self._lock:
            entry = self._entries.setdefault(digest, entry)
        self._keep_upload(digest, len(data))
        return entry

    def _keep_upload(self, digest: str, size: int) -> None:
        """Count an upload as the newest one and evict the oldest beyond the store's bounds. An image
        that came from the given folders is never evicted (it is not in the store)."""
        with self._lock:
            if self._entries[digest].group != "uploads":
                return
            self._uploads.pop(digest, None)
            self._uploads[digest] = size
            while len(self._uploads) > self.max_uploads or (
                    len(self._uploads) > 1 and sum(self._uploads.values()) > self.max_upload_store_bytes):
                oldest = next(iter(self._uploads))
                del self._uploads[oldest]
                evicted = self._entries.pop(oldest)
                evicted.path.unlink(missing_ok=True)

    def close(self) -> None:
        self._scratch.cleanup()
