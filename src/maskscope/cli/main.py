"""Entry point. Every bad input becomes one line on stderr and exit code 2, never a traceback."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import sys
import warnings
from collections.abc import Iterator
from typing import NoReturn

from ..errors import MaskscopeError

# command name -> module (in maskscope.cli) exposing add_parser(subparsers) and run(args) -> int
COMMANDS = {
    "explain": "explain",
    "demo": "demo",
    "evaluate": "evaluate",
    "train": "train",
    "explain-video": "video",
    "summarize": "summarize",
    "serve": "serve",
    "adversarial": "adversarial",
    "parts": "parts",
}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, exit 2 (argparse prints usage too)
        print(f"maskscope: error: {message}", file=sys.stderr)
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__

    parser = _Parser(prog="maskscope", description="What does an image classifier look at?")
    parser.add_argument("--version", action="version", version=f"maskscope {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, module_name in COMMANDS.items():
        try:
            module = importlib.import_module(f"maskscope.cli.{module_name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"maskscope.cli.{module_name}":
                continue  # command not built yet
            raise
        module.add_parser(sub, name)
    return parser


@contextlib.contextmanager
def one_line_warnings() -> Iterator[None]:
    """Every warning as one line, ``maskscope: warning: …`` (no file, no source line, no category),
    written above any progress bar rather than into it, and each text once per command (a warning
    per batch would repeat it); the previous handler is back afterwards."""
    previous = warnings.showwarning
    shown: set[str] = set()

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        text = f"maskscope: warning: {' '.join(str(message).split())}"
        if text in shown:
            return
        shown.add(text)
        if "tqdm" in sys.modules:  # a bar may be on screen: tqdm clears it, prints, redraws it
            from tqdm import tqdm

            tqdm.write(text, file=sys.stderr)
        else:
            print(text, file=sys.stderr, flush=True)

    warnings.showwarning = show
    try:
        yield
    finally:
        warnings.showwarning = previous


def main(argv: list[str] | None = None) -> int:
    with one_line_warnings():
        return _main(argv)


def entry() -> NoReturn:
    """The process's entry point (``maskscope``, ``python -m maskscope``): ``main``, then exit with
    its code. A torchrun rank leaves through ``exit_process``, before gloo can abort it; ``main``
    itself returns, so a script that calls it keeps running."""
    code = main()
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        from ..distributed import exit_process

        exit_process(code)
    sys.exit(code)


def _main(argv: list[str] | None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # bad options (exit 2) or --help (exit 0)
        return int(exc.code or 0)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    try:
        return int(args.run(args) or 0)
    except MaskscopeError as exc:
        print(f"maskscope: error: {exc}", file=sys.stderr)
        return 2
    except ImportError as exc:  # an optional dependency missing: name the extra that brings it
        from ..extras import missing_extra

        error = missing_extra(exc)
        if error is None:
            raise
        print(f"maskscope: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("maskscope: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    entry()
