"""What a classifier is, by content: the modules behind any callable, and a hash of their weights.

Caches of masks are keyed by this fingerprint rather than by the model's name, so that a model with
other weights (another seed, another checkpoint, the same factory with other arguments) never
reuses the masks of another. The same search for the modules behind a callable lets a wrapper such
as ``lambda x: net(x)`` be put in evaluation mode like the module itself.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
from collections.abc import Iterator

import torch
from torch import nn

from .errors import ModelError

DEPTH = 3  # how far behind a callable to look: a lambda → its closure or globals → an object's fields
SIMPLE = (bool, int, float, str, bytes, tuple, list, type(None))


def modules_behind(fn: object) -> list[nn.Module]:
    """The outermost ``nn.Module``s a callable reaches: itself, a bound method's object, a partial's
    function and arguments, a function's closure cells and the globals it names, a callable
    object's fields, and a plain callable stored on a module (a BlackBox around a lambda)."""
    found: dict[int, nn.Module] = {}
    seen: set[int] = set()

    def visit(obj: object, depth: int) -> None:
        if id(obj) in seen or depth < 0:
            return
        seen.add(id(obj))
        if isinstance(obj, nn.Module):
            found.setdefault(id(obj), obj)
            for value in vars(obj).values():
                if callable(value) and not isinstance(value, (nn.Module, type)) and _users(value):
                    visit(value, depth - 1)
            return
        for child in _reached(obj):
            visit(child, depth - 1)

    visit(fn, DEPTH)
    return list(found.values())


def _users(value: object) -> bool:
    """A callable that is not torch's own (whose globals would lead through all of torch)."""
    return not str(getattr(value, "__module__", "") or "").startswith("torch")


def _reached(obj: object) -> list[object]:
    if isinstance(obj, functools.partial):
        return [obj.func, *obj.args, *obj.keywords.values()]
    if inspect.ismethod(obj):
        return [obj.__self__, obj.__func__]
    if inspect.isfunction(obj):
        cells = []
        for cell in obj.__closure__ or ():
            try:
                cells.append(cell.cell_contents)
            except ValueError:  # a cell not filled yet
                continue
        names = [obj.__globals__[n] for n in obj.__code__.co_names if n in obj.__globals__]
        return [c for c in [*cells, *names] if _users(c) or isinstance(c, nn.Module)]
    if callable(obj) and not isinstance(obj, type) and hasattr(obj, "__dict__") and _users(obj):
        return list(vars(obj).values())
    return []


def model_fingerprint(model: object) -> str:
    """sha256 (hex) over every module behind ``model``: its class, its plain settings (a BlackBox's
    input size, normalisation, outputs; an accelerated model's precision), and the names, dtypes,
    shapes and bytes of its parameters and buffers. Any change of weights or settings changes it;
    the device and the train/eval mode do not. A callable with no module behind it is identified
    by its qualified name only (its weights, if any, cannot be reached)."""
    digest = hashlib.sha256()
    roots = modules_behind(model)
    if not roots:
        kind = type(model) if not inspect.isroutine(model) else model
        digest.update(f"callable {kind.__module__}.{kind.__qualname__}".encode())
    for module in _distinct(roots):
        digest.update(f"{type(module).__module__}.{type(module).__qualname__}".encode())
        settings = sorted((k, repr(v)) for k, v in vars(module).items()
                          if not k.startswith("_") and k != "training" and isinstance(v, SIMPLE))
        digest.update(repr(settings).encode())
        for name, tensor in [*module.named_parameters(recurse=False), *module.named_buffers(recurse=False)]:
            digest.update(f"{name} {tensor.dtype} {tuple(tensor.shape)}".encode())
            digest.update(_tensor_bytes(tensor, name))
    return digest.hexdigest()


def _distinct(roots: list[nn.Module]) -> Iterator[nn.Module]:
    seen: set[int] = set()
    for root in roots:
        for module in root.modules():
            if id(module) not in seen:
                seen.add(id(module))
                yield module


def _tensor_bytes(tensor: torch.Tensor, name: str) -> bytes:
    if tensor.is_meta:
        raise ModelError(f"the model's {name} is on the meta device (no weights): load them first")
    flat = tensor.detach().reshape(-1).contiguous().cpu()
    return flat.view(torch.uint8).numpy().tobytes()
