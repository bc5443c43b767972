"""Typed exceptions: the CLI turns any of these into one line on stderr and exit code 2."""


class MaskscopeError(Exception):
    """Base class for every error caused by bad input (not by a bug)."""


class ImageError(MaskscopeError):
    """An image file is missing, unreadable, truncated, empty or too small."""


class TargetError(MaskscopeError):
    """A target class index or name does not exist for this model."""


class ConfigError(MaskscopeError):
    """An option has an invalid value (iterations, batch size, method name, ...)."""


class DataError(MaskscopeError):
    """A dataset folder or annotation file is missing, empty or malformed."""


class CheckpointError(MaskscopeError):
    """A checkpoint is corrupt or was made for another classifier."""


class OutputError(MaskscopeError):
    """An output folder cannot be created or written."""


class ModelError(MaskscopeError):
    """A classifier's output cannot be read as class scores (B, C) for the batch it was given."""


class NonFiniteError(ModelError):
    """A classifier returned NaN or infinite scores, or a method produced a NaN or infinite mask:
    a result that would read as a number but means nothing."""


class MissingExtraError(MaskscopeError):
    """An optional dependency is missing (or broken); the message names the ``pip install`` that fixes it."""
