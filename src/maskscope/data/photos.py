"""The demo photos: offline images shipped by scikit-image and scikit-learn (no download).

The demo command and the benchmarks explain the same photos, so they live here, not in the CLI.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import ConfigError
from ..extras import install_hint


def demo_photos() -> dict[str, np.ndarray]:
    """name → (H, W, 3) uint8 RGB: chelsea, coffee, rocket, astronaut, motorcycle, china, flower."""
    try:
        from skimage import data
        from sklearn.datasets import load_sample_images
    except ImportError as exc:
        raise ConfigError(
            f"the demo needs scikit-image and scikit-learn ({install_hint('demo')}): {exc}"
        ) from None
    photos = {
        "chelsea": data.chelsea(),
        "coffee": data.coffee(),
        "rocket": data.rocket(),
        "astronaut": data.astronaut(),
        "motorcycle": data.stereo_motorcycle()[0],
    }
    sample = load_sample_images()
    for name, image in zip(sample.filenames, sample.images):
        photos[Path(name).stem] = image
    return photos
