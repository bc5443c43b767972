"""The measurements of the model parameter randomisation test (Adebayo et al. 2018, "Sanity checks
for saliency maps"; Quantus calls it MPRT): a method that explains the model must change when the
model is destroyed. ``maskscope.analysis.sanity.sanity_check`` runs the methods through it.

The classifier's parameters are re-drawn from the output down, cascading: each step randomises one
more parametrised module, in the reverse of the order their forward passes start, and the steps
are grouped into a handful of named stages (the head, then blocks from the top; ``cascade_groups``
lists them). At the end of each stage every method explains the same images for the *original*
model's classes again, and its masks are compared with the original masks by Spearman rank
correlation and SSIM (1 = unchanged). Everything happens on a deep copy: the user's model is never
changed, hooked or switched, and the only random numbers are a seeded ``torch.Generator``'s.

Each parameter tensor is re-drawn from a Gaussian with the trained tensor's own mean and standard
deviation, so every layer keeps its activation scale: a destroyed network still gives finite,
non-constant scores and gradients, and a method cannot pass merely because the signal vanished.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from ..blackbox import BlackBox
from ..errors import ConfigError

Groups = list[tuple[str, list[str]]]  # (group name, parameter names), the output's first


# -- the cascade ----------------------------------------------------------------------------------
def _group_name(path: str, own: list[str]) -> str:
    """A block's name: the module path up to its first index (``_blocks.15``, ``blocks.1``), else
    its first component (``_fc``, ``head``); the root's own parameters by their names."""
    if not path:
        return "+".join(own)
    parts = path.split(".")
    for i, part in enumerate(parts):
        if part.isdigit():
            return ".".join(parts[: i + 1])
    return parts[0]


def cascade_groups(blackbox: BlackBox, images: torch.Tensor) -> Groups:
    """The model's parameters as named groups, the output's first: the order of the cascade.

    One forward pass of ``images[:1]`` records the order in which modules start; each parameter
    belongs to the deepest module that ran and holds it (so a module whose weights are read by its
    parent, as ``MultiheadAttention.out_proj``, goes with the parent). Call it on a copy: it hooks
    the model for that one pass (the hooks are removed again).
    """
    model = blackbox.model
    if not isinstance(model, nn.Module) or not any(True for _ in model.parameters()):
        raise ConfigError("the sanity check re-draws the model's weights: it needs a torch module "
                          "with parameters")
    started: dict[str, int] = {}

    def note(path: str) -> Callable:
        def hook(*_: Any) -> None:  # returns None: the input passes unchanged
            started.setdefault(path, len(started))
        return hook

    handles = [module.register_forward_pre_hook(note(path)) for path, module in model.named_modules()]
    try:
        with torch.no_grad(), blackbox.evaluating():
            blackbox(images[:1].to(blackbox.device))
    finally:
        for handle in handles:
            handle.remove()
    units: dict[str, list[str]] = {}
    for name, _ in model.named_parameters():
        owner = max((p for p in started if not p or name.startswith(p + ".")), key=len)
        units.setdefault(owner, []).append(name)
    groups: dict[str, list[str]] = {}
    for path in sorted(units, key=lambda p: -started[p]):
        own = [n[len(path) + 1:] if path else n for n in units[path]]
        groups.setdefault(_group_name(path, own), []).extend(units[path])
    return list(groups.items())


@dataclass(frozen=True)
class Stage:
    """One column of the test: everything from the output down to group ``name`` is randomised."""

    name: str
    parameters: tuple[str, ...]  # every parameter randomised so far, in the order they were re-drawn


