"""One explanation for the explorer: run a method on one catalogued image and write its files.

The files are those ``maskscope explain`` writes (``Explanation.save``: ``.npy``, ``_mask.png``,
``_overlay.png``, ``.json``), plus what the page draws: a transparent heat map for the opacity
slider and the deleted / preserved images the scores were measured on.
"""

from __future__ import annotations

import json
import math
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from ..blackbox import BlackBox
from ..errors import ConfigError
from ..files import explain_files
from ..methods import get_spec
from ..methods.extremal import check_areas
from ..methods.optimise import GAMES, MAX_ITERATIONS
from ..outputs import save_explanation
from ..perturb import Blur
from ..storage import safe_name
from .catalog import ImageEntry

TOP_K = 5
VIEW_SIDE = 640  # the deleted / preserved images are shown at most this large


def method_options(method: str, given: dict[str, Any]) -> dict[str, Any]:
    """The page's options checked and kept only where the method takes them (as ``explain``)."""
    spec = get_spec(method)
    unknown = sorted(set(given) - {"iterations", "game", "areas", "seed"})
    if unknown:
        raise ConfigError(f"unknown option {unknown[0]!r}; the explorer takes iterations, game, areas, seed")
    options: dict[str, Any] = {}
    if given.get("iterations") is not None and spec.accepts("iterations"):
        value = given["iterations"]
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_ITERATIONS:
            raise ConfigError(f"iterations must be an integer from 1 to {MAX_ITERATIONS}, got {value!r}")
        options["iterations"] = value
    if given.get("game") and spec.accepts("game"):
        games = spec.games or GAMES
        if given["game"] not in games:
            raise ConfigError(f"unknown game {given['game']!r}; choose one of {', '.join(games)}")
        options["game"] = given["game"]
    if given.get("areas") and spec.accepts("areas"):
        try:
            options["areas"] = list(check_areas([float(a) for a in given["areas"]]))
        except (TypeError, ValueError):
            raise ConfigError(f"areas must be numbers in (0, 1), got {given['areas']!r}") from None
    if given.get("seed") is not None and spec.accepts("seed"):
        if isinstance(given["seed"], bool) or not isinstance(given["seed"], int):
            raise ConfigError(f"seed must be an integer, got {given['seed']!r}")
        options["seed"] = given["seed"]
    return options


def has_shipped_masker(blackbox: BlackBox) -> bool:
    from ..methods.realtime import shipped_masker_path

    return shipped_masker_path(blackbox.name).is_file()


def first_method(blackbox: BlackBox, has_masker: bool) -> dict[str, Any]:
    """What the explain page ticks first: the masker where there is one, else Grad-CAM where the
    model has a layer it can read, else the centre box; and, without a masker, how to train one."""
    if has_masker:
        return {"first": "realtime", "masker": True}
    from ..layers import default_layer

    side = blackbox.input_size or (224, 224)
    try:
        with torch.no_grad():
            default_layer(blackbox, torch.zeros(1, 3, *side, device=blackbox.device))
        first = "gradcam"
    except Exception:  # any model of the user's: the centre box always works
        first = "center"
    return {"first": first, "masker": False}


def cache_key(entry: ImageEntry, method: str, target: int | str, options: dict[str, Any]) -> str:
    """What a result depends on: the image's bytes, the method, the class and the options."""
    return json.dumps([entry.id, method, target, options], sort_keys=True)


@torch.no_grad()
def top_classes(blackbox: BlackBox, entry: ImageEntry, k: int = TOP_K) -> list[dict[str, Any]]:
    """The model's k most probable classes for the image, as the explain page lists them."""
    from ..files import load_files

    images, _, _, failures = load_files([entry.path], blackbox.input_size or (224, 224))
    if failures:
        from ..errors import ImageError

        raise ImageError(failures[0][1])
    with blackbox.evaluating():
        probs = blackbox.probabilities(images[0][None].to(blackbox.device))[0].cpu()
    values, indices = probs.topk(min(k, probs.numel()))
    return [{"index": int(i), "name": blackbox.class_name(int(i)), "p": round(float(v), 6)}
            for v, i in zip(values, indices)]


def run_explanation(blackbox: BlackBox, entry: ImageEntry, method: str, target: int | None,
                    options: dict[str, Any], out: Path, progress=None, masker=None) -> ResultFiles:
    """Explain one image; returns its files, of which only what the page shows first is written.
    ``masker``: the real-time masker, loaded once by the caller rather than on every click."""
    spec = get_spec(method)
    kwargs = dict(options)
    if spec.masker and masker is not None:
        kwargs["masker"] = masker
    if progress is not None and spec.progress:
        kwargs["progress"] = progress
    start = time.perf_counter()
    results = list(explain_files(blackbox, [entry.path], method=method, target=target, **kwargs))
    seconds = time.perf_counter() - start
    failures = [f for r in results for f in r.failures]
    if failures:
        from ..errors import ImageError

        raise ImageError(failures[0][1])
    return ResultFiles(results[0].explanation, entry, out, seconds)


