"""Pre-tokenisers: split normalised text into the words that merges never cross.

Each matches one of Hugging Face's `pre_tokenizers` exactly (tested code point by code point):

- `Whitespace`: runs of word characters or runs of other non-space characters, `\\w+|[^\\w\\s]+`.
  Used by `BPE`, the classic Sennrich et al. (2016) setting.
- `BertPreTokenizer`: split on whitespace, and every punctuation character is its own word.
- `ByteLevel`: GPT-2's regex (Radford et al. 2019), then each UTF-8 byte becomes one printable
  character, so any string is spelled in a 256-symbol alphabet with no unknown token.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable, Protocol

import regex  # `re` has no \p{L}; HF (Oniguruma) and OpenAI's GPT-2 code use this syntax too

from qkv.tokenize.errors import TokenizerError
from qkv.tokenize.unicode_tables import WHITE_SPACE, CharMap, is_bert_punctuation


class PreTokenizer(Protocol):
    def __call__(self, text: str) -> list[str]: ...
    def to_json(self) -> dict[str, Any] | None: ...


WHITESPACE_PATTERN = regex.compile(r"\w+|[^\w\s]+")

# GPT-2's pattern: English contractions, letters, numbers, other symbols (each optionally led by
# one space), and trailing whitespace kept apart from the next word.
GPT2_PATTERN = regex.compile(
    r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
)


@dataclass(frozen=True)
class WholeText:
    """No pre-tokeniser (`"pre_tokenizer": null`): the whole text is one word."""

    def __call__(self, text: str) -> list[str]:
        return [text] if text else []

    def to_json(self) -> None:
        return None


@dataclass(frozen=True)
class Whitespace:
    """HF `Whitespace`: words are `\\w+` runs or runs of other non-space characters."""

    def __call__(self, text: str) -> list[str]:
        return WHITESPACE_PATTERN.findall(text)

    def to_json(self) -> dict[str, Any]:
        return {"type": "Whitespace"}


NON_SPACE = re.compile("[^" + "".join(map(re.escape, sorted(WHITE_SPACE))) + "]+")
SPACE_AROUND_PUNCTUATION = CharMap(lambda c: f" {c} " if is_bert_punctuation(c) else c)


@dataclass(frozen=True)
class BertPreTokenizer:
    """HF `BertPreTokenizer`: drop whitespace, isolate each punctuation character.

    Done as: put spaces around every punctuation character, then split on whitespace.
    """

    def __call__(self, text: str) -> list[str]:
        return NON_SPACE.findall(text.translate(SPACE_AROUND_PUNCTUATION))

    def to_json(self) -> dict[str, Any]:
        return {"type": "BertPreTokenizer"}


@lru_cache(maxsize=1)
def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's byte -> character table (Radford et al. 2019, `encoder.py`).

    Printable bytes stand for themselves; the other 68 (controls, space, ...) are shifted to
    U+0100 onwards, so every token is a visible string and a space shows up as `Ġ`.
    """
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1),
                 *range(ord("®"), ord("ÿ") + 1)]
    table = {b: chr(b) for b in printable}
    shifted = 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + shifted)
            shifted += 1
    return table


@lru_cache(maxsize=1)
def unicode_to_bytes() -> dict[str, int]:
    return {c: b for b, c in bytes_to_unicode().items()}


@dataclass(frozen=True)
class ByteLevel:
    """HF `ByteLevel` pre-tokeniser: GPT-2 regex split, then bytes spelled as characters."""

    add_prefix_space: bool = False

    def __call__(self, text: str) -> list[str]:
        if self.add_prefix_space and not text.startswith(" "):
            text = " " + text
        table = bytes_to_unicode()
        return ["".join(table[b] for b in w.encode("utf-8")) for w in GPT2_PATTERN.findall(text)]

    def to_json(self) -> dict[str, Any]:
        return {"type": "ByteLevel", "add_prefix_space": self.add_prefix_space,
                "trim_offsets": True, "use_regex": True}


def _byte_level_from_json(d: dict[str, Any]) -> ByteLevel:
    if not d.get("use_regex", True):
        raise TokenizerError("unsupported pre_tokenizer: ByteLevel with use_regex=false")
    return ByteLevel(add_prefix_space=d.get("add_prefix_space", True))


PRE_TOKENIZERS: dict[str, Callable[[dict[str, Any]], PreTokenizer]] = {
    "Whitespace": lambda d: Whitespace(),
    "BertPreTokenizer": lambda d: BertPreTokenizer(),
    "ByteLevel": _byte_level_from_json,
}


def pre_tokenizer_from_json(d: dict[str, Any] | None) -> PreTokenizer:
    """Build the pre-tokeniser a `tokenizer.json` names (None: the text is one word)."""
    if d is None:
        return WholeText()
    kind = d.get("type")
    if kind not in PRE_TOKENIZERS:
        raise TokenizerError(
            f"unsupported pre_tokenizer type {kind!r}; supported: {sorted(PRE_TOKENIZERS)}")
    return PRE_TOKENIZERS[kind](d)
