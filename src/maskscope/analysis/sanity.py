"""The sanity check of Adebayo et al. (2018) for any registered method: cascading randomisation of
a copy of the classifier (``maskscope.metrics.sanity``), every method's masks at each stage
against its masks of the trained model, and the paper's figure.

The classes explained stay the original model's at every stage: the question is whether the
explanation of the same decision changes when the weights that made it are gone.

A trained masker (``realtime``) is kept fixed while the classifier it explains is randomised: its
frozen encoder *is* the classifier (and a ``classifier-*`` class selector reads the classifier's
last layer), so at each stage it is rebuilt on the randomised copy with its own learned decoder
weights. It then sees the randomised classifier's features, as it would explaining that model; a
masker with its own encoder (``small``) keeps that encoder, which is part of the masker.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import matplotlib
import torch
from torch import nn

from ..blackbox import BlackBox, TargetSpec, as_blackbox
from ..errors import ConfigError
from ..images import image_batch, to_numpy_image
from ..methods import explain_batch, get_spec
from ..methods.realtime import RealTimeMasker, build_masker, load_masker
from ..metrics.sanity import SanityResult, randomised_cascade
from ..target import class_targets
from ..viz import new_figure


def rebind_masker(masker: RealTimeMasker, blackbox: BlackBox) -> RealTimeMasker:
    """The same trained masker on another classifier: its learned weights, that classifier's
    encoder and last layer."""
    with torch.random.fork_rng(devices=[]):  # its initial weights are overwritten at once
        bound = build_masker(blackbox, masker.config)
    bound.load_state_dict(masker.state_dict())
    return bound.eval()


def _method_options(blackbox: BlackBox, names: Sequence[str],
                    options: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each method's options, checked before any work; a masker loaded once for the original."""
    resolved = {}
    for name in names:
        spec = get_spec(name)
        given = dict(options.get(name, {}))
        spec.check_options(given)
        if spec.accepts("scores"):
            given.setdefault("scores", False)  # only the masks are read
        if spec.masker and spec.location is not None and not isinstance(given.get("masker"), RealTimeMasker):
            given["masker"] = load_masker(blackbox, given.get("masker"),
                                          allow_other_classifier=bool(given.get("allow_other_classifier")))
        resolved[name] = given
    return resolved


def _for_stage(options: dict[str, Any], blackbox: BlackBox) -> dict[str, Any]:
    if isinstance(options.get("masker"), RealTimeMasker):
        return {**options, "masker": rebind_masker(options["masker"], blackbox)}
    return options


def sanity_check(
    model: BlackBox | nn.Module,
    images: torch.Tensor,
    targets: TargetSpec = None,
    methods: Sequence[str] = ("gradient",),
    stages: int | Sequence[str] = 5,
    seed: int = 0,
    options: Mapping[str, Mapping[str, Any]] | None = None,
    progress: Callable[[str, str], None] | None = None,
) -> SanityResult:
    """Cascading randomisation of a copy of ``model``; every method's masks against its original ones.

    Args:
        model: the classifier (never changed).
        images: (B, 3, H, W) in [0, 1].
        targets: the classes explained at every stage, resolved on the original model (default: its
            top-1 classes).
        methods: registered method names (``maskscope.methods.METHODS``).
        stages: how many stages (evenly spaced, head first, everything last) or the names of the
            groups to cut below (``maskscope.metrics.sanity.cascade_groups``).
        seed: seeds the generator that re-draws the weights.
        options: method name → its options (a ``realtime`` masker may be given here; the shipped
            one by default).
        progress: called with (stage name, method name) after each set of masks.
    """
    if isinstance(methods, str) or not methods or len(set(methods)) != len(methods):
        raise ConfigError(f"methods is a non-empty list of distinct method names, got {methods!r}")
    original = as_blackbox(model)
    x = image_batch(images).detach().to(original.device, torch.float32)
    original.check_images(x)
    cascade = randomised_cascade(original, x, stages, seed)
    _, copied = next(cascade)  # the copy, not yet randomised: check everything before any work
    with torch.no_grad(), copied.evaluating():
        classes = class_targets(copied, x, targets, "the sanity check")[:, 0]
    per_method = _method_options(copied, methods, options or {})
    runs: dict[str, list[torch.Tensor]] = {m: [] for m in methods}
    result = SanityResult([])

    def explain_all(stage: str) -> None:
        for name in methods:
            runs[name].append(explain_batch(name, copied, x, classes, _for_stage(per_method[name], copied)))
            if progress is not None:
                progress(stage, name)

    explain_all("original")
    for stage, copied in cascade:
        result.stages.append(stage)
        with torch.no_grad(), copied.evaluating():
            result.agreement.append(float((copied(x).argmax(1) == classes.to(x.device)).float().mean()))
        explain_all(stage.name)
    for name, masks in runs.items():
        result.add(name, masks)
    return result


def sanity_figure(result: SanityResult, images: torch.Tensor, index: int = 0):
    """The paper's figure for image ``index``: rows = methods, columns = the image, the original
    mask, then each stage randomised."""
    columns = ["image", "original", *(s.name for s in result.stages)]
    rows = result.methods
    fig = new_figure(figsize=(1.3 * len(columns), 1.3 * len(rows) + 0.4), layout="constrained")
    axes = fig.subplots(len(rows), len(columns), squeeze=False)
    picture = to_numpy_image(image_batch(images)[index])
    for r, method in enumerate(rows):
        for c, title in enumerate(columns):
            ax = axes[r][c]
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.imshow(picture)
                ax.set_ylabel(method, fontsize=8)
            else:
                ax.imshow(result.masks[method][c - 1, index, 0].numpy(), cmap="gray", vmin=0, vmax=1)
            if r == 0:
                ax.set_title(title, fontsize=7, rotation=30)
    return fig


def sanity_plot(result: SanityResult):
    """Mean rank correlation and SSIM against the stage, one line per method (1 at the original)."""
    fig = new_figure(figsize=(12, 4), layout="constrained")
    labels = ["original", *(s.name for s in result.stages)]
    titles = {"spearman": "Spearman rank correlation", "ssim": "SSIM"}
    colours = matplotlib.colormaps["tab20"]  # an integer picks one of its 20 colours
    for ax, (score, title) in zip(fig.subplots(1, 2), titles.items()):
        for i, (method, values) in enumerate(result.mean(score).items()):
            ax.plot(range(len(labels)), [1.0, *values], marker="os^vD"[i % 5], label=method,
                    color=colours((2 * i) % 20 + (2 * i) // 20 % 2))
        ax.set_xticks(range(len(labels)), labels, rotation=35, ha="right", fontsize=8)
        ax.set_ylim(-0.35, 1.05)
        ax.set_title(title)
        ax.set_xlabel("randomised from the output down to")
        ax.axhline(0, color="grey", lw=0.5)
    fig.legend(*fig.axes[0].get_legend_handles_labels(), fontsize=7, loc="outside right center")
    return fig