def cascade_stages(groups: Groups, stages: int | Sequence[str] = 5) -> list[Stage]:
    """``stages`` evenly spaced cuts of the cascade (the first group alone first, everything last),
    or the named groups, each cut just below it."""
    names = [name for name, _ in groups]
    if isinstance(stages, bool) or not isinstance(stages, (int, Sequence)) or isinstance(stages, str):
        raise ConfigError(f"stages is a count or a list of group names, got {stages!r}")
    if isinstance(stages, int):
        if stages < 1:
            raise ConfigError(f"stages must be at least 1, got {stages}")
        cuts = sorted({int(round(c)) for c in np.linspace(0, len(names) - 1, min(stages, len(names)))})
    else:
        unknown = [s for s in stages if s not in names]
        if unknown or not stages:
            raise ConfigError(f"no parameter group {unknown[0] if unknown else ''!r}; the cascade's groups, "
                              f"output first: {', '.join(names)}")
        cuts = sorted({names.index(s) for s in stages})
    flat = [(i, p) for i, (_, params) in enumerate(groups) for p in params]
    return [Stage(names[c], tuple(p for i, p in flat if i <= c)) for c in cuts]


def randomised_cascade(blackbox: BlackBox, images: torch.Tensor, stages: int | Sequence[str] = 5,
                       seed: int = 0) -> Iterator[tuple[Stage, BlackBox]]:
    """A deep copy of ``blackbox`` as it is (stage ``original``), then the same copy after each stage
    of the cascade: the user's model is never touched. The re-draws come from one generator seeded
    with ``seed``, parameter by parameter in cascade order, so a parameter gets the same values
    whatever the stages."""
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ConfigError(f"seed must be an integer, got {seed!r}")
    copied = copy.deepcopy(blackbox)  # every hook and re-draw touches this copy only
    cuts = cascade_stages(cascade_groups(copied, images), stages)
    assert isinstance(copied.model, nn.Module)  # cascade_groups refused anything else
    parameters = dict(copied.model.named_parameters())
    generator = torch.Generator().manual_seed(seed)
    yield Stage("original", ()), copied
    done = 0
    for stage in cuts:
        for name in stage.parameters[done:]:
            redraw(parameters[name], generator)
        done = len(stage.parameters)
        yield stage, copied


def redraw(parameter: torch.Tensor, generator: torch.Generator) -> None:
    """Re-draw ``parameter`` in place from a Gaussian with its own mean and standard deviation (a
    constant tensor: its magnitude, or 1 for zeros, as the spread)."""
    with torch.no_grad():
        data = parameter.detach().float().cpu()
        mean = float(data.mean())
        std = float(data.std()) if data.numel() > 1 else 0.0
        spread = std if np.isfinite(std) and std > 0 else (abs(mean) or 1.0)
        new = mean + spread * torch.randn(data.shape, generator=generator)
        parameter.copy_(new.to(parameter.device, parameter.dtype))


# -- how much a mask changed ----------------------------------------------------------------------
def _ranks(row: torch.Tensor) -> torch.Tensor:
    """1-based ranks with ties given their average rank (as ``scipy.stats.rankdata``)."""
    _, inverse, counts = torch.unique(row, return_inverse=True, return_counts=True)
    ends = counts.cumsum(0).double()
    return (ends - (counts.double() - 1) / 2)[inverse]


def rank_correlation(a: torch.Tensor, b: torch.Tensor, absolute: bool = False) -> torch.Tensor:
    """Spearman's ρ of each pair of maps (B, ...) → (B,). A constant map holds no ranks: ρ is 1
    when both maps are equal, else 0. ``absolute``: of |a| and |b| (the paper's variant for signed
    maps; the same for masks in [0, 1])."""
    a, b = _pair(a, b, absolute)
    out = []
    for x, y in zip(a, b):
        rx, ry = _ranks(x), _ranks(y)
        rx, ry = rx - rx.mean(), ry - ry.mean()
        norm = float(rx.norm() * ry.norm())
        out.append(float((rx * ry).sum()) / norm if norm > 0 else float(torch.equal(x, y)))
    return torch.tensor(out)


