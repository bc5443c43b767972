"""Load image files as RGB float tensors in [0, 1], with clear typed errors for bad files."""

from __future__ import annotations

import errno
import os
import re
import warnings
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import ConfigError, ImageError

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"}
MIN_SIDE = 8  # smaller images carry no spatial information a mask could point at
# Images above this many pixels are skipped like unreadable files (``--max-pixels``): 100 MP is above
# any camera photo and keeps one decoded image under 300 MB. Pillow's own decompression-bomb limit
# (2 × Image.MAX_IMAGE_PIXELS, 179 MP) is reported the same way.
MAX_PIXELS = 100_000_000


def load_image(path: str | os.PathLike, max_pixels: int | None = MAX_PIXELS,
               reduce_to: tuple[int, int] | None = None) -> np.ndarray:
    """Read an image file as an (H, W, 3) uint8 RGB array.

    EXIF orientation is applied; greyscale, RGBA (composited on white), palette, CMYK and 16-bit
    images are converted to 8-bit RGB. An image of more than ``max_pixels`` pixels (None: no limit
    but Pillow's own) is an ImageError, found from the header before anything is decoded.
    ``reduce_to`` (h, w) decodes a large image at a reduced size no smaller than that (JPEG: DCT
    scaling via ``draft``, others: ``reduce``), so memory follows the size the caller needs.
    """
    return _load(path, max_pixels, reduce_to)[0]


def load_image_reduced(path: str | os.PathLike, size: tuple[int, int],
                       max_pixels: int | None = MAX_PIXELS) -> tuple[np.ndarray, tuple[int, int]]:
    """(the image decoded at a reduced size no smaller than ``size`` where it is larger, its
    full (H, W) as stored, EXIF orientation applied)."""
    return _load(path, max_pixels, size)


