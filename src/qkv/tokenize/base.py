"""The pipeline shared by every qkv tokenizer, in Hugging Face's order of steps:

    text ─► split out special tokens ─► normalise ─► pre-tokenise into words
         ─► model: each word to ids (BPE merges / WordPiece longest match), cached per word
         ─► post-process: template of special tokens, e.g. <s> … </s>

Subclasses supply the model (`_encode_word`, `_model_json`); everything else, including the
`tokenizer.json` layout, lives here so the three kinds cannot drift apart.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections import Counter
from dataclasses import dataclass
from typing import Any, ClassVar, Iterable, Mapping, Sequence

from qkv.tokenize.decode import Decoder
from qkv.tokenize.errors import TokenizerError
from qkv.tokenize.normalize import Normalizer
from qkv.tokenize.postprocess import Template
from qkv.tokenize.pretokenize import PreTokenizer

# Role -> the names that play it, in qkv's and in BERT's spelling.
SPECIAL_ROLES: dict[str, tuple[str, ...]] = {
    "pad": ("<pad>", "[PAD]"),
    "unk": ("<unk>", "[UNK]"),
    "bos": ("<s>", "[CLS]"),
    "eos": ("</s>", "[SEP]"),
    "mask": ("<mask>", "[MASK]"),
}
_CACHE_LIMIT = 200_000  # words; cleared when full, so memory stays bounded on endless streams
_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True)
class Pipeline:
    """Everything around the model; each part is written into `tokenizer.json` under HF's name."""

    normalizer: Normalizer
    pre_tokenizer: PreTokenizer
    template: Template
    decoder: Decoder


def wrap_template(special_tokens: Sequence[str]) -> Template:
    """`<s> $A </s>` (or `[CLS] $A [SEP]`) when both tokens are among the specials, else nothing."""
    bos = next((t for t in SPECIAL_ROLES["bos"] if t in special_tokens), None)
    eos = next((t for t in SPECIAL_ROLES["eos"] if t in special_tokens), None)
    return Template((bos,), (eos,)) if bos and eos else Template()


def count_words(texts: Iterable[str], pipeline: Pipeline) -> Counter[str]:
    """Word frequencies after normalisation and pre-tokenisation: what every trainer starts from.

    Special tokens in training text are ordinary text here, as in HF's `Tokenizer.train`.
    """
    if isinstance(texts, str):
        raise TokenizerError("texts must be an iterable of strings, not one string")
    counts: Counter[str] = Counter()
    for text in texts:
        counts.update(pipeline.pre_tokenizer(pipeline.normalizer(text)))
    if not counts:
        raise TokenizerError("empty corpus: no words left after normalisation and pre-tokenisation")
    return counts


def check_vocab_size(vocab_size: int, initial: int, what: str) -> None:
    if vocab_size < initial:
        raise TokenizerError(
            f"vocab_size={vocab_size} is smaller than the {initial} symbols every vocabulary "
            f"needs before any merge ({what}); ask for at least {initial}")