def structural_similarity(a: torch.Tensor, b: torch.Tensor, absolute: bool = False) -> torch.Tensor:
    """SSIM (``skimage.metrics.structural_similarity``, data range 1) of each pair of (B, 1, H, W)
    or (B, H, W) maps in [0, 1] → (B,)."""
    try:
        from skimage.metrics import structural_similarity as ssim
    except ImportError as exc:
        from ..extras import missing_extra

        raise missing_extra(exc) or exc from None
    a, b = _pair(a, b, absolute, flatten=False)
    if min(a.shape[-2:]) < 7:
        raise ConfigError(f"SSIM needs maps of at least 7 × 7 pixels, got {tuple(a.shape[-2:])}")
    return torch.tensor([float(ssim(x.numpy(), y.numpy(), data_range=1.0)) for x, y in zip(a, b)])


def _pair(a: torch.Tensor, b: torch.Tensor, absolute: bool, flatten: bool = True):
    a, b = torch.as_tensor(a).detach().double().cpu(), torch.as_tensor(b).detach().double().cpu()
    if a.shape != b.shape or a.dim() < 2:
        raise ConfigError(f"maps to compare must have one shape (B, ...), "
                          f"got {tuple(a.shape)} and {tuple(b.shape)}")
    if absolute:
        a, b = a.abs(), b.abs()
    if flatten:
        return a.flatten(1), b.flatten(1)
    while a.dim() > 3:  # (B, 1, H, W) → (B, H, W)
        a, b = a[:, 0], b[:, 0]
    return a, b


# -- the result -----------------------------------------------------------------------------------
@dataclass
class SanityResult:
    """Per method: the scores at each stage (S, B) and the masks (S + 1, B, 1, H, W), original first."""

    stages: list[Stage]
    spearman: dict[str, torch.Tensor] = field(default_factory=dict)
    ssim: dict[str, torch.Tensor] = field(default_factory=dict)
    masks: dict[str, torch.Tensor] = field(default_factory=dict)
    agreement: list[float] = field(default_factory=list)  # share still predicting the original class
    # mean mask value (S + 1, B), original first: a mask that went empty changed, but to nothing
    mass: dict[str, torch.Tensor] = field(default_factory=dict)

    @property
    def methods(self) -> list[str]:
        return list(self.spearman)

    def mean(self, score: str = "spearman") -> dict[str, list[float]]:
        """Method → the mean ``spearman`` or ``ssim`` over the images at each stage."""
        table = {"spearman": self.spearman, "ssim": self.ssim}[score]
        return {m: [float(v) for v in table[m].mean(dim=1)] for m in self.methods}

    def to_json(self) -> dict[str, Any]:
        """The stages, the top-1 agreement and per method the per-image scores (no masks)."""
        return {"stages": [s.name for s in self.stages], "agreement": self.agreement,
                "methods": {m: {"spearman": self.spearman[m].tolist(), "ssim": self.ssim[m].tolist(),
                                **({"mass": self.mass[m].tolist()} if m in self.mass else {})}
                            for m in self.methods}}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SanityResult:
        """The scores of ``to_json`` back (stages by name, no masks)."""
        methods = data["methods"]
        return cls([Stage(name, ()) for name in data["stages"]],
                   {m: torch.tensor(v["spearman"]) for m, v in methods.items()},
                   {m: torch.tensor(v["ssim"]) for m, v in methods.items()}, {}, list(data["agreement"]),
                   {m: torch.tensor(v["mass"]) for m, v in methods.items() if "mass" in v})

    def add(self, method: str, masks: Sequence[torch.Tensor]) -> None:
        """Score one method's masks (B, 1, H, W): the original model's first, then one per stage."""
        if len(masks) != len(self.stages) + 1:
            raise ConfigError(f"{method}: expected {len(self.stages) + 1} sets of masks (the original's "
                              f"and one per stage), got {len(masks)}")
        self.masks[method] = torch.stack([torch.as_tensor(m).detach().float().cpu() for m in masks])
        self.mass[method] = self.masks[method].flatten(2).mean(dim=2)
        self.spearman[method] = torch.stack([rank_correlation(masks[0], m) for m in masks[1:]])
        self.ssim[method] = torch.stack([structural_similarity(masks[0], m) for m in masks[1:]])
