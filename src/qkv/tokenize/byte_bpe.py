"""Byte-level BPE, as in GPT-2 (Radford et al. 2019, "Language Models are Unsupervised
Multitask Learners", section 2.2).

Text is split by GPT-2's regex, each piece is written as its UTF-8 bytes, and each byte as one
of 256 printable characters (space -> `Ġ`). BPE then runs over those characters. Because the
256 byte-characters are always in the vocabulary, any string — Chinese, emoji, control
characters — encodes without an unknown token, and `decode(encode(s)) == s` exactly: there is
no normaliser to lose information.
"""

from __future__ import annotations

from typing import Iterable, Mapping, Sequence

from qkv.tokenize.base import Pipeline, check_vocab_size, count_words, wrap_template
from qkv.tokenize.bpe import DEFAULT_SPECIALS, BPE
from qkv.tokenize.decode import ByteLevelDecoder
from qkv.tokenize.merges import learn_merges, spell_words
from qkv.tokenize.normalize import Identity
from qkv.tokenize.pretokenize import ByteLevel, bytes_to_unicode


class ByteBPE(BPE):
    """GPT-2-style byte-level BPE: no unknown token, exact round trip."""

    kind = "byte_bpe"

    def __init__(self, vocab: Mapping[str, int], merges: Sequence[tuple[str, str]], *,
                 special_tokens: Sequence[str] = DEFAULT_SPECIALS,
                 pipeline: Pipeline | None = None) -> None:
        super().__init__(vocab, merges, special_tokens=special_tokens, unk_token=None,
                         end_of_word_suffix=None,
                         pipeline=pipeline or self.default_pipeline(special_tokens))

    @staticmethod
    def default_pipeline(special_tokens: Sequence[str], suffix: str | None = None) -> Pipeline:
        return Pipeline(Identity(), ByteLevel(add_prefix_space=False),
                        wrap_template(special_tokens), ByteLevelDecoder())

    @classmethod
    def train(cls, texts: Iterable[str], vocab_size: int,
              special_tokens: Sequence[str] = DEFAULT_SPECIALS, *, min_frequency: int = 0
              ) -> "ByteBPE":
        """Learn merges over byte-characters; all 256 bytes are in the vocabulary from the start."""
        specials = list(special_tokens)
        word_counts = count_words(texts, cls.default_pipeline(specials))
        alphabet = tuple(bytes_to_unicode().values())
        vocab, words, counts = spell_words(word_counts, specials, initial_alphabet=alphabet)
        check_vocab_size(vocab_size, len(vocab), "specials and the 256 bytes")
        merges, log = learn_merges(words, counts, vocab, vocab_size, min_frequency=min_frequency)
        tok = cls({t: i for i, t in enumerate(vocab)}, [(vocab[a], vocab[b]) for a, b in merges],
                  special_tokens=specials)
        tok.train_log = log
        return tok
