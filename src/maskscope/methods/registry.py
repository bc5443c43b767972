"""Every saliency method's spec: what the CLI, the explorer, the evaluation and the analyses need
to know about a method, declared once, so that none of them reads a method's signature.

A spec names where its function lives (imported on first use, so that asking about Grad-CAM does
not import Captum), its games, whether it iterates and stops early by default, whether it takes
areas or a masker, whether it hooks the model, whether the explorer can answer it at once, and
its options with their types (read once from the function's signature, here and nowhere else).
A user's own function becomes a method with ``register_method`` and then runs wherever a built-in
one does.
"""

from __future__ import annotations

import importlib
import inspect
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from functools import cached_property
from typing import Any

import torch
import torch.nn.functional as F

from ..errors import ConfigError
from ..storage import short_hash
from .optimise import GAMES
from .options import OptionType, option_types

# CLI name -> "module:function", imported when the method is first used
LOCATIONS: dict[str, str] = {
    "meaningful": "maskscope.methods.meaningful:meaningful_perturbation",
    "crisp": "maskscope.methods.crisp:crisp_mask",
    "extremal": "maskscope.methods.extremal:extremal_perturbation",
    "realtime": "maskscope.methods.realtime:realtime_saliency",
    "gradient": "maskscope.methods.gradient:gradient",
    "guided-backprop": "maskscope.methods.guided_backprop:guided_backprop",
    "gradcam": "maskscope.methods.gradcam:gradcam",
    "occlusion": "maskscope.methods.occlusion:occlusion",
    "rise": "maskscope.methods.rise:rise",
    "center": "maskscope.evaluate.reference:center_box",
    "full": "maskscope.evaluate.reference:full_image",
}

# what ``maskscope evaluate`` and the quality benchmarks run when no methods are named
DEFAULT_METHODS = (
    "meaningful", "crisp", "gradient", "guided-backprop", "gradcam", "occlusion", "rise", "center",
)
# names a method may not take: the evaluation's ground-truth row
RESERVED = ("gt-boxes",)
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*\Z")  # usable in --methods a,b and --option NAME.KEY=V


