"""The black box: any classifier, queried (and differentiated) only through its input.

Every method in maskscope works on images in [0, 1] with shape (B, 3, H, W). The wrapper owns the
model's own preprocessing (resize to its input size, convert channels, normalise, cast to the
model's dtype) and reads whatever the model returns (a tensor, an object with ``.logits``, a tuple,
a dict; logits or probabilities) as float32 logits (B, C), so that methods never need to know which
model they explain.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .classes import class_list, model_class_names
from .errors import ConfigError, MaskscopeError, ModelError, NonFiniteError, TargetError
from .fingerprint import modules_behind
from .target import TargetSpec as TargetSpec
from .target import check_target, class_targets, scalar_target

OUTPUTS = ("auto", "logits", "probabilities", "log_probabilities")
LUMINANCE = (0.299, 0.587, 0.114)  # ITU-R BT.601: RGB images → a 1-channel model's grey input


class BlackBox(nn.Module):
    """Wrap a classifier mapping a normalised image batch to class scores (B, C).

    Args:
        model: any callable or ``nn.Module`` (torchvision, timm, Hugging Face or your own), in any
            floating dtype (float32, float16, bfloat16): inputs are cast to it, scores come back
            in float32.
        input_size: (H, W) the model expects; images of another size are resized bilinearly.
            ``None`` passes images through at their own size.
        mean, std: per-channel normalisation applied to [0, 1] images; their length is the model's
            input channel count (a 1-channel model gets RGB images as luminance). ``None`` for both:
            no normalisation, channels as given.
        class_names: optional list of C human-readable names, for targets given by name and for
            every output; by default a Hugging Face model's ``config.id2label``.
        classes: the same as ``class_names``, or a dict {index: name}; give one of the two.
        outputs: what the model returns: ``logits``, ``probabilities`` (rows summing to 1) or
            ``log_probabilities``. ``auto`` (default) reads logits unless the first output's rows
            are non-negative and sum to 1, which is then taken as probabilities, with a warning:
            softmax applied twice would silently flatten every score.
        output: which part of a structured output holds the scores: a key (dict or attribute name)
            or an index (tuple/list). By default ``.logits``, a dict's ``"logits"``, or a tuple's
            first element.
    """

    def __init__(
        self,
        model: Callable[[torch.Tensor], Any],
        input_size: tuple[int, int] | None = (224, 224),
        mean: Sequence[float] | None = (0.485, 0.456, 0.406),
        std: Sequence[float] | None = (0.229, 0.224, 0.225),
        class_names: Sequence[str] | None = None,
        name: str = "model",
        outputs: str = "auto",
        output: int | str | None = None,
        classes: Sequence[str] | Mapping[int, str] | None = None,
    ) -> None:
        super().__init__()
        if isinstance(model, BlackBox):
            raise ConfigError("the model is already a BlackBox: pass it as it is (or wrap its .model)")
        if not callable(model):
            raise ConfigError(f"the model must be callable, got {type(model).__name__}")
        if outputs not in OUTPUTS:
            raise ConfigError(f"unknown outputs {outputs!r}; choose one of {', '.join(OUTPUTS)}")
        if (mean is None) != (std is None):
            raise ConfigError("give mean and std together (or neither)")
        self.model = model
        self.input_size = (int(input_size[0]), int(input_size[1])) if input_size is not None else None
        if self.input_size is not None and min(self.input_size) < 1:
            raise ConfigError(f"input_size must be a positive (height, width), got {self.input_size}")
        self.outputs = outputs
        self.output = output
        self.channels = model_channels(model)
        if mean is not None and std is not None:
            mean, std = tuple(float(v) for v in mean), tuple(float(v) for v in std)
            if len(mean) != len(std) or not mean:
                raise ConfigError(f"mean and std need one value per channel, got {len(mean)} and {len(std)}")
            if self.channels is not None and len(mean) != self.channels:
                raise ConfigError(
                    f"the model takes {self.channels}-channel images, but mean/std have {len(mean)} "
                    f"values; give {self.channels}"
                )
            if not all(math.isfinite(v) for v in (*mean, *std)):
                raise ConfigError(f"mean and std must be finite numbers, got mean={mean}, std={std}")
            if any(v <= 0 for v in std):
                raise ConfigError(f"std must be positive, got {std}")
            self.channels = len(mean)
        self.normalise = mean is not None
        self.register_buffer(
            "mean", torch.tensor(mean or (0.0,), dtype=torch.float32).view(1, -1, 1, 1), persistent=False
        )
        self.register_buffer(
            "std", torch.tensor(std or (1.0,), dtype=torch.float32).view(1, -1, 1, 1), persistent=False
        )
        if classes is not None and class_names is not None:
            raise ConfigError("give class_names or classes, not both")
        given = classes if classes is not None else class_names
        self.class_names = class_list(given) if given is not None else model_class_names(model)
        self.name = name
        self._num_classes: int | None = len(self.class_names) if self.class_names else None
        self._read_as: str | None = None if outputs == "auto" else outputs

    def __getattr__(self, name: str) -> Any:
        # nn.Module.__getattr__ turns an AttributeError raised *inside* a property (say, from the
        # user's model) into "'BlackBox' object has no attribute 'num_classes'"; run the property
        # again so that its own error surfaces.
        prop = getattr(type(self), name, None)
        if isinstance(prop, property) and prop.fget is not None:
            return prop.fget(self)
        return super().__getattr__(name)

    # -- queries -------------------------------------------------------------------------------
    def check_images(self, images: torch.Tensor) -> None:
        """ConfigError unless ``images`` is (B, C, H, W) with C = 3, 1 or the model's own count."""
        if images.is_meta or self.device.type == "meta":
            if self.device.type == "meta":
                raise ModelError(f"{self.name} is on the meta device (it holds no weights); load them first")
            raise ConfigError("images are on the meta device: they hold no pixels")
        accepted = {1, 3} | ({self.channels} if self.channels else set())
        if images.dim() != 4 or (self.channels and images.shape[1] not in accepted):
            want = "3" if self.channels in (None, 1, 3) else f"{self.channels} (or 3)"
            raise ConfigError(f"images must have shape (B, {want}, H, W), got {tuple(images.shape)}")

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """[0, 1] images → the model's input: its size, channels, normalisation and dtype."""
        self.check_images(images)
        c = images.shape[1]
        if self.channels is not None and c != self.channels:
            if self.channels == 1:
                weights = torch.tensor(LUMINANCE, device=images.device, dtype=images.dtype)
                images = (images * weights.view(1, 3, 1, 1)).sum(1, keepdim=True)
            else:
                images = images.expand(-1, self.channels, -1, -1)
        if self.input_size is not None and tuple(images.shape[-2:]) != self.input_size:
            images = F.interpolate(images, size=self.input_size, mode="bilinear", align_corners=False)
        if self.normalise:
            images = (images - self.mean.to(images)) / self.std.to(images)
        return images.to(self.dtype)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Float32 logits (B, C) for a batch of [0, 1] images (log-probabilities for a model that
        returns probabilities: the same softmax). Whatever goes wrong inside the model (it raises,
        runs out of memory, returns integers, NaN or inf) is a ModelError naming the model."""
        raw = self._call_model(self.preprocess(images))
        scores = select_output(raw, self.output, self.name)
        if scores.dim() != 2 or scores.shape[0] != images.shape[0]:
            raise ModelError(
                f"{self.name} returned scores of shape {tuple(scores.shape)} for {images.shape[0]} "
                f"image(s); expected (batch, classes) = ({images.shape[0]}, C)"
            )
        if scores.is_meta or not scores.is_floating_point():
            kind = "meta-device" if scores.is_meta else str(scores.dtype).replace("torch.", "")
            raise ModelError(f"{self.name} returned {kind} scores; class scores must be floating-point "
                             "logits or probabilities")
        scores = scores.float()
        if self.class_names is not None and scores.shape[1] != len(self.class_names):
            raise ModelError(
                f"{self.name} returns {scores.shape[1]} class scores, but {len(self.class_names)} class "
                "names were given"
            )
        if not bool(torch.isfinite(scores).all()) and bool(torch.isfinite(images).all()):
            require_finite(scores, f"{self.name}'s scores hold")  # NaN pixels were warned about
        if scores.shape[1] < 2:
            raise ModelError(f"{self.name} returned scores for {scores.shape[1]} class; a classifier "
                             "needs at least 2 classes to explain")
        if self._num_classes is None:
            self._num_classes = int(scores.shape[1])
        if self._read_as is None:
            self._read_as = detect_outputs(scores.detach(), self.name)
        if self._read_as == "probabilities":
            return scores.clamp_min(torch.finfo(torch.float32).tiny).log()
        return scores

    def _call_model(self, x: torch.Tensor) -> Any:
        """The model on its input; any failure of the user's code becomes one ModelError line."""
        try:
            return self.model(x)
        except MaskscopeError:
            raise
        except (Exception, SystemExit) as exc:  # sys.exit() inside a forward: not a silent exit
            if isinstance(exc, torch.OutOfMemoryError) or "out of memory" in str(exc).lower():
                text = f"ran out of memory on a batch of {x.shape[0]} image(s); lower --batch-size"
            else:
                text = f"failed on a batch of {x.shape[0]} image(s): {type(exc).__name__}: {exc}"
            raise model_failure(exc, f"{self.name} {text}") from exc

    def probabilities(self, images: torch.Tensor) -> torch.Tensor:
        return self(images).softmax(dim=1)

    @property
    def device(self) -> torch.device:
        if isinstance(self.model, nn.Module):
            for p in self.model.parameters():
                return p.device
        return self.mean.device

    @property
    def dtype(self) -> torch.dtype:
        """The model's floating dtype (its first floating parameter or buffer), float32 if none."""
        if isinstance(self.model, nn.Module):
            for t in (*self.model.parameters(), *self.model.buffers()):
                if t.is_floating_point():
                    return t.dtype
        return torch.float32

    @property
    def num_classes(self) -> int:
        if self._num_classes is None:
            h, w = self.input_size or (224, 224)  # a bare model learns it from its first images
            with torch.no_grad(), self.evaluating():
                probe = torch.zeros(1, self.channels or 3, h, w, device=self.device)
                self._num_classes = int(self(probe).shape[1])
        return self._num_classes

    def class_name(self, index: int) -> str:
        if self.class_names is None:
            return f"class {index}"
        return self.class_names[index].split(",")[0].strip()

    # -- state management ---------------------------------------------------------------------
    @contextlib.contextmanager
    def evaluating(self) -> Iterator[BlackBox]:
        """Put the model in eval mode for the duration, then restore every submodule's mode.

        Methods differentiate with ``torch.autograd.grad`` w.r.t. their own tensors only, so no
        parameter ``requires_grad`` flag is ever touched and no ``.grad`` is ever written.
        """
        with eval_mode(self.model):
            yield self

    # -- targets -------------------------------------------------------------------------------
    def resolve_targets(self, images: torch.Tensor, target: TargetSpec = "top1") -> torch.Tensor:
        """Class indices for ``images`` in the shape Captum takes: int64 (B,), or (B, K) for ``"topK"``
        with K > 1 (the K best classes, whose scores the methods sum). Every form ``Target.parse``
        reads is accepted (``maskscope.target``); a callable target has no indices (TargetError)."""
        t = class_targets(self, images, target, "BlackBox.resolve_targets")
        return t[:, 0].clone() if t.shape[1] == 1 else t

    def check_target(self, target: TargetSpec) -> TargetSpec:
        """Check one target before any image is read, so a bad class fails fast with one line
        (``maskscope.target.check_target``); the CLI and the summaries call it rather than repeat it."""
        return check_target(self, target)

    def class_index(self, name_or_index: int | str) -> int:
        """Index of a class given by int (numpy ints too), numeric string or (case-insensitive) name.

        A name matches a class's full entry or one of its synonyms; a full entry wins ("maillot"),
        and a name that still matches several classes ("crane": the bird and the machine, "panda")
        is a TargetError listing them, rather than a silent pick of the first.
        """
        value = scalar_target(name_or_index)
        text = str(value).strip()
        if isinstance(value, int) or text.lstrip("-").isdecimal():
            index = int(text)
            if abs(index) >= 2**63:  # beyond any tensor of indices
                raise TargetError(f"target class {index} is out of range: the model has "
                                  f"{self.num_classes} classes")
            return index
        if self.class_names is None:
            raise TargetError(f"unknown class {text!r}: this model has no class names, give an index")
        wanted = text.lower()
        entries = [entry.lower() for entry in self.class_names]
        matches = [i for i, entry in enumerate(entries) if entry == wanted] or [
            i for i, entry in enumerate(entries) if wanted in (s.strip() for s in entry.split(","))
        ]
        if len(matches) == 1:
            return matches[0]
        if matches:
            named = ", ".join(f"{i} ({self.class_name(i)})" for i in matches)
            raise TargetError(f"class name {text!r} is ambiguous: it names classes {named}; give the index")
        raise TargetError(f"unknown class name {text!r}")


