"""Explain a video frame by frame with a trained masker — the application Dabkowski & Gal's
conclusion proposes: one masker forward pass per frame is fast enough to follow a video stream.

Frames are decoded and encoded by the ffmpeg binary that ``imageio-ffmpeg`` bundles (no system
ffmpeg needed); they are explained in batches and written as a heat-map overlay video.

The output is encoded into a temporary file beside ``video_out`` and renamed over it only when
ffmpeg finished without error and wrote a non-empty file, so a failed encode never leaves (or
replaces an earlier result with) a truncated or empty video. Frames of odd width or height (which
H.264 in yuv420p cannot encode) are padded by one edge-replicated row / column to even sizes.
An image file given as a video is refused (``maskscope explain`` explains images). The output
never replaces the input video, and replaces an existing file only when asked (``overwrite``).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from .blackbox import BlackBox, TargetSpec
from .errors import ConfigError, DataError, OutputError
from .extras import install_hint
from .images import IMAGE_EXTENSIONS, to_tensor
from .methods.realtime import RealTimeMasker
from .methods.realtime.validate import predict_masks
from .target import class_targets


def _ffmpeg():
    try:
        import imageio_ffmpeg
    except ImportError:
        raise ConfigError(f"video needs imageio-ffmpeg ({install_hint('video')})") from None
    return imageio_ffmpeg


def read_video(path: str | os.PathLike) -> tuple[dict, Iterator[np.ndarray]]:
    """(metadata with 'size' (W, H), 'fps', 'frames' (estimate)), iterator of (H, W, 3) uint8 frames."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such video file")
    if path.suffix.lower() in IMAGE_EXTENSIONS:
        raise DataError(f"{path}: is an image, not a video; explain images with `maskscope explain`")
    ffmpeg = _ffmpeg()
    reader = ffmpeg.read_frames(str(path))
    try:
        meta = next(reader)
    except (RuntimeError, OSError, StopIteration) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else "no video stream"
        raise DataError(f"{path}: cannot decode video ({reason[:160]})") from None
    if not meta.get("size") or min(meta["size"]) <= 0:
        raise DataError(f"{path}: no video stream")
    w, h = meta["size"]
    try:
        meta["frames"] = ffmpeg.count_frames_and_secs(str(path))[0]
    except (RuntimeError, OSError):
        meta["frames"] = None
    codec = (str(meta.get("codec") or "").split() or [""])[0].strip(",").lower()
    if codec in IMAGE_CODECS or (codec == "mjpeg" and meta["frames"] == 1):
        reader.close()
        raise DataError(f"{path}: is an image ({codec}), not a video; explain it with `maskscope explain`")

    def frames() -> Iterator[np.ndarray]:
        try:
            for raw in reader:
                yield np.frombuffer(raw, dtype=np.uint8).reshape(h, w, 3).copy()
        except (RuntimeError, OSError) as exc:
            raise DataError(f"{path}: video is corrupt ({str(exc).strip()[:160]})") from None

    return meta, frames()


IMAGE_CODECS = ("png", "bmp", "tiff", "webp", "gif", "jpegls")  # still images ffmpeg would read
VIDEO_EXTENSIONS = (".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi")


def check_video_out(path: str | os.PathLike) -> Path:
    """OutputError unless ``path`` names a video file ffmpeg can write (by extension), not a folder."""
    out = Path(path)
    if out.is_dir():
        raise OutputError(f"{out}: is a folder; give a video file name such as {out / 'explained.mp4'}")
    if out.suffix.lower() not in VIDEO_EXTENSIONS:
        raise OutputError(f"{out}: the output needs a video extension ({', '.join(VIDEO_EXTENSIONS)})")
    return out


def check_not_replacing(video_in: str | os.PathLike, out: Path, overwrite: bool) -> None:
    """OutputError when writing ``out`` would replace the input video (under any name: a link, the
    same path spelled otherwise) or, unless ``overwrite``, any existing file."""
    if not (out.exists() or out.is_symlink()):
        return
    with contextlib.suppress(OSError):
        if os.path.samefile(video_in, out):
            raise OutputError(f"{out}: is the input video; choose another --out")
    if not overwrite:
        raise OutputError(f"{out}: already exists; pass --overwrite to replace it or choose another --out")