@dataclass(frozen=True)
class MethodSpec:
    """What callers need to know about one method. ``function()`` has the built-in call shape
    ``fn(model, images, target=..., **options) -> Explanation``."""

    name: str  # the CLI name
    location: str | None = None  # "module:function" of a built-in
    games: tuple[str, ...] = ()  # the games its ``game`` option takes
    default_game: str | None = None
    iterative: bool = False  # has an optimiser schedule that ``--iterations`` sets
    # the default of its ``early_stop`` option; None: the schedule flags leave it alone (extremal:
    # its penalty grows to the last iteration, so it runs the whole schedule either way)
    early_stop: bool | None = None
    second_stage: str | None = None  # option holding a second stage's iterations (crisp: half)
    areas: bool = False  # takes ``areas`` and may return several masks per image
    masker: bool = False  # needs a trained masker (``--masker``), loaded once by the caller
    hooks_model: bool = False  # reads a layer or hooks modules: must not overlap another forward
    immediate: bool = False  # one forward pass or none: the explorer answers it at once
    progress: bool = False  # takes ``progress`` (a bar, or a callback)
    user_function: Callable | None = field(default=None, compare=False, repr=False)  # a user's own

    def function(self) -> Callable:
        """The method itself (a user's function adapted to the built-in call shape)."""
        if self.user_function is not None:
            return self._adapted
        if self.location is None:
            raise ConfigError(f"method {self.name!r} has no function")
        module_name, attribute = self.location.split(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            from ..extras import missing_extra

            error = missing_extra(exc)
            if error is not None:
                raise type(error)(f"method {self.name!r}: {error}") from None
            raise ConfigError(f"method {self.name!r} is not available: {exc}") from None
        return getattr(module, attribute)

    @cached_property
    def _adapted(self) -> Callable:
        from .own import adapt

        assert self.user_function is not None
        return adapt(self.name, self.user_function)

    @cached_property
    def options(self) -> dict[str, OptionType]:
        """Option name -> type, every parameter after (model, images, target); ``**kwargs``
        takes any key (``"*"``)."""
        raw = self.user_function if self.user_function is not None else self.function()
        try:
            return option_types(inspect.signature(raw))
        except ValueError:  # a callable without a signature: it takes what it takes
            return {"*": OptionType(frozenset({"any"}))}

    def accepts(self, key: str) -> bool:
        """Whether ``key`` is one of its named options (not merely taken by ``**kwargs``)."""
        return key in self.options

    def _known(self, key: str, named_only: bool = False) -> None:
        # (model, images, target) are the call's own arguments, never options, even for ``**kwargs``
        taken = key in self.options or ("*" in self.options and not named_only)
        if not taken or key in ("model", "images", "target"):
            raise ConfigError(f"method {self.name!r} has no option {key!r}")

    def check_options(self, options: Mapping[str, Any], named_only: bool = False) -> None:
        """ConfigError, in one line, for a key the method does not take or a value of the wrong type.
        ``named_only``: a key only ``**kwargs`` would take is refused too."""
        for key, value in options.items():
            self._known(key, named_only)
            kind = self.options.get(key)
            if kind is not None and not kind.accepts(value):
                raise ConfigError(f"method {self.name!r}: option {key!r} takes {kind.describe()}, "
                                  f"got {value!r}")

    def parse_option(self, key: str, text: str) -> Any:
        """The value of ``--option NAME.KEY=TEXT``, read as its type says and checked."""
        self._known(key)
        kind = self.options.get(key, OptionType(frozenset({"any"})))
        value = kind.parse(text)
        self.check_options({key: value})
        return value

    def fingerprint(self) -> str | None:
        """A hash of a user's function's source, so that an evaluation never reuses the masks of
        an edited function; None for a built-in (the cache's version covers those)."""
        if self.user_function is None:
            return None
        try:
            text = inspect.getsource(self.user_function)
        except (OSError, TypeError):  # defined where no source is kept: its name only
            text = _location(self.user_function)
        return short_hash(text, 16)

    def iteration_options(self, iterations: int) -> dict[str, int]:
        """The options ``--iterations N`` sets: the schedule's length (and a second stage's, at half)."""
        if not self.iterative:
            return {}
        out = {"iterations": iterations}
        if self.second_stage is not None:
            out[self.second_stage] = max(1, iterations // 2)
        return out


def _builtin(name: str, **spec: Any) -> MethodSpec:
    return MethodSpec(name, LOCATIONS[name], **spec)


_OPTIMISED: dict[str, Any] = {"games": GAMES, "default_game": "delete", "iterative": True, "progress": True}
BUILTIN: dict[str, MethodSpec] = {s.name: s for s in (
    _builtin("meaningful", **_OPTIMISED, early_stop=True),
    _builtin("crisp", **_OPTIMISED, early_stop=False, second_stage="crisp_iterations"),
    _builtin("extremal", **{**_OPTIMISED, "games": (*GAMES, "dual"), "default_game": "preserve"}, areas=True),
    _builtin("realtime", masker=True, immediate=True, progress=True),
    _builtin("gradient"),
    _builtin("guided-backprop", hooks_model=True),
    _builtin("gradcam", hooks_model=True),
    _builtin("occlusion"),
    _builtin("rise"),
    _builtin("center", immediate=True),
    _builtin("full", immediate=True),
)}
# every method by CLI name: the built-ins, then the user's own (``register_method``)
METHODS: dict[str, MethodSpec] = dict(BUILTIN)


def get_spec(name: str) -> MethodSpec:
    """The spec registered under ``name``; ConfigError for an unknown name."""
    if name not in METHODS:
        raise ConfigError(f"unknown method {name!r}; choose one of {', '.join(METHODS)}")
    return METHODS[name]


def get_method(name: str) -> Callable:
    """The method function registered under ``name``; ConfigError for an unknown name."""
    return get_spec(name).function()


def as_spec(method: str | MethodSpec | Callable) -> MethodSpec:
    """A name, a spec or a function as a spec: a built-in's function is its spec, any other
    function an unregistered one of its own."""
    if isinstance(method, MethodSpec):
        return method
    if isinstance(method, str):
        return get_spec(method)
    if not callable(method):
        raise ConfigError(f"a method is a name or a function, got {method!r}")
    for spec in METHODS.values():
        if spec.user_function is method or spec.location == _location(method):
            return spec
    return _user_spec(getattr(method, "__name__", "method"), method, {})


def method_name(method: str | Callable) -> str:
    """The registered name of ``method``; a function not yet registered is, under its own name."""
    if isinstance(method, str):
        return method
    spec = as_spec(method)
    if spec.name not in METHODS or METHODS[spec.name] is not spec:
        spec = register_method(spec.name, method)
    return spec.name


def register_method(name: str, function: Callable, *, replace: bool = False, **spec: Any) -> MethodSpec:
    """Make ``function(model, images, target) -> masks or Explanation`` the method ``name``.

    It then runs wherever a built-in does: ``explain_files``, ``evaluate``, the explorer, and the
    CLI's ``--method`` in this process. ``spec`` sets the other ``MethodSpec`` fields (``games``,
    ``iterative``, ``immediate``, ...); ``progress`` is read from the signature. A built-in's name
    is refused unless ``replace=True``; registering a user name again replaces it. ``model`` is the
    ``BlackBox``, ``target`` the resolved classes ((B,) class indices; (B, K) for top-K) and the
    masks (B, 1, h, w) or (B, h, w) in [0, 1] with 1 = salient, resized to the images if smaller.
    """
    if not isinstance(name, str) or not NAME.match(name) or name in RESERVED:
        raise ConfigError(f"a method name is letters, digits, '-' and '_' (not {', '.join(RESERVED)}), "
                          f"got {name!r}")
    if name in BUILTIN and not replace:
        raise ConfigError(f"{name!r} is a built-in method; choose another name or pass replace=True")
    if not callable(function):
        raise ConfigError(f"method {name!r}: expected a function (model, images, target), got {function!r}")
    METHODS[name] = made = _user_spec(name, function, spec)
    return made


def unregister_method(name: str) -> None:
    """Forget a user's method; a replaced built-in comes back."""
    if name in BUILTIN:
        METHODS[name] = BUILTIN[name]
    else:
        METHODS.pop(name, None)


def _user_spec(name: str, function: Callable, spec: dict[str, Any]) -> MethodSpec:
    allowed = {f.name for f in fields(MethodSpec)} - {"name", "location", "user_function"}
    unknown = sorted(set(spec) - allowed)
    if unknown:
        raise ConfigError(f"method {name!r}: no spec field {unknown[0]!r}; "
                          f"choose from {', '.join(sorted(allowed))}")
    from .own import check_function

    check_function(name, function)
    made = MethodSpec(name, user_function=function, **spec)
    if "progress" not in spec:
        made = MethodSpec(name, user_function=function, **{**spec, "progress": "progress" in made.options})
    return made


def _location(function: Callable) -> str:
    return f"{getattr(function, '__module__', '')}:{getattr(function, '__name__', '')}"


# -- one mask per image ---------------------------------------------------------------------------
def call_method(method: str | MethodSpec | Callable, model, images: torch.Tensor, targets,
                options: Mapping[str, Any] | None = None, progress: Any = False,
                function: Callable | None = None):
    """The method's ``Explanation`` of one batch; ``progress`` reaches a method that takes it.
    ``function``: the method's function as the caller looked it up, when not the spec's own."""
    spec = as_spec(method)
    kwargs = dict(options or {})
    if spec.progress:
        kwargs["progress"] = progress
    return (function or spec.function())(model, images, target=targets, **kwargs)


def per_image_masks(explanation, size: Sequence[int]) -> torch.Tensor:
    """(B, 1, *size) masks in [0, 1] on the CPU, one per input image: several masks of one image
    (extremal's areas) are combined, as pointing and localisation read them."""
    masks = explanation.masks.detach().float()
    if explanation.image_index is not None:
        from ..masks import combine_areas

        masks = combine_areas(explanation).float()
    if masks.shape[-2:] != tuple(size):
        masks = F.interpolate(masks, size=tuple(size), mode="bilinear", align_corners=False)
    return masks.clamp(0, 1).cpu()


def per_image_iterations(explanation, count: int) -> list[float] | None:
    """The optimiser iterations each input image's mask took (the mean over its rows), if counted."""
    used = explanation.iterations_used
    if used is None:
        return None
    index = explanation.image_index if explanation.image_index is not None else torch.arange(len(used))
    return [float(used[index == i].float().mean()) for i in range(count)]


def explain_batch(method: str | MethodSpec | Callable, model, images: torch.Tensor, targets,
                  options: Mapping[str, Any] | None = None, progress: Any = False) -> torch.Tensor:
    """One mask per image, (B, 1, H, W) in [0, 1] at the images' size, from any method."""
    explanation = call_method(method, model, images, targets, options, progress)
    return per_image_masks(explanation, images.shape[-2:])
