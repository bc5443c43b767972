"""Shared fixtures: tiny classifiers whose right answer is known analytically."""

from __future__ import annotations

import pytest
import torch
from torch import nn

SIZE = 64


def checkerboard(size: int = SIZE, period: int = 8) -> torch.Tensor:
    ys, xs = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    return (((ys // (period // 2)) + (xs // (period // 2))) % 2).float()


class QuadrantClassifier(nn.Module):
    """Two classes; class 0's logit is the correlation of the TOP-LEFT quadrant (less a 4 px margin)
    with a fine checkerboard. Blur, a constant fill or noise all destroy that correlation, so the only
    region that matters (for deletion and for preservation) is the top-left quadrant."""

    def __init__(self, size: int = SIZE) -> None:
        super().__init__()
        template = checkerboard(size) - 0.5
        weight = torch.zeros(1, 3, size, size)
        inner = slice(size // 16, size // 2 - size // 16)  # a margin, so smooth masks fit inside
        weight[:, :, inner, inner] = template[inner, inner]
        self.register_buffer("weight", weight / weight.abs().sum() * 40.0)
        self.scale = nn.Parameter(torch.tensor(1.0))
        self.bias = nn.Parameter(torch.tensor(-3.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        corr = ((x - 0.5) * self.weight).flatten(1).sum(1)
        logit0 = self.scale * corr + self.bias
        return torch.stack([logit0, torch.zeros_like(logit0)], dim=1)


def quadrant_images(n: int = 1, seed: int = 0) -> torch.Tensor:
    """The checkerboard everywhere (so a mask must learn that only one quadrant matters)."""
    gen = torch.Generator().manual_seed(seed)
    board = checkerboard()
    images = board.expand(n, 3, SIZE, SIZE).clone() * 0.8 + 0.1
    return (images + 0.03 * torch.randn(images.shape, generator=gen)).clamp(0, 1)


@pytest.fixture
def one_thread():
    """Tiny models on a shared CPU: more torch threads only add synchronisation overhead."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def quadrant_model() -> QuadrantClassifier:
    return QuadrantClassifier().eval()


# 16×16 mask grid on 64 px images; smoothing and jitter scale with the size by themselves. The
# L1 weight is raised from the paper's 1e-4 because this toy's score saturates.
TINY_SETTINGS = dict(iterations=80, mask_scale=4, l1=0.01 * 256 / 784)  # 0.01 per cell of the 16×16 grid
