"""The one error type the tokenizer package raises for bad input it can explain (one of qkv's
:class:`~qkv.errors.QkvError` kinds)."""

from qkv.errors import TokenizerError

__all__ = ["TokenizerError"]
