"""Is one part more salient than another? Fong & Vedaldi's part-saliency test (2017, §5.4).

For every keypoint of a part (an eye, a foot), take the mask's mean in a 5 × 5 window around it
(5 px at 224 × 224, scaled with the image's short side like every pixel quantity here, kept odd);
a part's value in an image is the mean over its keypoints. Over the images that have both parts,
a paired t-test (``scipy.stats.ttest_rel``) gives the mean difference, its confidence interval and
a p-value; the Wilcoxon signed-rank p-value is reported beside it for skewed differences.

Masks are salient masks here (1 = salient), so a *positive* difference A − B means A is the more
salient part. (The paper's keep-masks run the other way: lower meant more salient.)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch

from ..errors import ConfigError, DataError
from ..perturb import pixel_scale

WINDOW = 5  # pixels at 224 × 224 (the paper's window)
MIN_PAIRS = 3  # fewest images with both parts for a paired test

Keypoints = Mapping[str, Sequence[Sequence[float]]]  # part name → [(x, y), ...] in mask pixels


def window_side(size: tuple[int, ...], window: float = WINDOW) -> int:
    """The window's side in pixels for masks of this (…, H, W) size: ``window`` scaled by
    min(H, W) / 224 and rounded to the nearest odd integer ≥ 1 (so it centres on the keypoint)."""
    side = window * pixel_scale(size)
    return max(1, 2 * math.floor((side - 1) / 2 + 0.5) + 1)


def window_mean(mask: torch.Tensor, x: float, y: float, side: int) -> float:
    """Mean of a (H, W) mask over the side × side window centred on the pixel nearest (x, y),
    cut to the image at its edges. A point outside the image is a DataError."""
    h, w = mask.shape[-2:]
    if not (-0.5 <= x < w - 0.5 and -0.5 <= y < h - 0.5):
        raise DataError(f"keypoint ({x:g}, {y:g}) lies outside the {w}x{h} mask")
    cx, cy = int(math.floor(x + 0.5)), int(math.floor(y + 0.5))
    r = side // 2
    patch = mask.reshape(h, w)[max(cy - r, 0) : cy + r + 1, max(cx - r, 0) : cx + r + 1]
    return float(patch.double().mean())


def part_intensities(mask: torch.Tensor, keypoints: Keypoints, side: int | None = None) -> dict[str, float]:
    """Each part's mean window intensity over its keypoints (parts without points are left out)."""
    side = side or window_side(mask.shape)
    return {part: float(np.mean([window_mean(mask, x, y, side) for x, y in points]))
            for part, points in keypoints.items() if len(points)}


def scale_keypoints(keypoints: Keypoints, from_size: tuple[int, int], to_size: tuple[int, int]) -> dict:
    """Keypoints of an (H, W) ``from_size`` image in the pixels of a ``to_size`` one (pixel centres
    map to pixel centres, as boxes' edges do in ``boxes.scale_box``)."""
    sy, sx = to_size[0] / from_size[0], to_size[1] / from_size[1]
    return {part: [((x + 0.5) * sx - 0.5, (y + 0.5) * sy - 0.5) for x, y in points]
            for part, points in keypoints.items()}


@dataclass
class PairedTest:
    """A paired comparison of part A's and part B's intensity over the images having both."""

    part_a: str
    part_b: str
    n: int
    mean_a: float
    mean_b: float
    mean_difference: float  # A − B; > 0: A is more salient
    ci_low: float
    ci_high: float
    confidence: float
    t: float
    p_value: float  # two-sided paired t-test
    wilcoxon_p: float | None  # two-sided Wilcoxon signed-rank (None when every difference is 0)

    def as_dict(self) -> dict:
        return asdict(self)