class Tokenizer(ABC):
    """Base class: special tokens, vocabulary, encode/decode, `tokenizer.json` output."""

    kind: ClassVar[str]

    def __init__(self, vocab: Mapping[str, int], special_tokens: Sequence[str],
                 pipeline: Pipeline) -> None:
        self.vocab: dict[str, int] = dict(vocab)
        if not self.vocab:
            raise TokenizerError("empty vocabulary")
        for t in special_tokens:
            if t not in self.vocab:
                raise TokenizerError(f"special token {t!r} is not in the vocabulary")
        self.id_to_token: dict[int, str] = {i: t for t, i in self.vocab.items()}
        if len(self.id_to_token) != len(self.vocab):
            raise TokenizerError("vocabulary maps two tokens to the same id")
        self.special_tokens: list[str] = list(special_tokens)
        self.special_ids: set[int] = {self.vocab[t] for t in special_tokens}
        self.pipeline = pipeline
        for t in pipeline.template.before + pipeline.template.after:
            if t not in self.special_tokens:
                raise TokenizerError(f"post-processing template uses {t!r}, not a special token")
        # Leftmost-longest match, as HF's added-token splitter does.
        longest_first = sorted(special_tokens, key=len, reverse=True)
        self._specials_re = re.compile("|".join(map(re.escape, longest_first))) if longest_first \
            else None
        self._cache: dict[str, list[int]] = {}
        # The ids models need; None where the tokenizer has no such token.
        self.vocab_size: int = max(self.id_to_token) + 1
        self.pad_id, self.unk_id, self.bos_id, self.eos_id, self.mask_id = (
            self._role_id(role) for role in ("pad", "unk", "bos", "eos", "mask"))

    def _role_id(self, role: str) -> int | None:
        return next((self.vocab[t] for t in SPECIAL_ROLES[role] if t in self.special_tokens), None)

    # -- the model: one pre-tokenised word to ids -------------------------------------------
    @abstractmethod
    def _encode_word(self, word: str) -> list[int]:
        """Ids of one pre-tokenised word (each kind's model: BPE merges or WordPiece matching)."""

    @abstractmethod
    def _model_json(self) -> dict[str, Any]:
        """The ``model`` section of tokenizer.json for this kind."""

    # -- encoding ---------------------------------------------------------------------------
    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        """Token ids of `text`, equal to HF's `Tokenizer.encode(text).ids` for our json."""
        if (bad := _SURROGATE.search(text)) is not None:
            # Python strings can hold these (e.g. from errors="surrogateescape"), Unicode text
            # cannot: there is no UTF-8 for them, and HF refuses such strings too.
            raise TokenizerError(f"text holds a lone surrogate U+{ord(bad.group()):04X} at "
                                 f"index {bad.start()}: not valid Unicode text")
        ids: list[int] = []
        for chunk, is_special in self._split_specials(text):
            if is_special:
                ids.append(self.vocab[chunk])
                continue
            for word in self.pipeline.pre_tokenizer(self.pipeline.normalizer(chunk)):
                ids += self._encode_word_cached(word)
        return self.pipeline.template.apply(ids, self.vocab) if add_special_tokens else ids

    def encode_batch(self, texts: Sequence[str], add_special_tokens: bool = True
                     ) -> list[list[int]]:
        return [self.encode(t, add_special_tokens) for t in texts]

    def tokens(self, text: str, add_special_tokens: bool = False) -> list[str]:
        """The pieces `text` is cut into, as vocabulary strings (for showing, not for models)."""
        return [self.id_to_token[i] for i in self.encode(text, add_special_tokens)]

    encode_pieces = tokens

    def _split_specials(self, text: str) -> list[tuple[str, bool]]:
        """Cut special tokens out of the raw text first, so `<s>` typed in text stays one id."""
        if self._specials_re is None:
            return [(text, False)]
        chunks, start = [], 0
        for m in self._specials_re.finditer(text):
            if m.start() > start:
                chunks.append((text[start:m.start()], False))
            chunks.append((m.group(), True))
            start = m.end()
        if start < len(text):
            chunks.append((text[start:], False))
        return chunks

    def _encode_word_cached(self, word: str) -> list[int]:
        ids = self._cache.get(word)
        if ids is None:
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            ids = self._cache[word] = self._encode_word(word)
        return ids

    # -- decoding ---------------------------------------------------------------------------
    def decode(self, ids: Iterable[int], skip_special_tokens: bool = True) -> str:
        """Text for `ids`. Ids outside the vocabulary are skipped, as HF does."""
        tokens = [self.id_to_token[i] for i in ids if i in self.id_to_token
                  and not (skip_special_tokens and i in self.special_ids)]
        return self.pipeline.decoder(tokens)

    # -- tokenizer.json ---------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        """The whole tokenizer as HF's `tokenizer.json` object."""
        added = [{"id": self.vocab[t], "content": t, "single_word": False, "lstrip": False,
                  "rstrip": False, "normalized": False, "special": True}
                 for t in self.special_tokens]
        return {
            "version": "1.0",
            "truncation": None,
            "padding": None,
            "added_tokens": added,
            "normalizer": self.pipeline.normalizer.to_json(),
            "pre_tokenizer": self.pipeline.pre_tokenizer.to_json(),
            "post_processor": self.pipeline.template.to_json(self.vocab),
            "decoder": self.pipeline.decoder.to_json(),
            "model": self._model_json(),
        }

    def save(self, path: str) -> None:
        """Write `tokenizer.json` (HF format) atomically: a temporary file, then a rename."""
        from qkv.tokenize.io import write_json

        write_json(self.to_json(), path)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(vocab_size={self.vocab_size}, "
                f"special_tokens={self.special_tokens})")
