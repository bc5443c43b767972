"""Training data for the masker: image folders (optionally annotated), held in memory as uint8.

A folder may carry ``annotations.json`` mapping each file name to ``class_index`` (and ``boxes``,
in the stored pixels) — the format of the shared ImageNet samples. Files without a label get the
black box's own top-1 prediction as class selector (see ``fill_labels``).

Images are decoded once and kept as a (N, 3, S, S) uint8 tensor (on the training device when it is
a GPU): on a small set that removes all loader overhead, and random crops / flips are then one
batched ``grid_sample`` on the device.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ...blackbox import BlackBox
from ...data.folders import read_annotations_json
from ...errors import DataError, MaskscopeError
from ...images import list_images, load_image, resize_image, to_tensor


@dataclass
class Sample:
    path: str
    label: int | None = None
    boxes: list[list[float]] = field(default_factory=list)  # in the stored file's pixels
    size: tuple[int, int] | None = None  # (H, W) of the stored file, when annotated


def read_folder(folder: str | os.PathLike) -> list[Sample]:
    """The images directly inside ``folder`` (or its ``images/`` subfolder, the layout of the shared
    samples), with labels / boxes from ``folder/annotations.json`` when present."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: no such data folder")
    files = list_images(folder)
    if not files and (folder / "images").is_dir():
        files = list_images(folder / "images")
    if not files:
        raise DataError(f"{folder}: no images found (looked for .jpg, .png, ... files)")
    notes: dict = {}
    ann = folder / "annotations.json"
    if ann.is_file():
        try:
            notes = read_annotations_json(ann)
        except (OSError, ValueError) as exc:
            raise DataError(f"{ann}: not valid JSON ({exc})") from None
        if not isinstance(notes, dict):
            raise DataError(f"{ann}: expected an object mapping file names to annotations")
    samples = []
    for f in files:
        entry = notes.get(f.name, {})
        where = f"{ann}: entry {f.name!r}"
        if not isinstance(entry, dict):
            raise DataError(f"{where}: expected an object, got {type(entry).__name__}")
        label = _whole(entry, "class_index", where, 0)
        height, width = _whole(entry, "height", where, 1), _whole(entry, "width", where, 1)
        boxes = entry.get("boxes", [])
        if not isinstance(boxes, list):
            raise DataError(f"{where}: 'boxes' must be a list of [xmin, ymin, xmax, ymax]")
        size = (height, width) if height is not None and width is not None else None
        samples.append(Sample(str(f), label, list(boxes), size))
    return samples


def _whole(entry: dict, key: str, where: str, minimum: int) -> int | None:
    """``entry[key]`` as an integer ≥ ``minimum``, None when absent; a string, a float or -1 (which
    would silently mean "use the model's top-1") is a DataError."""
    value = entry.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise DataError(f"{where}: {key!r} must be an integer of at least {minimum}, got {value!r}")
    return value


def load_pixels(samples: list[Sample], size: int, progress: bool = True) -> tuple[torch.Tensor, list[Sample]]:
    """Decode and resize (whole image, no crop) every sample to size×size uint8; unreadable files
    are skipped with a warning. Returns (pixels (N, 3, S, S) uint8, the samples kept)."""
    kept, arrays = [], []
    for s in tqdm(samples, desc="loading images", disable=not progress, leave=False):
        try:
            image = resize_image(to_tensor(load_image(s.path)), (size, size))
        except MaskscopeError as exc:
            warnings.warn(f"skipping {exc}", stacklevel=2)
            continue
        arrays.append((image * 255 + 0.5).clamp(0, 255).to(torch.uint8))
        kept.append(s)
    if not arrays:
        raise DataError("none of the training images could be read")
    return torch.stack(arrays), kept


@torch.no_grad()
def fill_labels(
    blackbox: BlackBox,
    pixels: torch.Tensor,
    samples: list[Sample],
    batch_size: int = 64,
) -> torch.Tensor:
    """Labels (N,): the annotated class, else the black box's own top-1 prediction on the image."""
    labels = torch.tensor([s.label if s.label is not None else -1 for s in samples], dtype=torch.long)
    missing = (labels < 0).nonzero()[:, 0]
    with blackbox.evaluating():
        for i in range(0, len(missing), batch_size):
            idx = missing[i : i + batch_size]
            x = pixels[idx.to(pixels.device)].to(blackbox.device).float() / 255
            labels[idx] = blackbox(x).argmax(1).cpu()
    if int(labels.max()) >= blackbox.num_classes:
        raise DataError(
            f"a label is {int(labels.max())} but the classifier has {blackbox.num_classes} classes"
        )
    return labels