def model_failure(exc: BaseException, message: str) -> ModelError:
    """A ModelError that is still an instance of the model's own exception type, so that code
    catching it (``except torch.OutOfMemoryError`` to retry smaller) keeps working."""
    try:
        kind = type(f"Model{type(exc).__name__}", (ModelError, type(exc)), {"__str__": Exception.__str__})
        return kind(message)
    except TypeError:  # a type that cannot be subclassed or built from a message alone
        return ModelError(message)


def require_finite(values: torch.Tensor, what: str) -> None:
    """NonFiniteError when ``values`` hold NaN or inf: ``what`` says whose they are ("model X
    returned"), so the line names the cause rather than letting NaN pass as a score or a mask."""
    finite = torch.isfinite(values)
    if not bool(finite.all()):
        kinds = [k for k, bad in (("NaN", values.isnan()), ("inf", values.isinf())) if bool(bad.any())]
        share = 100.0 * float((~finite).float().mean())
        raise NonFiniteError(f"{what} non-finite values ({' and '.join(kinds)} in {share:.3g}% of them)")


@contextlib.contextmanager
def eval_mode(model: object) -> Iterator[None]:
    """Every submodule of ``model`` in eval mode for the duration, then each one's own mode back
    (``model.eval()`` / ``.train()`` would lose a mix of modes). For a callable that is not a
    module (``lambda x: net(x)``) the modules behind it are found and treated the same way, so
    that explaining never updates a BatchNorm's running statistics through a wrapper."""
    modules = list({id(m): m for root in modules_behind(model) for m in root.modules()}.values())
    modes = [m.training for m in modules]
    try:
        for m in modules:
            m.training = False
        yield
    finally:
        for m, mode in zip(modules, modes):
            m.training = mode


