"""Decoders: how a list of token strings becomes text again (`decoder` in `tokenizer.json`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Protocol

from qkv.tokenize.errors import TokenizerError
from qkv.tokenize.pretokenize import unicode_to_bytes


class Decoder(Protocol):
    def __call__(self, tokens: list[str]) -> str: ...
    def to_json(self) -> dict[str, Any] | None: ...


@dataclass(frozen=True)
class JoinWithSpaces:
    """No decoder (`null`): HF joins the tokens with single spaces."""

    def __call__(self, tokens: list[str]) -> str:
        return " ".join(tokens)

    def to_json(self) -> None:
        return None


@dataclass(frozen=True)
class SuffixDecoder:
    """HF `BPEDecoder`: the end-of-word suffix (Sennrich's `</w>`) becomes a space."""

    suffix: str = "</w>"

    def __call__(self, tokens: list[str]) -> str:
        last = len(tokens) - 1
        return "".join(t.replace(self.suffix, "" if i == last else " ")
                       for i, t in enumerate(tokens))

    def to_json(self) -> dict[str, Any]:
        return {"type": "BPEDecoder", "suffix": self.suffix}


@dataclass(frozen=True)
class ByteLevelDecoder:
    """HF `ByteLevel` decoder: characters back to bytes, then UTF-8 with U+FFFD for bad bytes.

    A token spelled outside the byte alphabet (an added token such as `中`) keeps its own bytes.
    """

    def __call__(self, tokens: list[str]) -> str:
        table = unicode_to_bytes()
        data = bytearray()
        for t in tokens:
            in_alphabet = all(c in table for c in t)
            data += bytes(table[c] for c in t) if in_alphabet else t.encode("utf-8")
        return data.decode("utf-8", errors="replace")

    def to_json(self) -> dict[str, Any]:
        return {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True,
                "use_regex": True}


def bert_cleanup(text: str) -> str:
    """HF's WordPiece `cleanup`: glue punctuation and English contractions to the word before."""
    for dirty, clean in ((" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"),
                         (" n't", "n't"), (" 'm", "'m"), (" do not", " don't"), (" 's", "'s"),
                         (" 've", "'ve"), (" 're", "'re")):
        text = text.replace(dirty, clean)
    return text


@dataclass(frozen=True)
class WordPieceDecoder:
    """HF `WordPiece` decoder: `##x` continues the previous token, other tokens start a word."""

    prefix: str = "##"
    cleanup: bool = False

    def __call__(self, tokens: list[str]) -> str:
        out = []
        for i, t in enumerate(tokens):
            if i > 0:
                t = t.replace(self.prefix, "", 1) if t.startswith(self.prefix) else " " + t
            out.append(bert_cleanup(t) if self.cleanup else t)
        return "".join(out)

    def to_json(self) -> dict[str, Any]:
        return {"type": "WordPiece", "prefix": self.prefix, "cleanup": self.cleanup}


DECODERS: dict[str, Callable[[dict[str, Any]], Decoder]] = {
    "BPEDecoder": lambda d: SuffixDecoder(d.get("suffix", "</w>")),
    "ByteLevel": lambda d: ByteLevelDecoder(),
    "WordPiece": lambda d: WordPieceDecoder(d.get("prefix", "##"), d.get("cleanup", True)),
}


def decoder_from_json(d: dict[str, Any] | None) -> Decoder:
    """Build the decoder a `tokenizer.json` names (None: join tokens with spaces)."""
    if d is None:
        return JoinWithSpaces()
    kind = d.get("type")
    if kind not in DECODERS:
        raise TokenizerError(f"unsupported decoder type {kind!r}; supported: {sorted(DECODERS)}")
    return DECODERS[kind](d)
