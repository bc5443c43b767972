"""Options and output helpers shared by the CLI commands."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

from ..errors import ConfigError, OutputError
from ..methods.optimise import MAX_ITERATIONS


def int_at_least(minimum: int, expected: str):
    """An argparse type: an integer ≥ ``minimum``; ``expected`` names it in the error line."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    return parse


positive_int = int_at_least(1, "a positive integer")
non_negative_int = int_at_least(0, "an integer")


MAX_SEED = 2**32 - 1  # what every generator takes (numpy's legacy seeds too), with room for offsets


def seed_number(text: str) -> int:
    """An argparse type: a seed from 0 to ``MAX_SEED`` (a longer one overflows torch's generator)."""
    value = non_negative_int(text)
    if value > MAX_SEED:
        raise argparse.ArgumentTypeError(f"a seed is at most {MAX_SEED}, got {text}")
    return value


def number_between(low: float, high: float, expected: str):
    """An argparse type: a finite number in [``low``, ``high``]; ``expected`` names it in the error."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        if not low <= value <= high:  # NaN fails this too
            raise argparse.ArgumentTypeError(f"expected {expected} from {low:g} to {high:g}, got {text}")
        return value

    return parse


def iterations(text: str) -> int:
    """A positive iteration count of at most ``MAX_ITERATIONS`` (a typo like 1000000000 would run
    for years; it is refused before any work starts)."""
    value = positive_int(text)
    if value > MAX_ITERATIONS:
        raise argparse.ArgumentTypeError(
            f"at most {MAX_ITERATIONS} (the papers use 300), got {value}")
    return value


CLASSIFIER_HELP = (
    "default (= efficientnet-lite0), efficientnet-lite0/1/2, synthetic[:KIND], or module:function "
    "(imported from the working folder) returning a BlackBox (or a bare nn.Module, which then sees "
    "[0, 1] RGB images at 224 px)"
)


class _Deprecated(argparse.Action):
    """An old spelling of an option: works, with a one-line note naming the new one."""

    def __init__(self, *args, new: str = "", **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.new = new

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        print(f"maskscope: note: {option_string} is deprecated; use {self.new}", file=sys.stderr)
        setattr(namespace, self.dest, values)


def add_model_options(p: argparse.ArgumentParser, old_names: tuple[str, ...] = ()) -> None:
    """``--classifier``, ``--classifier-arg`` and ``--device``: the same words on every command.
    ``old_names`` are deprecated spellings of ``--classifier`` (summarize's ``--model``)."""
    p.add_argument("--classifier", default="default", help=CLASSIFIER_HELP)
    for old in old_names:
        p.add_argument(old, dest="classifier", action=_Deprecated, new="--classifier", help=argparse.SUPPRESS)
    p.add_argument(
        "--classifier-arg", action="append", default=[], metavar="KEY=VALUE", type=classifier_arg,
        help="keyword argument of a module:function classifier, repeatable (values read as JSON, "
        "else as text), e.g. --classifier-arg num_classes=10 --classifier-arg weights=model.pt",
    )
    p.add_argument("--device", type=device, default="cpu", help="torch device, e.g. cpu or cuda")
    p.add_argument("--class-names", dest="class_names_file", default=None, metavar="FILE",
                   help="the classifier's class names: a JSON list, a JSON dict {index: name}, or one "
                        "name per line (default: the model's own, e.g. a Hugging Face config's id2label)")


def add_method_options(p: argparse.ArgumentParser) -> None:
    """``--layer`` and ``--option METHOD.KEY=VALUE``: a method's own keyword options (the same
    ``--option`` as ``evaluate``)."""
    p.add_argument("--layer", default=None, metavar="NAME",
                   help="gradcam: the layer to read, by its name in the model (e.g. layer4.1.conv2 or "
                        "blocks.11.norm1; default: the last spatial conv, or a transformer's last block's "
                        "first norm)")
    p.add_argument("--option", action="append", default=[], metavar="METHOD.KEY=VALUE",
                   help="extra keyword option of the method, repeatable (e.g. occlusion.stride=32, "
                        "rise.cells=8)")


def parse_options(items: list[str]) -> dict[str, dict]:
    """``["occlusion.stride=32"]`` → ``{"occlusion": {"stride": 32}}``; values are read as JSON
    (numbers, true/false) and fall back to plain strings (paths, preset names)."""
    options: dict[str, dict] = {}
    for item in items:
        key, sep, text = item.partition("=")
        method, dot, name = key.partition(".")
        if not (sep and dot and method.strip() and name.strip()):
            raise ConfigError(f"--option {item!r}: expected METHOD.KEY=VALUE, e.g. occlusion.stride=32")
        try:
            value = json.loads(text)
        except ValueError:
            value = text
        options.setdefault(method.strip(), {})[name.strip()] = value
    return options


def method_extras(args: argparse.Namespace, spec) -> dict:
    """The ``--layer`` / ``--option`` keyword options for the method of ``spec`` (its registry
    entry, which checks them); an option of another method, or one it does not take, is a
    ConfigError."""
    options = parse_options(getattr(args, "option", None) or [])
    for name in options:
        if name != spec.name:
            raise ConfigError(f"--option {name}.…: applies to --method {name}, not {spec.name}")
    extra = dict(options.get(spec.name, {}))
    if getattr(args, "layer", None) is not None:
        if not spec.accepts("layer"):
            raise ConfigError(f"--layer applies to methods that read a layer (gradcam), not {spec.name}")
        extra.setdefault("layer", args.layer)
    spec.check_options(extra, named_only=True)  # as before: only the method's named options
    return extra


def device(text: str) -> str:
    """An argparse type: a torch device this machine can run a model on. ``meta`` holds no data and
    ``mps`` / ``cuda`` may be missing; each would otherwise fail deep inside torch with a traceback."""
    if text == "cpu":  # the default: no torch import while parsing
        return text
    import torch

    try:
        parsed = torch.device(text)
    except (RuntimeError, ValueError):
        raise argparse.ArgumentTypeError(f"unknown device {text!r}; use cpu, cuda or cuda:N") from None
    kind = parsed.type
    mps = getattr(torch.backends, "mps", None)
    available = {"cpu": True, "cuda": torch.cuda.is_available(),
                 "mps": mps is not None and mps.is_available()}
    if kind not in available:
        raise argparse.ArgumentTypeError(f"device {text!r} cannot run a model here; use cpu or cuda")
    if not available[kind]:
        raise argparse.ArgumentTypeError(f"device {text!r} is not available on this machine; use cpu")
    if kind == "cuda" and parsed.index is not None and parsed.index >= torch.cuda.device_count():
        count = torch.cuda.device_count()
        raise argparse.ArgumentTypeError(f"device {text!r}: this machine has {count} GPU(s)")
    return text


def classifier_arg(text: str) -> tuple[str, object]:
    """``KEY=VALUE`` → (key, value), the value read as JSON (numbers, true/false) or kept as text."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip().isidentifier():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        return key.strip(), json.loads(value)
    except ValueError:
        return key.strip(), value


def load_model(args: argparse.Namespace):
    """The ``--classifier`` as a BlackBox, named by ``--class-names`` when given; a factory that
    calls ``sys.exit`` while it is imported or built is one line naming it, not a silent exit."""
    from ..zoo import resolve_classifier

    path = getattr(args, "class_names_file", None)
    names = read_classes(path) if path else None
    kwargs = dict(getattr(args, "classifier_arg", None) or [])
    try:
        blackbox = resolve_classifier(args.classifier, args.device, kwargs)
    except SystemExit as exc:
        raise ConfigError(f"classifier {args.classifier} called sys.exit({exc.code!r})") from None
    if names is not None:
        if len(names) != blackbox.num_classes:
            raise ConfigError(f"--class-names {path}: {len(names)} names, but the classifier has "
                              f"{blackbox.num_classes} classes")
        blackbox.class_names = names
    return blackbox


def read_classes(path: str | os.PathLike) -> list[str]:
    """Class names from a file: a JSON list, a JSON dict {index: name}, or one name per line
    (blank lines skipped); a bad file is one ConfigError line."""
    from ..classes import class_list

    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or exc
        raise ConfigError(f"--class-names {path}: cannot read ({reason})") from None
    stripped = text.strip()
    if stripped[:1] in ("[", "{"):
        try:
            data = json.loads(stripped)
        except ValueError as exc:
            raise ConfigError(f"--class-names {path}: not valid JSON ({exc})") from None
        try:
            return class_list(data)
        except ConfigError as exc:
            raise ConfigError(f"--class-names {path}: {exc}") from None
    names = [line.strip() for line in text.splitlines() if line.strip()]
    if not names:
        raise ConfigError(f"--class-names {path}: no class names in the file")
    return names


def out_path(text: str) -> str:
    """An argparse type for ``--out``: a name, never empty (``--out ''`` would write into the
    working folder, among the user's own files)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("must name a file or folder; an empty one would write into "
                                         "the working folder")
    return text


def check_output_dir(path: str | os.PathLike) -> Path:
    """Create the output folder and prove it is writable before any expensive work starts."""
    out = Path(path)
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".maskscope-write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise OutputError(f"cannot write to output folder {out}: {exc.strerror or exc}") from None
    return out


@contextlib.contextmanager
def output_folder(path: str | os.PathLike, ddp=None) -> Iterator[Path]:
    """``--out`` for the length of a command: created (``check_output_dir``) and locked, by rank 0
    under torchrun. The folders it had to create are removed again if the command leaves nothing
    in them but the lock (a rejected ``--target`` or ``--data``, only bad files), so a run that
    fails before writing anything leaves no empty folder behind."""
    from ..distributed import Distributed, main_lock, on_main
    from ..storage import LOCK_NAME

    ddp = ddp or Distributed()
    created = on_main(ddp, lambda: _create_output_dir(Path(path))) or []
    try:
        with main_lock(ddp, path):
            yield Path(path)
    finally:
        for folder in created:  # deepest first; stop at the first that holds something
            try:
                if set(os.listdir(folder)) - {LOCK_NAME}:
                    break
                (folder / LOCK_NAME).unlink(missing_ok=True)
                folder.rmdir()
            except OSError:
                break


def _create_output_dir(path: Path) -> list[Path]:
    """``check_output_dir(path)``; returns the folders it had to make, deepest first."""
    missing, folder = [], path
    while not os.path.lexists(folder) and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    check_output_dir(path)
    return missing


def summary_line(rec: dict) -> str:
    name = Path(rec["image"]).name if rec.get("image") else "image"
    p0, pd, pp = rec.get("p_original"), rec.get("p_deleted"), rec.get("p_preserved")
    text = f"{name}: {rec['class_name']} (class {rec['target']})"
    if p0 is not None:
        text += f"  p={p0:.3f}"
        if pd is not None:
            change = 100.0 * (pd - p0) / p0 if p0 > 0 else 0.0
            text += f"  deleted={pd:.3f} ({change:+.1f}%)"
        if pp is not None:
            text += f"  preserved={pp:.3f}"
    if rec.get("area") is not None:
        text += f"  area={100 * rec['area']:.1f}%"
    return text


def report_failures(failures: list[tuple[str, str]]) -> int:
    """List skipped inputs at the end; exit code 2 if there were any."""
    if not failures:
        return 0
    print(f"maskscope: error: {len(failures)} input(s) skipped:", file=sys.stderr)
    for _path, reason in failures:
        print(f"  {reason}", file=sys.stderr)
    return 2


def area_list(text: str) -> list[float]:
    """``"0.05,0.1"`` → [0.05, 0.1]; an area outside (0, 1) is a usage error (exit 2)."""
    try:
        values = [float(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected areas like 0.1 or 0.05,0.1, got {text!r}") from None
    bad = [v for v in values if not 0.0 < v < 1.0]
    if not values or bad:
        raise argparse.ArgumentTypeError(f"areas must lie in (0, 1), got {text!r}")
    return values
