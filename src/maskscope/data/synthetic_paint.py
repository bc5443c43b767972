"""How the synthetic scenes look: the class textures, the backgrounds and the colours they are painted in.

The scene layout (which shape goes where) lives in ``synthetic_scenes``; everything here draws from
the generator it is given, so a scene's appearance replays with its seed.
"""

from __future__ import annotations

import numpy as np


def paint(image, mask, texture, rng, yy, xx) -> None:
    """Fill ``mask`` with a two-colour texture: a random bright hue on a dark ground (or the
    reverse), so colour never names a class and every object contrasts with every background."""
    bright = _hsv(rng.random(), rng.uniform(0.6, 1.0), rng.uniform(0.7, 1.0))
    dark = _hsv(rng.random(), rng.uniform(0.3, 1.0), rng.uniform(0.05, 0.25))
    if rng.random() < 0.5:
        bright, dark = dark, bright
    pattern = _texture(texture, rng, yy, xx)
    colours = np.where(pattern[..., None], bright, dark)
    image[mask] = colours[mask]


def _texture(name, rng, yy, xx) -> np.ndarray:
    """Boolean pattern over the whole image (True = first colour); periods of 4-6 pixels."""
    y, x = yy + rng.uniform(0, 8), xx + rng.uniform(0, 8)
    if name == "stripes":  # diagonal
        return ((x + y) / rng.uniform(5.0, 6.5)) % 1.0 < 0.5
    if name == "bands":  # horizontal
        return (y / rng.uniform(4.0, 5.5)) % 1.0 < 0.5
    if name == "checks":
        cell = rng.uniform(2.5, 3.5)
        return (np.floor(x / cell) + np.floor(y / cell)) % 2 == 0
    if name == "dots":
        period = rng.uniform(4.5, 5.5)
        dy, dx = (y % period) - period / 2, (x % period) - period / 2
        return dx**2 + dy**2 > 1.4**2
    if name == "grid":
        period = rng.uniform(4.0, 5.0)
        return ((x % period) >= 1.2) & ((y % period) >= 1.2)
    if name == "speckles":
        return rng.random(yy.shape) < 0.5
    if name == "solid":
        return np.ones(yy.shape, bool)
    raise ValueError(f"unknown texture {name!r}")


def draw_background(rng, name, yy, xx) -> np.ndarray:
    """A muted, low-contrast texture so that objects stand out; (H, W, 3) float32."""
    base = {
        "grass": (0.33, 0.55, 0.26),
        "sand": (0.84, 0.74, 0.55),
        "water": (0.27, 0.45, 0.72),
        "stone": (0.50, 0.50, 0.50),
        "snow": (0.94, 0.95, 0.98),
        "fog": (0.90, 0.91, 0.94),  # snow's mean colour, without its speckles
    }[name]
    h, w = yy.shape
    if name == "grass":  # short vertical blades
        blades = rng.random((h // 4 + 2, w))
        field = np.repeat(blades, 4, axis=0)[rng.integers(4) :][:h] - 0.5
        shade = 0.16 * field + 0.5 * _waves(rng, yy, xx, 0.05)
    elif name == "sand":
        shade = _waves(rng, yy, xx, 0.08) + 0.05 * (rng.random((h, w)) - 0.5)
    elif name == "water":  # horizontal ripples
        phase = rng.uniform(0, 2 * np.pi)
        ripples = np.sin(yy * rng.uniform(0.6, 0.9) + 1.5 * np.sin(xx * 0.15 + phase))
        shade = 0.07 * ripples + _waves(rng, yy, xx, 0.03)
    elif name == "stone":  # irregular blocks
        blocks = rng.random((h // 8 + 2, w // 8 + 2)) - 0.5
        oy, ox = rng.integers(8, size=2)
        field = np.kron(blocks, np.ones((8, 8)))[oy : oy + h, ox : ox + w]
        shade = 0.2 * field + 0.04 * (rng.random((h, w)) - 0.5)
    elif name == "snow":  # sparse grey-blue speckles
        shade = -0.3 * (rng.random((h, w)) < 0.08) + _waves(rng, yy, xx, 0.02)
    else:  # fog: smooth
        shade = _waves(rng, yy, xx, 0.05)
    tint = np.asarray(base, np.float32) * rng.uniform(0.93, 1.05)
    if name == "snow":
        shade = shade[..., None] * np.array([1.0, 0.9, 0.6], np.float32)  # speckles lean blue
    else:
        shade = shade[..., None]
    return np.clip(tint + shade, 0.0, 1.0).astype(np.float32)


def _waves(rng, yy, xx, amplitude: float, count: int = 4) -> np.ndarray:
    """Smooth random field: a sum of a few plane waves with long wavelengths."""
    field = np.zeros(yy.shape, np.float32)
    for _ in range(count):
        angle, freq, phase = rng.uniform(0, np.pi), rng.uniform(0.05, 0.2), rng.uniform(0, 2 * np.pi)
        field += np.sin(freq * (np.cos(angle) * xx + np.sin(angle) * yy) + phase)
    return amplitude * field / count


def _hsv(h: float, s: float, v: float) -> np.ndarray:
    i, f = int(h * 6) % 6, h * 6 - int(h * 6)
    p, q, t = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    return np.array([(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)][i], np.float32)