def augment(
    pixels: torch.Tensor,
    out_size: int,
    generator: torch.Generator,
    min_scale: float = 0.55,
    colour_jitter: float = 0.0,
) -> torch.Tensor:
    """Random square crops (side ∈ [√min_scale, 1] of the image) at random positions, random
    horizontal flips, resized to out_size: float images in [0, 1].

    ``colour_jitter`` > 0 also scales brightness, contrast and saturation by random factors in
    1 ± colour_jitter (one draw per image; the class, hence the selector, is unchanged). All draws
    come from ``generator``, so a resumed run repeats them exactly."""
    b = pixels.shape[0]
    dev = pixels.device
    x = pixels.float() / 255
    side = torch.empty(b, device=dev).uniform_(min_scale**0.5, 1.0, generator=generator)
    cx = (torch.rand(b, device=dev, generator=generator) * 2 - 1) * (1 - side)
    cy = (torch.rand(b, device=dev, generator=generator) * 2 - 1) * (1 - side)
    flip = torch.where(torch.rand(b, device=dev, generator=generator) < 0.5, -1.0, 1.0)
    theta = torch.zeros(b, 2, 3, device=dev)
    theta[:, 0, 0] = side * flip
    theta[:, 0, 2] = cx
    theta[:, 1, 1] = side
    theta[:, 1, 2] = cy
    grid = F.affine_grid(theta, [b, 3, out_size, out_size], align_corners=False)
    out = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    if colour_jitter > 0:
        factors = 1 + (torch.rand(3, b, 1, 1, 1, device=dev, generator=generator) * 2 - 1) * colour_jitter
        brightness, contrast, saturation = factors
        out = out * brightness
        out = (out - out.mean(dim=(1, 2, 3), keepdim=True)) * contrast + out.mean(dim=(1, 2, 3), keepdim=True)
        grey = (out * out.new_tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
        out = (out - grey) * saturation + grey
    return out.clamp(0, 1)


def class_vocabulary(blackbox: BlackBox) -> dict[str, int]:
    """Folder names that denote a class of ``blackbox``: its index ("417"), its full name and first
    synonym, and, for a classifier with the 1000 ImageNet classes, the WordNet id (``n01440764``)."""
    vocabulary: dict[str, int] = {str(i): i for i in range(int(blackbox.num_classes))}
    for i, names in enumerate(blackbox.class_names or []):
        vocabulary.setdefault(names, i)
        vocabulary.setdefault(names.split(",")[0].strip(), i)
    from ...zoo import imagenet_classes

    imagenet = imagenet_classes()
    if blackbox.class_names is not None and list(blackbox.class_names) == [n for _, n in imagenet]:
        vocabulary.update({wnid: i for i, (wnid, _) in enumerate(imagenet)})
    return vocabulary


def read_class_folders(folder: str | os.PathLike, vocabulary: dict[str, int]) -> list[Sample]:
    """The ImageFolder layout of full ImageNet (``train/<wnid>/*.JPEG``): one subfolder per class,
    the label read from the subfolder's name through ``vocabulary`` (see ``class_vocabulary``).

    DataError naming the first subfolders that are not classes, rather than guessing labels."""
    folder = Path(folder)
    subfolders = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    classed = [(p, list_images(p)) for p in subfolders]
    classed = [(p, files) for p, files in classed if files]
    if not classed:
        raise DataError(f"{folder}: no images found, neither directly inside nor in class subfolders")
    unknown = [p.name for p, _ in classed if p.name not in vocabulary]
    if unknown:
        shown = ", ".join(repr(n) for n in unknown[:3])
        shown += f" and {len(unknown) - 3} more" if len(unknown) > 3 else ""
        raise DataError(
            f"{folder}: subfolder {shown} is not a class of the classifier (name the class folders by "
            "WordNet id such as n01440764, class name, or class index)"
        )
    return [Sample(str(f), vocabulary[p.name]) for p, files in classed for f in files]


def read_training_data(folder: str | os.PathLike, blackbox: BlackBox) -> list[Sample]:
    """Training images of ``folder``: a flat (optionally annotated) folder as ``read_folder`` reads
    it, or, when it holds no images itself, the ImageFolder layout (``read_class_folders``)."""
    folder = Path(folder)
    if folder.is_dir() and not list_images(folder) and not (folder / "images").is_dir():
        return read_class_folders(folder, class_vocabulary(blackbox))
    return read_folder(folder)