def _load(path: str | os.PathLike, max_pixels: int | None,
          reduce_to: tuple[int, int] | None) -> tuple[np.ndarray, tuple[int, int]]:
    path = Path(path)
    try:
        path.stat()
    except OSError as exc:
        reasons: dict[int | None, str] = {errno.ELOOP: "symbolic link loop", errno.ENOENT: "no such file"}
        reason = reasons.get(exc.errno, exc.strerror or str(exc))
        if exc.errno == errno.ENOENT and path.is_symlink():
            reason = f"broken symbolic link (to {os.readlink(path)})"
        raise ImageError(f"{path}: {reason}") from None
    if path.is_dir():
        raise ImageError(f"{path}: is a folder, not an image")
    if path.stat().st_size == 0:
        raise ImageError(f"{path}: empty file")
    try:
        with Image.open(path) as img:
            w, h = img.size
            if max_pixels is not None and w * h > max_pixels:
                raise ImageError(f"{path}: image is {w}x{h} ({w * h / 1e6:.0f} megapixels), above the limit "
                                 f"of {max_pixels / 1e6:g} (--max-pixels)")
            swapped = img.getexif().get(0x0112) in (5, 6, 7, 8)  # EXIF orientation turns it
            native = (w, h) if swapped else (h, w)
            factor = 1
            if reduce_to is not None:
                th, tw = reduce_to if not swapped else reduce_to[::-1]
                factor = max(1, min(w // max(tw, 1), h // max(th, 1)))
                if factor > 1 and img.format == "JPEG":
                    img.draft(img.mode, (max(w // factor, tw), max(h // factor, th)))
            img.load()  # decodes fully: truncated files fail here
            if factor > 1 and img.size == (w, h):  # not reduced while decoding
                img = img.reduce(factor) if img.mode not in ("P", "1") else img
            img = ImageOps.exif_transpose(img)
            array = _to_rgb(img)
    except Image.DecompressionBombError as exc:
        raise ImageError(f"{path}: {_bomb_reason(exc)}") from None
    except UnidentifiedImageError:
        raise ImageError(f"{path}: not a readable image") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageError(f"{path}: unreadable or truncated image ({exc})") from None
    h, w = native
    if min(h, w) < MIN_SIDE:
        raise ImageError(
            f"{path}: image is {w}x{h}, too small to explain (need at least {MIN_SIDE}x{MIN_SIDE})"
        )
    return array, native


def _bomb_reason(exc: Image.DecompressionBombError) -> str:
    """One clean line from Pillow's "Image size (N pixels) exceeds limit of M pixels, could be
    decompression bomb DOS attack." (its header claims more pixels than Pillow will decode)."""
    numbers = [int(n) for n in re.findall(r"\d+", str(exc))]
    if len(numbers) < 2:
        return "image too large to decode safely"
    pixels, limit = numbers[:2]
    return (f"image too large to decode safely ({pixels / 1e6:.0f} megapixels; Pillow decodes at most "
            f"{limit / 1e6:.0f})")


def _to_rgb(img: Image.Image) -> np.ndarray:
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        raw = np.asarray(img, dtype=np.float64)
        top = 65535.0 if raw.max() > 255 else 255.0
        grey = np.clip(raw / top * 255.0, 0, 255).astype(np.uint8)
        return np.stack([grey] * 3, axis=-1)
    if img.mode == "F":
        raw = np.asarray(img, dtype=np.float64)
        span = max(raw.max() - raw.min(), 1e-12)
        grey = ((raw - raw.min()) / span * 255).astype(np.uint8)
        return np.stack([grey] * 3, axis=-1)
    if img.mode == "P":
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba)
    return np.asarray(img.convert("RGB"), dtype=np.uint8).copy()


def to_tensor(array: np.ndarray) -> torch.Tensor:
    """(H, W, 3) uint8 → (3, H, W) float in [0, 1]."""
    return torch.from_numpy(np.array(array, dtype=np.uint8, order="C")).permute(2, 0, 1).float().div_(255.0)


def to_numpy_image(image: torch.Tensor) -> np.ndarray:
    """(3, H, W) float in [0, 1] → (H, W, 3) uint8 (a 1-channel image is shown grey)."""
    if image.shape[0] == 1:
        image = image.expand(3, -1, -1)
    return (image.detach().clamp(0, 1).permute(1, 2, 0).cpu().numpy() * 255 + 0.5).astype(np.uint8)


def grey(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 RGB → (H, W) float32 luminance in [0, 1] (ITU-R BT.601 weights)."""
    return image.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32) / 255.0


def resize_image(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Resize a (3, H, W) or (B, 3, H, W) image to (h, w) with antialiasing."""
    batched = image.dim() == 4
    x = image if batched else image[None]
    if tuple(x.shape[-2:]) != tuple(size):
        x = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True).clamp(0, 1)
    return x if batched else x[0]


def load_batch(paths: Iterable[str | os.PathLike], size: tuple[int, int] = (224, 224)) -> torch.Tensor:
    """Load files and resize each whole image (no crop) to ``size``: a (B, 3, h, w) batch."""
    return torch.stack([resize_image(to_tensor(load_image(p)), size) for p in paths])


def list_images(folder: str | os.PathLike) -> list[Path]:
    """Image files (by extension) directly inside ``folder``, sorted by name."""
    folder = Path(folder)
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)


def image_batch(images, check_values: bool = True) -> torch.Tensor:
    """What the methods take as images, checked: a (B, 3, H, W) float tensor in [0, 1].

    Numpy arrays are accepted as they come from PIL or OpenCV: (H, W, 3) or (B, H, W, 3), and also
    (3, H, W) or (B, 3, H, W); uint8 (numpy or torch) is divided by 255. Anything else, a wrong
    shape or an empty batch is a ConfigError. ``check_values`` warns (without stopping) on NaN or
    infinite pixels and on values outside [0, 1], e.g. 0–255 floats: the model would see garbage.
    """
    if isinstance(images, np.ndarray):
        if images.dtype.kind not in "uif" or images.dtype.kind == "u" and images.dtype != np.uint8:
            raise ConfigError(f"images must be uint8 or float, got a numpy array of {images.dtype}")
        array = images[None] if images.ndim == 3 else images
        if array.ndim == 4 and array.shape[-1] == 3 and array.shape[1] != 3:
            array = array.transpose(0, 3, 1, 2)  # channel-last → (B, 3, H, W)
        images = torch.from_numpy(np.ascontiguousarray(array))
    if not isinstance(images, torch.Tensor):
        kind = type(images).__name__
        raise ConfigError(f"images must be a torch tensor or numpy array (B, 3, H, W), got {kind}")
    if images.is_meta:
        raise ConfigError("images are on the meta device: they hold no pixels")
    if images.dtype == torch.uint8:
        images = images.float() / 255.0
    if not images.is_floating_point():
        raise ConfigError(f"images must be float in [0, 1] (or uint8), got {images.dtype}")
    if images.dim() != 4 or images.shape[1] != 3:
        raise ConfigError(f"images must have shape (B, 3, H, W), got {tuple(images.shape)}")
    if images.shape[0] == 0 or images.shape[2] == 0 or images.shape[3] == 0:
        raise ConfigError(f"empty batch: images have shape {tuple(images.shape)}")
    if check_values:
        finite = torch.isfinite(images)
        if not bool(finite.all()):
            warnings.warn("images contain NaN or infinite pixels: scores and masks will be meaningless",
                          stacklevel=3)
        values = images[finite]
        low, high = (float(values.min()), float(values.max())) if values.numel() else (0.0, 0.0)
        if low < -1e-3 or high > 1 + 1e-3:
            hint = " (0–255 pixels? divide by 255)" if high > 2 else ""
            warnings.warn(f"images should lie in [0, 1] but range from {low:g} to {high:g}{hint}",
                          stacklevel=3)
    return images
