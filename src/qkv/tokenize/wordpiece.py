"""WordPiece: BERT's subword vocabulary (Schuster & Nakajima 2012, "Japanese and Korean Voice
Search"; Wu et al. 2016, "Google's Neural Machine Translation System", section 4.1).

Text goes through BERT's normaliser (control characters removed, whitespace unified, spaces put
around each CJK ideograph so Chinese is split into characters) and BERT's pre-tokeniser (split on
whitespace, each punctuation character alone). Inside a word, pieces after the first carry the
`##` continuation prefix. Encoding is greedy longest-match-first; a word that cannot be covered
entirely becomes `[UNK]`.

Training grows the vocabulary by merging the pair with the best *likelihood* score,
count(ab) / (count(a) count(b)) — the increase in the training data's likelihood under a unigram
model. `score="frequency"` gives BPE's count instead, which is what HF's `WordPieceTrainer` does
(its vocabulary is therefore comparable only to ours trained that way). Only the vocabulary is
saved: WordPiece encoding needs no merge list.

Which score to use: the likelihood score prefers pairs whose parts rarely occur apart, so at a
small vocabulary it spends the budget on spelling out rare words while frequent ones stay split
(on SST-2 at 8k, "the" and "new" stay in letters; the measured cost to a classifier is in
docs/benchmarks.md, from `benchmarks/sst2_vocab_probe.py`). The
likelihood score stays the default because it is the algorithm this class documents; the SST-2
presets train with `score="frequency"`.

Documented normalisation: for text made of known characters, `decode(encode(s))` is the
BERT-normalised `s` cut into words and punctuation, joined by single spaces (HF's `cleanup` of
" ." etc. is off, so this holds exactly).
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence

from qkv.tokenize.base import Pipeline, Tokenizer, check_vocab_size, count_words, wrap_template
from qkv.tokenize.decode import WordPieceDecoder
from qkv.tokenize.errors import TokenizerError
from qkv.tokenize.merges import SCORES, MergeLog, learn_merges, spell_words
from qkv.tokenize.normalize import BertNormalizer
from qkv.tokenize.pretokenize import BertPreTokenizer

DEFAULT_SPECIALS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


class WordPiece(Tokenizer):
    """BERT-style WordPiece with `##` continuation pieces and `[UNK]` for uncoverable words."""

    kind = "wordpiece"

    def __init__(self, vocab: Mapping[str, int], *,
                 special_tokens: Sequence[str] = DEFAULT_SPECIALS, unk_token: str = "[UNK]",
                 continuing_subword_prefix: str = "##", max_input_chars_per_word: int = 100,
                 pipeline: Pipeline | None = None) -> None:
        super().__init__(vocab, special_tokens, pipeline or self.default_pipeline(special_tokens))
        if unk_token not in self.vocab:
            raise TokenizerError(f"unk_token {unk_token!r} is not in the vocabulary")
        self.unk_token, self.prefix = unk_token, continuing_subword_prefix
        self.max_input_chars_per_word = max_input_chars_per_word
        # No piece is longer than this, so the longest-match search can start there.
        self._longest = max(map(len, self.vocab))
        self.train_log: MergeLog | None = None

    @staticmethod
    def default_pipeline(special_tokens: Sequence[str], lowercase: bool = False) -> Pipeline:
        return Pipeline(BertNormalizer(lowercase=lowercase), BertPreTokenizer(),
                        wrap_template(special_tokens), WordPieceDecoder("##", cleanup=False))

    @classmethod
    def train(cls, texts: Iterable[str], vocab_size: int,
              special_tokens: Sequence[str] = DEFAULT_SPECIALS, *, score: str = "likelihood",
              lowercase: bool = False, min_frequency: int = 0) -> "WordPiece":
        """Learn a vocabulary of `vocab_size` pieces; `lowercase=True` gives BERT-uncased text
        handling (lowercase and strip accents)."""
        if score not in SCORES:
            raise TokenizerError(f"score={score!r} is not one of {sorted(SCORES)}")
        specials = list(special_tokens)
        if "[UNK]" not in specials:
            raise TokenizerError("WordPiece needs '[UNK]' among the special tokens")
        pipeline = cls.default_pipeline(specials, lowercase)
        word_counts = count_words(texts, pipeline)
        vocab, words, counts = spell_words(word_counts, specials, continuing_prefix="##")
        check_vocab_size(vocab_size, len(vocab), "specials, characters, '##' + characters")
        _, log = learn_merges(words, counts, vocab, vocab_size, score=score,
                              min_frequency=min_frequency, continuing_prefix="##")
        tok = cls({t: i for i, t in enumerate(vocab)}, special_tokens=specials, pipeline=pipeline)
        tok.train_log = log
        return tok

    def _encode_word(self, word: str) -> list[int]:
        """Greedy longest-match-first, as HF's `WordPiece::tokenize`."""
        if len(word) > self.max_input_chars_per_word:
            return [self.vocab[self.unk_token]]
        ids, start = [], 0
        while start < len(word):
            for end in range(min(len(word), start + self._longest), start, -1):
                piece = (self.prefix if start > 0 else "") + word[start:end]
                if piece in self.vocab:
                    ids.append(self.vocab[piece])
                    start = end
                    break
            else:  # no piece fits here: the whole word is unknown
                return [self.vocab[self.unk_token]]
        return ids

    def _model_json(self) -> dict[str, Any]:
        return {
            "type": "WordPiece",
            "unk_token": self.unk_token,
            "continuing_subword_prefix": self.prefix,
            "max_input_chars_per_word": self.max_input_chars_per_word,
            "vocab": self.vocab,
        }