def paired_test(a: Sequence[float], b: Sequence[float], part_a: str = "A", part_b: str = "B",
                confidence: float = 0.95) -> PairedTest:
    """Paired t-test of ``a`` against ``b`` (same images, same order) with a t confidence interval
    of the mean difference, plus the Wilcoxon signed-rank p-value."""
    from scipy import stats

    x, y = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise ConfigError(f"paired values must be two lists of the same length, got {x.shape} and {y.shape}")
    if len(x) < MIN_PAIRS:
        raise DataError(f"too few images for a paired test of {part_a!r} vs {part_b!r}: {len(x)} have both "
                        f"parts, at least {MIN_PAIRS} are needed")
    if not 0.0 < confidence < 1.0:
        raise ConfigError(f"confidence must be in (0, 1), got {confidence}")
    d = x - y
    n = len(d)
    half = stats.t.ppf((1 + confidence) / 2, n - 1) * d.std(ddof=1) / math.sqrt(n)
    if not d.any():  # identical values: no difference at all (SciPy would answer nan)
        t, p, wilcoxon_p = 0.0, 1.0, None
    else:
        test = stats.ttest_rel(x, y)
        t, p = float(test.statistic), float(test.pvalue)
        wilcoxon_p = float(stats.wilcoxon(x, y).pvalue)
    return PairedTest(part_a, part_b, n, float(x.mean()), float(y.mean()), float(d.mean()),
                      float(d.mean() - half), float(d.mean() + half), confidence, t, p, wilcoxon_p)


def compare_parts(masks: torch.Tensor, keypoints: Sequence[Keypoints], part_a: str, part_b: str,
                  side: int | None = None, confidence: float = 0.95) -> tuple[PairedTest, list[dict]]:
    """Test part A against part B on (N, 1, H, W) masks with one keypoint dict per mask (in mask
    pixels). Returns the test and each image's values (None for a part it lacks)."""
    if part_a == part_b:
        raise ConfigError(f"compare two different parts, got {part_a!r} twice")
    if masks.shape[0] != len(keypoints):
        raise ConfigError(f"{masks.shape[0]} masks but {len(keypoints)} keypoint sets")
    for part in (part_a, part_b):
        if not any(len(kp.get(part, ())) for kp in keypoints):
            present = sorted({p for kp in keypoints for p, pts in kp.items() if len(pts)})
            raise DataError(f"no image has keypoints of part {part!r} (parts present: "
                            f"{', '.join(present) or 'none'})")
    side = side or window_side(masks.shape)
    rows = []
    for mask, kp in zip(masks, keypoints):
        values = part_intensities(mask[0], {p: kp.get(p, ()) for p in (part_a, part_b)}, side)
        rows.append({part_a: values.get(part_a), part_b: values.get(part_b)})
    pairs = [(r[part_a], r[part_b]) for r in rows]
    both = [(va, vb) for va, vb in pairs if va is not None and vb is not None]
    test = paired_test([va for va, _ in both], [vb for _, vb in both], part_a, part_b, confidence)
    return test, rows


def markdown(tests: Mapping[str, PairedTest], side: int, title: str = "Part saliency") -> str:
    """One row per method: means, mean difference with its CI, t, p (t-test) and Wilcoxon p."""
    first = next(iter(tests.values()))
    a, b = first.part_a, first.part_b
    lines = [
        f"# {title}: {a} vs {b}",
        "",
        f"Mean salient-mask intensity (1 = salient) in a {side}x{side} window around each keypoint; "
        f"paired over the images having both parts. Difference = {a} − {b} (> 0: {a} more salient).",
        "",
        f"| method | images | mean {a} | mean {b} | difference | {100 * first.confidence:g} % CI | t "
        "| p (paired t) | p (Wilcoxon) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for method, t in tests.items():
        w = "–" if t.wilcoxon_p is None else f"{t.wilcoxon_p:.2g}"
        lines.append(f"| {method} | {t.n} | {t.mean_a:.3f} | {t.mean_b:.3f} | {t.mean_difference:+.3f} | "
                     f"[{t.ci_low:+.3f}, {t.ci_high:+.3f}] | {t.t:.2f} | {t.p_value:.2g} | {w} |")
    return "\n".join(lines) + "\n"
