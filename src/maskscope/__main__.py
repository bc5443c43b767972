"""``python -m maskscope`` (and ``torchrun … -m maskscope``) runs the command-line interface."""

from .cli.main import entry

entry()