class ResultFiles:
    """The files of one explanation. The mask and heat map the page shows at once are written
    eagerly and small; the files ``explain`` writes (``Explanation.save``: ``.npy``, ``_mask.png``,
    ``_overlay.png``, ``.json``) and the deleted / preserved images are written on their first
    request, so a click on "explain" waits for the method and two small PNGs only."""

    def __init__(self, explanation, entry: ImageEntry, out: Path, seconds: float) -> None:
        self.explanation = explanation
        self.out = out
        self.seconds = seconds
        self.base = safe_name(Path(entry.name).stem, empty="image")
        self._names = {str(entry.path): self.base}
        self._lock = threading.Lock()
        self._saved = self._perturbed_done = False
        out.mkdir(parents=True, exist_ok=True)
        self.rows: list[dict[str, Any]] = []
        for i in range(len(explanation)):
            area = explanation.requested_area
            stem = self.base if area is None else f"{self.base}_area{float(area[i]):g}"
            files = {"mask_npy": f"{stem}.npy", "mask_png": f"{stem}_mask.png",
                     "overlay": f"{stem}_overlay.png", "json": f"{stem}.json",
                     "view": f"{stem}_view.png", "heat": f"{stem}_heat.png",
                     "deleted": f"{stem}_deleted.png", "preserved": f"{stem}_preserved.png"}
            mask = explanation.mask(i).cpu().numpy()
            _view_mask_png(mask, out / files["view"])
            _heat_png(mask, out / files["heat"])
            record = {**explanation.record(i), "image": entry.name}
            self.rows.append({"record": record, "files": files, "size": list(explanation.source_sizes[i])})

    def public(self) -> dict[str, Any]:
        return {"rows": self.rows, "seconds": round(self.seconds, 4), "method": self.explanation.method}

    def path(self, name: str) -> Path | None:
        """The file ``name`` of this result, written now if it was not yet; None if unknown."""
        kinds = {v: k for row in self.rows for k, v in row["files"].items()}
        if name not in kinds:
            return None
        with self._lock:
            if kinds[name] in ("mask_npy", "mask_png", "overlay", "json") and not self._saved:
                save_explanation(self.explanation, self.out, figures=False, names=self._names)
                self._saved = True
            if kinds[name] in ("deleted", "preserved") and not self._perturbed_done:
                deleted, preserved = _perturbed(self.explanation)
                for i, row in enumerate(self.rows):
                    _view_png(deleted[i], row["size"], self.out / row["files"]["deleted"])
                    _view_png(preserved[i], row["size"], self.out / row["files"]["preserved"])
                self._perturbed_done = True
        return self.out / name


@torch.no_grad()
def _perturbed(explanation) -> tuple[torch.Tensor, torch.Tensor]:
    """The image with its salient region deleted, and with only it kept, by the perturbation the
    scores were measured with (``Explanation``'s rule)."""
    pert = explanation.perturbation if explanation.perturbation is not None else Blur()
    s = explanation.masks.to(explanation.images)
    return pert(explanation.images, 1 - s).cpu(), pert(explanation.images, s).cpu()


def _fit(image: Image.Image) -> Image.Image:
    scale = min(1.0, VIEW_SIDE / max(image.size))
    if scale >= 1:
        return image
    return image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))),
                        Image.Resampling.BILINEAR)


def _view_mask_png(mask: np.ndarray, path: Path) -> None:
    """The mask as the page shows it (and thresholds it): grey, at most ``VIEW_SIDE`` a side."""
    image = Image.fromarray((np.clip(mask, 0, 1) * 255 + 0.5).astype(np.uint8), mode="L")
    _fit(image).save(path, compress_level=1)


def _heat_png(mask: np.ndarray, path: Path) -> None:
    """The mask coloured (jet, as ``viz.overlay``) with the mask as alpha: the page lays it over
    the photo and its slider sets the opacity."""
    import matplotlib

    m = np.clip(mask, 0, 1)
    rgba = matplotlib.colormaps["jet"](m)
    rgba[..., 3] = np.clip(m, 0.15, 1)
    _fit(Image.fromarray((rgba * 255 + 0.5).astype(np.uint8), mode="RGBA")).save(path, compress_level=1)


def _view_png(image: torch.Tensor, size: tuple[int, int], path: Path) -> None:
    """A (3, h, w) image at the file's aspect ratio, at most ``VIEW_SIDE`` pixels on a side."""
    from ..images import to_numpy_image

    h, w = size
    scale = min(1.0, VIEW_SIDE / max(h, w))
    target = (max(1, math.floor(w * scale)), max(1, math.floor(h * scale)))
    view = Image.fromarray(to_numpy_image(image)).resize(target, Image.Resampling.BILINEAR)
    view.save(path, compress_level=1)