def even_size(width: int, height: int) -> tuple[int, int]:
    """The encoded (W, H): odd sides grow by one pixel (see ``even_frame``)."""
    return width + width % 2, height + height % 2


def even_frame(frame: np.ndarray) -> np.ndarray:
    """Pad an (H, W, 3) frame by one edge-replicated row / column where H or W is odd."""
    h, w = frame.shape[:2]
    if h % 2 == 0 and w % 2 == 0:
        return frame
    return np.pad(frame, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")


def _ffmpeg_reason(exc: BaseException) -> str:
    """The useful line of an ffmpeg failure (its last error line, not the banner)."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    useful = [ln for ln in lines if "rror" in ln or "not divisible" in ln or "Invalid" in ln]
    return ((useful or lines or [type(exc).__name__])[-1])[:160]


def _batches(frames: Iterator[np.ndarray], size: int) -> Iterator[list[np.ndarray]]:
    batch: list[np.ndarray] = []
    for frame in frames:
        batch.append(frame)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def explain_video(
    blackbox: BlackBox,
    masker: RealTimeMasker,
    video_in: str | os.PathLike,
    video_out: str | os.PathLike,
    target: TargetSpec = None,
    batch_size: int = 16,
    progress: bool = True,
    overwrite: bool = False,
) -> dict:
    """Write an overlay video of the masker's masks; returns frame count, fps and the target of
    each frame. ``target=None`` explains each frame's own top-1 class. An existing ``video_out`` is
    replaced only with ``overwrite``, and never when it is ``video_in``."""
    from .viz import overlay

    out = check_video_out(video_out)
    meta, frames = read_video(video_in)
    check_not_replacing(video_in, out, overwrite)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{out.stem}.", suffix=f".tmp{out.suffix}", dir=out.parent)
        os.close(fd)
    except OSError as exc:
        raise OutputError(f"cannot write to {out.parent}: {exc.strerror or exc}") from None
    tmp = Path(tmp_name)
    fps = float(meta.get("fps") or 25.0)
    w, h = meta["size"]
    size = even_size(w, h)  # H.264 / yuv420p needs even sizes
    writer = _ffmpeg().write_frames(str(tmp), size, fps=fps, macro_block_size=1, quality=7)
    written, targets = 0, []
    try:
        try:
            writer.send(None)
            bar = tqdm(total=meta.get("frames"), desc="frames", unit="frame", disable=not progress)
            with blackbox.evaluating():
                for batch in _batches(frames, batch_size):
                    x = torch.stack([to_tensor(f) for f in batch]).to(blackbox.device)
                    t = class_targets(blackbox, x, target, "the video masker")[:, 0]
                    masks = predict_masks(masker, x, t, batch_size)
                    for frame, mask in zip(batch, masks[:, 0].numpy()):
                        writer.send(np.ascontiguousarray(even_frame(overlay(frame, mask))))
                    targets += [int(v) for v in t]
                    written += len(batch)
                    bar.update(len(batch))
            bar.close()
        except (BrokenPipeError, OSError) as exc:
            raise OutputError(f"cannot encode video {out}: {_ffmpeg_reason(exc)}") from None
        finally:
            try:
                writer.close()
            except (RuntimeError, OSError) as exc:  # ffmpeg exited with an error
                raise OutputError(f"cannot encode video {out}: {_ffmpeg_reason(exc)}") from None
        if written == 0:
            raise DataError(f"{video_in}: the video has no frames")
        if not tmp.is_file() or tmp.stat().st_size == 0:
            raise OutputError(f"cannot encode video {out}: ffmpeg wrote an empty file")
        os.replace(tmp, out)
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()
    return {"frames": written, "fps": fps, "size": [w, h], "encoded_size": list(size), "targets": targets,
            "out": str(out)}
