"""Interoperability with other libraries: weights to and from Hugging Face ``transformers``."""

from .hf import from_hf, to_hf

__all__ = ["from_hf", "to_hf"]
