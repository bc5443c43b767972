"""Helpers shared by the benchmark scripts (demo photos at the model's input size, timing)."""

from __future__ import annotations

import time

import torch

from maskscope.data.photos import demo_photos
from maskscope.evaluate.tables import pipe_table
from maskscope.images import resize_image, to_tensor


def demo_batch(size: tuple[int, int] = (224, 224)) -> tuple[list[str], torch.Tensor]:
    photos = demo_photos()
    return list(photos), torch.stack([resize_image(to_tensor(a[..., :3]), size) for a in photos.values()])


def timed(fn, repeat: int = 1) -> float:
    """Best wall-clock seconds of ``repeat`` calls (after one warm-up call)."""
    fn()
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def markdown_table(header: list[str], rows: list[list]) -> str:
    lines = pipe_table(header, rows)
    return "\n".join(lines)
