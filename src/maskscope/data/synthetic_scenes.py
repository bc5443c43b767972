"""Procedurally generated scenes whose ground truth is known exactly: the synthetic benchmark.

Every scene is a textured background, one object (the class) and one or two distractors. A class
is defined by shape AND texture together: distractors reuse class shapes with other textures, or
class textures on shapes no class has, so neither cue alone names the class.

Variants:

- ``clean``: 5 classes, any class on any of the 6 backgrounds.
- ``spurious``: the clean classes plus a 6th, ``polar bear``, whose object is drawn exactly like a
  ``striped disc`` but which always stands on ``snow``, where no other class ever stands (in both
  splits). Object evidence cannot tell the two apart, so a classifier that separates them must read
  the background: the 'polar bear and snow' case. ``snow`` (fine speckles) and ``fog`` (smooth)
  share their mean colour, so it is the snow *texture*, which blurring destroys, that carries the
  class. Force ``background=`` to swap it away and watch the bear turn into a striped disc.
- ``parts``: 4 classes built from a head (dotted disc or checkered triangle) above a body (striped
  box or grid ellipse), one class per combination, so both parts are needed to name the class;
  ``part_masks`` / ``part_boxes`` give each part's ground truth, ``part_centres`` a keypoint per part
  (the centre of its shape) for the part-saliency test (``maskscope.analysis.parts``).

Each scene is drawn from its own generator seeded by (seed, variant, split, index), so a scene
never depends on how many others are made with it, and forcing the label or background replays the
very same layout.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import torch

from ..errors import ConfigError
from .synthetic_paint import draw_background, paint

VARIANTS = ("clean", "spurious", "parts")
SPLITS = ("train", "test")
BACKGROUNDS = ("grass", "sand", "water", "stone", "snow", "fog")
PART_NAMES = ("head", "body")

# class id -> (name, shape, texture)
CLEAN_CLASSES = (
    ("striped disc", "disc", "stripes"),
    ("checkered square", "square", "checks"),
    ("dotted triangle", "triangle", "dots"),
    ("grid cross", "cross", "grid"),
    ("banded diamond", "diamond", "bands"),
)
SPURIOUS_CLASSES = (*CLEAN_CLASSES, ("polar bear", "disc", "stripes"))
POLAR_BEAR, POLAR_BEAR_LOOKALIKE, SNOW = 5, 0, BACKGROUNDS.index("snow")
# parts classes: (name, (head shape, head texture), (body shape, body texture))
HEADS = (("disc", "dots"), ("triangle", "checks"))
BODIES = (("box", "stripes"), ("ellipse", "grid"))
PARTS_CLASSES = tuple(
    (f"{('dot', 'check')[h]}-head {('stripe', 'grid')[b]}-body", HEADS[h], BODIES[b])
    for h in range(2)
    for b in range(2)
)

CLASS_SHAPES = ("disc", "square", "triangle", "cross", "diamond")
CLASS_TEXTURES = ("stripes", "checks", "dots", "grid", "bands")
DISTRACTOR_SHAPES = ("ring", "bar", "crescent")
DISTRACTOR_TEXTURES = ("solid", "speckles")

OBJECT_SIZE = (18.0, 44.0)  # bounding extent in pixels at size 64, scaled with the image
DISTRACTOR_SIZE = (8.0, 14.0)


@dataclass
class SyntheticSet:
    """A batch of scenes with pixel-exact ground truth. Boxes are [xmin, ymin, xmax, ymax],
    inclusive pixel coordinates, the tightest box around the mask."""

    images: torch.Tensor  # (N, 3, H, W) float in [0, 1]
    labels: torch.Tensor  # (N,) long
    boxes: torch.Tensor  # (N, 4) long
    object_masks: torch.Tensor  # (N, 1, H, W) bool
    distractor_masks: torch.Tensor  # (N, 1, H, W) bool, never touching the object box
    backgrounds: torch.Tensor  # (N,) long, index into background_names
    class_names: list[str]
    background_names: list[str]
    variant: str
    split: str
    seed: int
    part_masks: torch.Tensor | None = None  # (N, P, H, W) bool, parts variant only
    part_boxes: torch.Tensor | None = None  # (N, P, 4) long
    part_names: list[str] | None = None
    part_centres: torch.Tensor | None = None  # (N, P, 2) float (x, y) in pixel indices, parts variant only

    def __len__(self) -> int:
        return self.images.shape[0]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def subset(self, index: slice | list[int] | torch.Tensor) -> SyntheticSet:
        """The scenes at ``index`` (a slice, list of ints or boolean/long tensor)."""
        per_scene = ("images", "labels", "boxes", "object_masks", "distractor_masks", "backgrounds",
                     "part_masks", "part_boxes", "part_centres")
        picked = {k: getattr(self, k)[index] for k in per_scene if getattr(self, k) is not None}
        return replace(self, **picked)


def class_names(variant: str) -> list[str]:
    _check_variant(variant)
    table = {"clean": CLEAN_CLASSES, "spurious": SPURIOUS_CLASSES, "parts": PARTS_CLASSES}[variant]
    return [entry[0] for entry in table]


def make_scenes(
    n: int,
    variant: str = "clean",
    split: str = "train",
    seed: int = 0,
    size: int = 64,
    *,
    label: int | None = None,
    background: int | str | None = None,
) -> SyntheticSet:
    """Generate ``n`` scenes. ``label`` / ``background`` force every scene's class or background
    while keeping everything else of scene i exactly as it would otherwise be (for swap tests)."""
    _check_variant(variant)
    if split not in SPLITS:
        raise ConfigError(f"unknown split {split!r}; choose train or test")
    if n < 0 or size < 32:
        raise ConfigError(f"need n >= 0 and size >= 32, got n={n}, size={size}")
    names = class_names(variant)
    if label is not None and not 0 <= label < len(names):
        raise ConfigError(f"label {label} out of range for the {variant} variant ({len(names)} classes)")
    if isinstance(background, str):
        if background not in BACKGROUNDS:
            raise ConfigError(f"unknown background {background!r}; choose one of {', '.join(BACKGROUNDS)}")
        background = BACKGROUNDS.index(background)
    parts = variant == "parts"
    images = np.zeros((n, size, size, 3), np.float32)
    labels = np.zeros(n, np.int64)
    bgs = np.zeros(n, np.int64)
    objects = np.zeros((n, size, size), bool)
    distractors = np.zeros((n, size, size), bool)
    with_parts = n if parts else 0  # the part arrays are filled for the parts variant only
    part_masks = np.zeros((with_parts, len(PART_NAMES), size, size), bool)
    part_centres = np.zeros((with_parts, len(PART_NAMES), 2), np.float32)
    for i in range(n):
        sequence = np.random.SeedSequence(seed, spawn_key=(VARIANTS.index(variant), SPLITS.index(split), i))
        layout_rng, texture_rng = (np.random.default_rng(s) for s in sequence.spawn(2))
        scene = _scene(layout_rng, texture_rng, variant, size, label, background)
        images[i], labels[i], bgs[i], objects[i], distractors[i] = scene[:5]
        if parts:
            part_masks[i], part_centres[i] = scene[5]
    out = SyntheticSet(
        images=torch.from_numpy(images).permute(0, 3, 1, 2).contiguous(),
        labels=torch.from_numpy(labels),
        boxes=torch.tensor([_box(m) for m in objects], dtype=torch.long).view(n, 4),
        object_masks=torch.from_numpy(objects).unsqueeze(1),
        distractor_masks=torch.from_numpy(distractors).unsqueeze(1),
        backgrounds=torch.from_numpy(bgs),
        class_names=names,
        background_names=list(BACKGROUNDS),
        variant=variant,
        split=split,
        seed=seed,
    )
    if parts:
        out.part_masks = torch.from_numpy(part_masks)
        out.part_boxes = torch.tensor([[_box(p) for p in m] for m in part_masks], dtype=torch.long)
        out.part_boxes = out.part_boxes.view(n, len(PART_NAMES), 4)
        out.part_names = list(PART_NAMES)
        out.part_centres = torch.from_numpy(part_centres)
    return out


# -- one scene ---------------------------------------------------------------------------------------
def _scene(rng, texture_rng, variant, size, force_label, force_background):
    """Draw and render one scene; the draw order is fixed so forced values replay the same layout."""
    num_classes = len(class_names(variant))
    label = int(rng.integers(num_classes))
    bg_draw = rng.random()
    label = label if force_label is None else force_label
    if force_background is not None:
        bg = force_background
    elif variant == "spurious":
        others = [b for b in range(len(BACKGROUNDS)) if b != SNOW]
        bg = SNOW if label == POLAR_BEAR else others[int(bg_draw * len(others))]
    else:
        bg = int(bg_draw * len(BACKGROUNDS))
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    image = draw_background(texture_rng, BACKGROUNDS[bg], yy, xx)
    scale = size / 64.0

    parts = None
    if variant == "parts":
        _, head, body = PARTS_CLASSES[label]
        part_masks, centres = _parts_layout(rng, head, body, yy, xx, scale)
        parts = (part_masks, centres)
        objects = part_masks[0] | part_masks[1]
        for (_, texture), mask in zip((head, body), part_masks):
            paint(image, mask, texture, rng, yy, xx)
    else:
        table = SPURIOUS_CLASSES if variant == "spurious" else CLEAN_CLASSES
        _, shape, texture = table[label]
        extent = rng.uniform(*OBJECT_SIZE) * scale
        objects = _place(rng, shape, extent, yy, xx)
        paint(image, objects, texture, rng, yy, xx)

    distractors = np.zeros_like(objects)
    taken = [_box(objects)]
    for _ in range(1 + int(rng.random() < 0.5)):
        shape, texture = _distractor_kind(rng, variant)
        mask = _place_apart(rng, shape, yy, xx, scale, taken)
        if mask is not None:
            paint(image, mask, texture, rng, yy, xx)
            distractors |= mask
            taken.append(_box(mask))
    noise = texture_rng.normal(0.0, 0.015, image.shape).astype(np.float32)
    image = np.clip(image + noise, 0.0, 1.0)
    return image, label, bg, objects, distractors, parts


def _distractor_kind(rng, variant: str) -> tuple[str, str]:
    """A shape/texture pair that is no class: a class shape with a foreign texture, or a class
    texture on a shape no class has. Parts scenes only use non-part shapes and plain textures, so
    that no stray part can vote for a class."""
    if variant == "parts":
        shape = _pick(rng, (*DISTRACTOR_SHAPES, "cross", "diamond"))
        return shape, _pick(rng, (*DISTRACTOR_TEXTURES, "bands"))
    if rng.random() < 0.5:
        k = int(rng.integers(len(CLASS_SHAPES)))
        textures = [t for t in (*CLASS_TEXTURES, *DISTRACTOR_TEXTURES) if t != CLASS_TEXTURES[k]]
        return CLASS_SHAPES[k], _pick(rng, textures)
    return _pick(rng, DISTRACTOR_SHAPES), _pick(rng, (*CLASS_TEXTURES, *DISTRACTOR_TEXTURES))


def _pick(rng, options):
    return options[int(rng.integers(len(options)))]


# -- geometry ----------------------------------------------------------------------------------------
SHAPES: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    # u, v in [-1, 1] across the shape's bounding extent (v grows downwards)
    "disc": lambda u, v: u**2 + v**2 <= 1.0,
    "square": lambda u, v: (np.abs(u) <= 0.9) & (np.abs(v) <= 0.9),
    "triangle": lambda u, v: (v <= 0.9) & (np.abs(u) <= (v + 1.0) / 2.0),
    "cross": lambda u, v: ((np.abs(u) <= 0.34) & (np.abs(v) <= 1.0))
    | ((np.abs(v) <= 0.34) & (np.abs(u) <= 1.0)),
    "diamond": lambda u, v: np.abs(u) + np.abs(v) <= 1.0,
    "ring": lambda u, v: (u**2 + v**2 <= 1.0) & (u**2 + v**2 >= 0.36),
    "bar": lambda u, v: (np.abs(u) <= 1.0) & (np.abs(v) <= 0.3),
    "crescent": lambda u, v: (u**2 + v**2 <= 1.0) & ((u - 0.45) ** 2 + v**2 >= 0.6),
    "box": lambda u, v: (np.abs(u) <= 1.0) & (np.abs(v) <= 1.0),
    "ellipse": lambda u, v: u**2 + v**2 <= 1.0,
}


def _shape(name, cx, cy, width, height, yy, xx) -> np.ndarray:
    u = (xx + 0.5 - cx) / (width / 2.0)
    v = (yy + 0.5 - cy) / (height / 2.0)
    return SHAPES[name](u, v)


def _place(rng, shape, extent, yy, xx) -> np.ndarray:
    """A shape of random aspect (0.8-1.25) and position, entirely inside the image."""
    size = yy.shape[0]
    aspect = np.sqrt(rng.uniform(0.8, 1.25))
    w, h = min(extent * aspect, size - 2.0), min(extent / aspect, size - 2.0)
    cx = rng.uniform(w / 2 + 1, size - w / 2 - 1)
    cy = rng.uniform(h / 2 + 1, size - h / 2 - 1)
    if shape == "bar" and rng.random() < 0.5:
        w, h = h, w
        cx, cy = cy, cx
    return _shape(shape, cx, cy, w, h, yy, xx)


def _place_apart(rng, shape, yy, xx, scale, taken, tries: int = 40) -> np.ndarray | None:
    """A small shape whose box keeps a 2-pixel gap to every box in ``taken`` (None if no room)."""
    for attempt in range(tries):
        shrink = 1.0 - 0.4 * attempt / tries
        mask = _place(rng, shape, rng.uniform(*DISTRACTOR_SIZE) * scale * shrink, yy, xx)
        box = _box(mask)
        if box[0] >= 0 and all(_apart(box, other, 2) for other in taken):
            return mask
    return None


def _parts_layout(rng, head, body, yy, xx, scale) -> tuple[np.ndarray, np.ndarray]:
    """A body (box or ellipse) with a head centred above it, 1-2 pixels apart: the (head, body)
    masks and their centres (x, y) in pixel indices (a shape centred at c covers pixel c − 0.5)."""
    size = yy.shape[0]
    bw = rng.uniform(22.0, 36.0) * scale
    bh = bw * rng.uniform(0.6, 0.8)
    hs = bw * rng.uniform(0.5, 0.62)
    gap = rng.uniform(1.5, 2.5)
    total = hs + gap + bh
    left = rng.uniform(1.0, size - bw - 1.0)
    top = rng.uniform(1.0, size - total - 1.0)
    hx = left + bw / 2 + rng.uniform(-0.25, 0.25) * (bw - hs)
    head_mask = _shape(head[0], hx, top + hs / 2, hs, hs, yy, xx)
    body_mask = _shape(body[0], left + bw / 2, top + hs + gap + bh / 2, bw, bh, yy, xx)
    centres = np.array([[hx, top + hs / 2], [left + bw / 2, top + hs + gap + bh / 2]], np.float32) - 0.5
    return np.stack([head_mask & ~body_mask, body_mask]), centres


def _box(mask: np.ndarray) -> list[int]:
    """Tightest inclusive [xmin, ymin, xmax, ymax]; [-1, -1, -1, -1] for an empty mask."""
    ys, xs = np.nonzero(mask)
    if ys.size == 0:
        return [-1, -1, -1, -1]
    return [int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())]


def _apart(a, b, gap: int) -> bool:
    return a[2] + gap < b[0] or b[2] + gap < a[0] or a[3] + gap < b[1] or b[3] + gap < a[1]


def _check_variant(variant: str) -> None:
    if variant not in VARIANTS:
        raise ConfigError(f"unknown synthetic variant {variant!r}; choose one of {', '.join(VARIANTS)}")
