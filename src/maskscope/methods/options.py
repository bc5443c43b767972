"""A method's options and their types, read from its signature, to parse and check option values
(``--option NAME.KEY=VALUE`` on the command line, ``EvalConfig.options`` from Python).

A type is the set of kinds an annotation names (``int | None``: an integer or null). A name this
module does not know (``Perturbation``, ``nn.Module``) stands for a Python object the method
checks itself, so any value passes.
"""

from __future__ import annotations

import inspect
import json
import numbers
from dataclasses import dataclass
from typing import Any

KINDS = {"int": "int", "float": "float", "str": "str", "bool": "bool", "None": "none"}
SEQUENCES = ("Sequence[float]", "list[float]", "tuple[float, ...]", "Sequence[int]", "list[int]")
WORDS = {"int": "an integer", "float": "a number", "str": "a string", "bool": "true or false",
         "none": "null", "floats": "a list of numbers", "any": "any value"}
SKIPPED = 3  # (model, images, target) come first and are not options


@dataclass(frozen=True)
class OptionType:
    kinds: frozenset[str]

    def accepts(self, value: Any) -> bool:
        return "any" in self.kinds or any(_is(kind, value) for kind in self.kinds)

    def parse(self, text: str) -> Any:
        """A string option keeps its text; anything else is read as JSON (numbers, true, [0.1])."""
        if self.kinds <= {"str", "none"}:
            return text
        try:
            return json.loads(text)
        except ValueError:
            return text

    def describe(self) -> str:
        if "any" in self.kinds:
            return WORDS["any"]
        return " or ".join(WORDS[k] for k in WORDS if k in self.kinds)


def _is(kind: str, value: Any) -> bool:
    if kind == "none":
        return value is None
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "str":
        return isinstance(value, str)
    if kind == "floats":
        return isinstance(value, (list, tuple)) and all(_is("float", v) for v in value)
    number = numbers.Integral if kind == "int" else numbers.Real
    return isinstance(value, number) and not isinstance(value, bool)


def annotation_type(annotation: Any, default: Any = inspect.Parameter.empty) -> OptionType:
    """The type an annotation (a string under ``from __future__ import annotations``) names; an
    unannotated parameter has its default's type."""
    if annotation is inspect.Parameter.empty:
        kind = KINDS.get(type(default).__name__) if default not in (inspect.Parameter.empty, None) else None
        return OptionType(frozenset({kind or "any"}))
    text = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", str(annotation))
    kinds = set()
    for part in _split(text):
        kinds.add("floats" if part in SEQUENCES else KINDS.get(part, "any"))
    return OptionType(frozenset(kinds))


def _split(text: str) -> list[str]:
    """``int | Sequence[float]`` → its alternatives, bracketed ``|`` left whole."""
    parts, depth, current = [], 0, ""
    for char in text:
        depth += char == "["
        depth -= char == "]"
        if char == "|" and depth == 0:
            parts.append(current.strip())
            current = ""
        else:
            current += char
    return [*parts, current.strip()]


def option_types(signature: inspect.Signature) -> dict[str, OptionType]:
    """Option name → type for every parameter after the first three; ``**kwargs`` as ``"*"``."""
    out: dict[str, OptionType] = {}
    for parameter in list(signature.parameters.values())[SKIPPED:]:
        if parameter.kind is inspect.Parameter.VAR_KEYWORD:
            out["*"] = OptionType(frozenset({"any"}))
        elif parameter.kind is not inspect.Parameter.VAR_POSITIONAL:
            out[parameter.name] = annotation_type(parameter.annotation, parameter.default)
    return out