def as_blackbox(model: BlackBox | Callable[[torch.Tensor], Any]) -> BlackBox:
    """Accept either a BlackBox or a bare model, which then sees the [0, 1] images unchanged (at
    their own size, unnormalised; RGB images become grey for a model whose first convolution takes
    one channel)."""
    if isinstance(model, BlackBox):
        return model
    return BlackBox(model, input_size=None, mean=None, std=None, name=type(model).__name__)


def model_channels(model: object) -> int | None:
    """The input channel count of a model's first ``Conv2d``; None when it has none."""
    if isinstance(model, nn.Module):
        for m in model.modules():
            if isinstance(m, nn.Conv2d):
                return int(m.in_channels)
    return None


def select_output(raw: Any, selector: int | str | None, name: str = "model") -> torch.Tensor:
    """The scores tensor inside a model's output: ``raw`` itself, ``raw[selector]`` (or the
    attribute), ``.logits``, a dict's ``"logits"`` or a tuple's first element."""
    if isinstance(raw, torch.Tensor):
        return raw
    try:
        if selector is not None:
            if isinstance(selector, str) and not isinstance(raw, Mapping):
                found = getattr(raw, selector)
            else:
                found = raw[selector]
        elif getattr(raw, "logits", None) is not None:
            found = raw.logits
        elif isinstance(raw, Mapping):
            tensors = [k for k, v in raw.items() if isinstance(v, torch.Tensor)]
            if "logits" not in raw and len(tensors) != 1:
                raise ModelError(
                    f"{name} returned a dict with keys {list(raw)}; say which holds the scores with "
                    "BlackBox(..., output=KEY)"
                )
            found = raw["logits"] if "logits" in raw else raw[tensors[0]]
        elif isinstance(raw, (tuple, list)) and raw:
            found = raw[0]
        else:
            found = raw
    except (KeyError, IndexError, AttributeError, TypeError) as exc:
        raise ModelError(f"{name}'s output has no part {selector!r}: {exc}") from None
    if not isinstance(found, torch.Tensor):
        hint = "" if selector is not None else "; choose the scores with BlackBox(..., output=KEY_OR_INDEX)"
        raise ModelError(f"{name} returned {type(found).__name__}, not a tensor of scores{hint}")
    return found


def detect_outputs(scores: torch.Tensor, name: str = "model") -> str:
    """``probabilities`` when every row is non-negative and sums to 1 (with a warning), else
    ``logits``. Decided once per BlackBox, on its first output."""
    if scores.shape[1] < 2 or scores.numel() == 0 or not torch.isfinite(scores).all():
        return "logits"
    sums = scores.sum(dim=1)
    if bool((scores >= 0).all()) and bool(torch.allclose(sums, torch.ones_like(sums), atol=1e-2)):
        warnings.warn(
            f"{name} returns probabilities (rows are non-negative and sum to 1); reading them as "
            "such. Pass BlackBox(..., outputs='probabilities') or outputs='logits' to say so.",
            stacklevel=3,
        )
        return "probabilities"
    return "logits"
