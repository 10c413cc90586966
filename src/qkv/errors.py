"""The one family of errors qkv raises for a failure it expects and can explain.

Every expected failure — a bad config value, a missing or damaged checkpoint, a corpus file
that is absent or fails its checksum, a tokenizer file qkv cannot read, a decoding setting out
of range, bad user input — is a subclass of :class:`QkvError`. The ``qkv`` command prints any
of them as ``qkv: error: <message>`` (plus an optional hint line) and exits 2; anything else
is a bug and keeps its traceback. Each subclass also derives from the built-in type that code
written before this module caught (``ValueError``, ``RuntimeError``), so ``except ValueError``
still works.

This module imports nothing from qkv, so every layer (``nn`` up to ``cli``) can use it.
"""

from __future__ import annotations


class QkvError(Exception):
    """An expected failure with a message that names the problem and the fix.

    ``hint`` is an optional second line (what to type instead) that the CLI prints below.
    """

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


class ConfigError(QkvError, ValueError):
    """A config field holds a value (or combination) qkv cannot build or train with."""


class CheckpointError(QkvError, RuntimeError):
    """A checkpoint directory is missing, incomplete, corrupted, unsafe or of the wrong kind."""


class DataError(QkvError):
    """A corpus file is missing, corrupted, or was asked for by an unknown name."""


class TokenizerError(QkvError, ValueError):
    """Bad tokenizer training input, bad arguments, or a ``tokenizer.json`` qkv cannot read."""


class GenerationError(QkvError, ValueError):
    """A generation request qkv refuses (a setting out of range, input too long), with the fix."""


class TrainingError(QkvError, RuntimeError):
    """Training cannot go on (a non-finite loss or gradient, a step without labelled tokens)."""


class InputError(QkvError, ValueError):
    """User input qkv cannot take as given: undecodable text, ids outside the vocabulary, a
    path of the wrong kind, a run folder that would be damaged."""


class QkvNotice(UserWarning):
    """Not an error: something the user should know about what qkv did (input cut with
    ``truncate=True``, a context cropped while generating). ``warnings.warn(..., QkvNotice)``;
    the CLI prints it as one ``qkv: note:`` line."""


__all__ = ["QkvError", "ConfigError", "CheckpointError", "DataError", "TokenizerError", "GenerationError",
           "TrainingError", "InputError", "QkvNotice"]
