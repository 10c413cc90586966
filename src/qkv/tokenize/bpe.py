"""Byte-pair encoding over characters: the classic scheme of Sennrich, Haddow & Birch (2016),
"Neural Machine Translation of Rare Words with Subword Units".

Words come from HF's `Whitespace` pre-tokeniser after NFC; each word is spelled in characters,
its last one marked with the end-of-word suffix `</w>` (so `s</w>` at the end of "cats" and `s`
inside "cast" are different symbols), and training learns which adjacent symbols to fuse.
Characters never seen in training become `<unk>`.

Documented normalisation: `decode(encode(s))` is the NFC form of `s`, cut into words and
punctuation runs, joined by single spaces; unknown characters come back as nothing.
"""

from __future__ import annotations

import heapq
from typing import Any, Iterable, Mapping, Sequence

from qkv.tokenize.base import Pipeline, Tokenizer, check_vocab_size, count_words, wrap_template
from qkv.tokenize.decode import SuffixDecoder
from qkv.tokenize.errors import TokenizerError
from qkv.tokenize.merges import MergeLog, Pair, learn_merges, spell_words
from qkv.tokenize.normalize import NFC
from qkv.tokenize.pretokenize import Whitespace

DEFAULT_SPECIALS = ("<pad>", "<unk>", "<s>", "</s>")


def apply_merges(symbols: list[int], ranks: Mapping[Pair, tuple[int, int]]) -> list[int]:
    """Merge a word's symbols as HF's `Word::merge_all` does.

    Always apply the lowest-rank merge available, the leftmost one first. A heap of
    (rank, position, new id) holds the candidates; symbols form a linked list so positions stay
    valid when neighbours fuse; an entry whose pair has since changed is skipped.
    `ranks` maps a pair of ids to (rank, id of the merged token).
    """
    n = len(symbols)
    ids, alive = list(symbols), [True] * n
    nxt, prv = list(range(1, n + 1)), list(range(-1, n - 1))
    heap = [(ranks[p][0], i, ranks[p][1]) for i, p in enumerate(zip(ids, ids[1:])) if p in ranks]
    heapq.heapify(heap)
    while heap:
        _, i, new = heapq.heappop(heap)
        j = nxt[i]
        if not alive[i] or j >= n:
            continue  # merged into its left neighbour, or now the last symbol
        current = ranks.get((ids[i], ids[j]))
        if current is None or current[1] != new:
            continue  # expired: a neighbour changed since this entry was pushed
        ids[i], alive[j], nxt[i] = new, False, nxt[j]
        if nxt[i] < n:
            prv[nxt[i]] = i
        if prv[i] >= 0 and (m := ranks.get((ids[prv[i]], new))):
            heapq.heappush(heap, (m[0], prv[i], m[1]))
        if nxt[i] < n and (m := ranks.get((new, ids[nxt[i]]))):
            heapq.heappush(heap, (m[0], i, m[1]))
    return [s for s, keep in zip(ids, alive) if keep]


class BPE(Tokenizer):
    """Character-level BPE with `</w>` end-of-word suffixes (Sennrich et al. 2016)."""

    kind = "bpe"

    def __init__(self, vocab: Mapping[str, int], merges: Sequence[tuple[str, str]], *,
                 special_tokens: Sequence[str] = DEFAULT_SPECIALS, unk_token: str | None = "<unk>",
                 end_of_word_suffix: str | None = "</w>",
                 continuing_subword_prefix: str | None = None, fuse_unk: bool = False,
                 pipeline: Pipeline | None = None) -> None:
        pipeline = pipeline or self.default_pipeline(special_tokens, end_of_word_suffix)
        super().__init__(vocab, special_tokens, pipeline)
        if unk_token is not None and unk_token not in self.vocab:
            raise TokenizerError(f"unk_token {unk_token!r} is not in the vocabulary")
        self.unk_token, self.fuse_unk = unk_token, fuse_unk
        self.suffix, self.prefix = end_of_word_suffix or "", continuing_subword_prefix or ""
        self.merges = [tuple(m) for m in merges]
        self.ranks: dict[Pair, tuple[int, int]] = {}
        for rank, (a, b) in enumerate(self.merges):
            merged = a + (b[len(self.prefix):] if self.prefix and b.startswith(self.prefix) else b)
            for t in (a, b, merged):
                if t not in self.vocab:
                    raise TokenizerError(f"merge {a!r} + {b!r}: {t!r} is not in the vocabulary")
            # A pair listed twice keeps its later rank, as in HF.
            self.ranks[self.vocab[a], self.vocab[b]] = (rank, self.vocab[merged])
        self.train_log: MergeLog | None = None

    @staticmethod
    def default_pipeline(special_tokens: Sequence[str], suffix: str | None = "</w>") -> Pipeline:
        return Pipeline(NFC(), Whitespace(), wrap_template(special_tokens),
                        SuffixDecoder(suffix or ""))

    @classmethod
    def train(cls, texts: Iterable[str], vocab_size: int,
              special_tokens: Sequence[str] = DEFAULT_SPECIALS, *, min_frequency: int = 0
              ) -> "BPE":
        """Learn merges on `texts` until the vocabulary holds `vocab_size` tokens."""
        specials = list(special_tokens)
        word_counts = count_words(texts, cls.default_pipeline(specials))
        vocab, words, counts = spell_words(word_counts, specials, end_suffix="</w>")
        check_vocab_size(vocab_size, len(vocab), "specials, characters, characters + '</w>'")
        merges, log = learn_merges(words, counts, vocab, vocab_size, min_frequency=min_frequency)
        tok = cls({t: i for i, t in enumerate(vocab)}, [(vocab[a], vocab[b]) for a, b in merges],
                  special_tokens=specials, unk_token="<unk>" if "<unk>" in specials else None)
        tok.train_log = log
        return tok

    def _initial_symbols(self, word: str) -> list[int]:
        """One symbol per character, marked by position; unknown ones become the unk id."""
        symbols: list[int] = []
        last_was_unk = False
        for k, c in enumerate(word):
            s = (self.prefix if k > 0 else "") + c + (self.suffix if k == len(word) - 1 else "")
            if s in self.vocab:
                symbols.append(self.vocab[s])
                last_was_unk = False
            elif self.unk_token is not None:  # without an unk token HF drops the character
                if not (self.fuse_unk and last_was_unk):
                    symbols.append(self.vocab[self.unk_token])
                last_was_unk = True
        return symbols

    def _encode_word(self, word: str) -> list[int]:
        return apply_merges(self._initial_symbols(word), self.ranks)

    def _model_json(self) -> dict[str, Any]:
        return {
            "type": "BPE",
            "dropout": None,
            "unk_token": self.unk_token,
            "continuing_subword_prefix": self.prefix or None,
            "end_of_word_suffix": self.suffix or None,
            "fuse_unk": self.fuse_unk,
            "byte_fallback": False,
            "ignore_merges": False,
            "vocab": self.vocab,
            "merges": [list(m) for m in self.merges],
        }
