"""Explain a video frame by frame with a trained masker — the application Dabkowski & Gal's
conclusion proposes: one masker forward pass per frame is fast enough to follow a video stream.

Frames are decoded and encoded by the ffmpeg binary that ``imageio-ffmpeg`` bundles (no system
ffmpeg needed); they are explained in batches and written as a heat-map overlay video.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from .blackbox import BlackBox, TargetSpec
from .errors import ConfigError, DataError, OutputError
from .images import to_tensor
from .methods.realtime import RealTimeMasker
from .methods.realtime.validate import predict_masks


def _ffmpeg():
    try:
        import imageio_ffmpeg
    except ImportError:
        raise ConfigError("video needs imageio-ffmpeg: pip install 'maskscope[video]'") from None
    return imageio_ffmpeg


def read_video(path: str | os.PathLike) -> tuple[dict, Iterator[np.ndarray]]:
    """(metadata with 'size' (W, H), 'fps', 'frames' (estimate)), iterator of (H, W, 3) uint8 frames."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such video file")
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

    def frames() -> Iterator[np.ndarray]:
        try:
            for raw in reader:
                yield np.frombuffer(raw, dtype=np.uint8).reshape(h, w, 3).copy()
        except (RuntimeError, OSError) as exc:
            raise DataError(f"{path}: video is corrupt ({str(exc).strip()[:160]})") from None

    return meta, frames()


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
) -> dict:
    """Write an overlay video of the masker's masks; returns frame count, fps and the target of
    each frame. ``target=None`` explains each frame's own top-1 class."""
    from .viz import overlay

    meta, frames = read_video(video_in)
    out = Path(video_out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create {out.parent}: {exc.strerror or exc}") from None
    fps = float(meta.get("fps") or 25.0)
    w, h = meta["size"]
    writer = _ffmpeg().write_frames(str(out), (w, h), fps=fps, macro_block_size=1, quality=7)
    written, targets = 0, []
    try:
        writer.send(None)
        bar = tqdm(total=meta.get("frames"), desc="frames", unit="frame", disable=not progress)
        with blackbox.evaluating():
            for batch in _batches(frames, batch_size):
                x = torch.stack([to_tensor(f) for f in batch]).to(blackbox.device)
                t = blackbox.resolve_targets(x, target)[:, 0]
                masks = predict_masks(masker, x, t, batch_size)
                for frame, mask in zip(batch, masks[:, 0].numpy()):
                    writer.send(np.ascontiguousarray(overlay(frame, mask)))
                targets += [int(v) for v in t]
                written += len(batch)
                bar.update(len(batch))
        bar.close()
    except BrokenPipeError:
        raise OutputError(f"cannot write video {out}") from None
    finally:
        writer.close()
    if written == 0:
        out.unlink(missing_ok=True)
        raise DataError(f"{video_in}: the video has no frames")
    return {"frames": written, "fps": fps, "size": [w, h], "targets": targets, "out": str(out)}
