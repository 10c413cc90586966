"""Normalisers: the first step of the pipeline, written into `tokenizer.json` as `normalizer`.

Each one is a small frozen dataclass: calling it maps text to text, `to_json()` gives the exact
object Hugging Face `tokenizers` reads, so both libraries normalise identically.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Any, Callable, Protocol

from qkv.tokenize.errors import TokenizerError
from qkv.tokenize.unicode_tables import (WHITE_SPACE, CharMap, is_bert_accent, is_bert_control,
                                         is_cjk)


def _clean(c: str) -> str:
    return "" if is_bert_control(c) else " " if c in WHITE_SPACE else c


CLEAN_TEXT = CharMap(_clean)
SPACE_AROUND_CJK = CharMap(lambda c: f" {c} " if is_cjk(c) else c)
DROP_ACCENTS = CharMap(lambda c: "" if is_bert_accent(c) else c)


class Normalizer(Protocol):
    def __call__(self, text: str) -> str: ...
    def to_json(self) -> dict[str, Any] | None: ...


@dataclass(frozen=True)
class Identity:
    """No normalisation (`"normalizer": null`)."""

    def __call__(self, text: str) -> str:
        return text

    def to_json(self) -> None:
        return None


@dataclass(frozen=True)
class NFC:
    """Unicode canonical composition: `e` + U+0301 and `é` become the same string.

    Our default for `BPE`: without it the same visible word can reach the merges as two
    different character sequences.
    """

    def __call__(self, text: str) -> str:
        return unicodedata.normalize("NFC", text)

    def to_json(self) -> dict[str, Any]:
        return {"type": "NFC"}


@dataclass(frozen=True)
class BertNormalizer:
    """BERT's normaliser (Devlin et al. 2019), in HF's order of steps.

    1. clean_text: delete control/format characters, map every whitespace to " ".
    2. handle_chinese_chars: put spaces around CJK ideographs, so each becomes its own word
       (Chinese has no spaces; BERT gives each character its own token, Wu et al. 2016).
    3. strip_accents (default: same as `lowercase`): NFD, then drop non-spacing marks.
    4. lowercase, one character at a time (no Greek final-sigma rule, as in HF).
    """

    clean_text: bool = True
    handle_chinese_chars: bool = True
    strip_accents: bool | None = None
    lowercase: bool = False

    def __call__(self, text: str) -> str:
        if self.clean_text:
            text = text.translate(CLEAN_TEXT)
        if self.handle_chinese_chars:
            text = text.translate(SPACE_AROUND_CJK)
        if self.lowercase if self.strip_accents is None else self.strip_accents:
            text = unicodedata.normalize("NFD", text).translate(DROP_ACCENTS)
        if self.lowercase:
            text = "".join(c.lower() for c in text)
        return text

    def to_json(self) -> dict[str, Any]:
        return {
            "type": "BertNormalizer",
            "clean_text": self.clean_text,
            "handle_chinese_chars": self.handle_chinese_chars,
            "strip_accents": self.strip_accents,
            "lowercase": self.lowercase,
        }


def _bert_from_json(d: dict[str, Any]) -> BertNormalizer:
    return BertNormalizer(
        clean_text=d.get("clean_text", True),
        handle_chinese_chars=d.get("handle_chinese_chars", True),
        strip_accents=d.get("strip_accents"),
        lowercase=d.get("lowercase", True),
    )


NORMALIZERS: dict[str, Callable[[dict[str, Any]], Normalizer]] = {
    "NFC": lambda d: NFC(),
    "BertNormalizer": _bert_from_json,
}


def normalizer_from_json(d: dict[str, Any] | None) -> Normalizer:
    """Build the normaliser a `tokenizer.json` names (None means no normalisation)."""
    if d is None:
        return Identity()
    kind = d.get("type")
    if kind not in NORMALIZERS:
        raise TokenizerError(
            f"unsupported normalizer type {kind!r}; supported: {sorted(NORMALIZERS)}")
    return NORMALIZERS[kind](d)
