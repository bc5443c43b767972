"""The method arguments the analysis commands (adversarial, parts) share, read and checked once."""

from __future__ import annotations

import argparse

from .common import positive_int
from .evaluate import parse_methods, parse_options


def add_method_arguments(p: argparse.ArgumentParser, option_help: str) -> None:
    """``--option METHOD.KEY=VALUE`` (repeatable) and ``--batch-size``."""
    p.add_argument("--option", action="append", default=[], metavar="METHOD.KEY=VALUE", help=option_help)
    p.add_argument("--batch-size", type=positive_int, default=8)


def read_methods(args: argparse.Namespace) -> tuple[list[str], dict[str, dict]]:
    """``--methods`` and ``--option``, every option checked against its method before any work."""
    from ..evaluate.runner import check_options

    methods = parse_methods(args.methods)
    options = parse_options(args.option)
    check_options(methods, options)
    return methods, options
