"""Learning merges: the training loop shared by `BPE`, `ByteBPE` and `WordPiece`.

Start from every word spelled as symbols, then repeatedly fuse the best-scoring adjacent pair
into a new symbol (Sennrich et al. 2016, "Neural Machine Translation of Rare Words with
Subword Units", Algorithm 1). The scores, one registry entry each:

- "frequency": how often the pair occurs (BPE; also what HF's `WordPieceTrainer` uses).
- "likelihood": count(ab) / (count(a) * count(b)), the gain in the unigram language model's
  likelihood from merging (WordPiece: Schuster & Nakajima 2012; Wu et al. 2016). It prefers
  pairs whose parts rarely occur apart.

Why it is fast enough for real corpora: we work on *unique* words weighted by their counts,
keep pair counts and a pair -> words index up to date after each merge (only the words holding
the merged pair are touched), and pick the best pair from a heap with lazy deletion: an entry
is trusted only if its stored score still equals the pair's current score.

Ties: the highest score wins; between equal scores the pair with the lowest (left id, right id)
wins. This is HF's rule too (`BpeTrainer`'s `Merge` ordering), so with the same ids both
trainers make the same choices.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Callable

from qkv.tokenize.errors import TokenizerError

Pair = tuple[int, int]


@dataclass(frozen=True)
class Score:
    """A merge score from (pair count, count of left symbol, count of right symbol)."""

    fn: Callable[[int, int, int], float]
    uses_symbol_counts: bool  # then merging (a, b) changes the score of every pair touching a or b


SCORES: dict[str, Score] = {
    "frequency": Score(lambda n_ab, n_a, n_b: n_ab, uses_symbol_counts=False),
    "likelihood": Score(lambda n_ab, n_a, n_b: n_ab / (n_a * n_b), uses_symbol_counts=True),
}


@dataclass
class MergeLog:
    """What training chose: per merge its score and whether another pair had the same score."""

    scores: list[float] = field(default_factory=list)
    tied: list[bool] = field(default_factory=list)

    @property
    def first_tie(self) -> int | None:
        """Index of the first merge decided by the tie-break rule (None: never)."""
        return next((i for i, t in enumerate(self.tied) if t), None)


def merge_word(word: list[int], a: int, b: int, new: int) -> list[tuple[Pair, int]]:
    """Replace each (a, b) in `word`, left to right without overlap, by `new`, in place.

    Returns the changes to pair counts: the pairs the merge destroyed (-1) and created (+1)
    around each occurrence. The pair (a, b) itself is the caller's business.
    """
    changes: list[tuple[Pair, int]] = []
    i = 0
    while i < len(word) - 1:
        if word[i] == a and word[i + 1] == b:
            if i > 0:
                changes += [((word[i - 1], a), -1), ((word[i - 1], new), 1)]
            word[i:i + 2] = [new]
            if i < len(word) - 1:
                changes += [((b, word[i + 1]), -1), ((new, word[i + 1]), 1)]
        i += 1
    return changes


class PairQueue:
    """Pair counts over weighted unique words, with a max-heap of candidate merges."""

    def __init__(self, words: list[list[int]], counts: list[int], score: Score,
                 min_count: int) -> None:
        self.words, self.counts, self.score_kind = words, counts, score
        self.min_count = max(1, min_count)
        self.pair_counts: dict[Pair, int] = defaultdict(int)
        self.where: dict[Pair, set[int]] = defaultdict(set)  # may hold stale words: harmless
        self.symbol_counts: dict[int, int] = defaultdict(int)
        self.pairs_with: dict[int, set[Pair]] = defaultdict(set)  # only for likelihood
        for i, (word, count) in enumerate(zip(words, counts)):
            for s in word:
                self.symbol_counts[s] += count
            for pair in zip(word, word[1:]):
                self.pair_counts[pair] += count
                self.where[pair].add(i)
        if score.uses_symbol_counts:
            for pair in self.pair_counts:
                self.pairs_with[pair[0]].add(pair)
                self.pairs_with[pair[1]].add(pair)
        self.heap = [(-s, p) for p in self.pair_counts if (s := self.score(p)) > 0]
        heapq.heapify(self.heap)

    def score(self, pair: Pair) -> float:
        n = self.pair_counts.get(pair, 0)
        if n < self.min_count:
            return 0
        return self.score_kind.fn(n, self.symbol_counts[pair[0]], self.symbol_counts[pair[1]])

    def _peek(self) -> tuple[float, Pair] | None:
        """The best pair with a trusted score, refreshing stale heap entries on the way."""
        while self.heap:
            stored, pair = self.heap[0]
            current = self.score(pair)
            if current == -stored:
                return current, pair
            if current > 0:
                heapq.heapreplace(self.heap, (-current, pair))
            else:
                heapq.heappop(self.heap)
        return None

    def pop_best(self) -> tuple[float, Pair, bool] | None:
        """(score, pair, tied): the pair to merge next, and whether the runner-up scores equal."""
        best = self._peek()
        if best is None:
            return None
        heapq.heappop(self.heap)
        while (runner_up := self._peek()) is not None and runner_up[1] == best[1]:
            heapq.heappop(self.heap)  # an older entry for the same pair
        tied = runner_up is not None and runner_up[0] == best[0]
        return best[0], best[1], tied

    def merge(self, pair: Pair, new: int) -> None:
        """Apply the merge in every word holding `pair`, updating counts incrementally."""
        a, b = pair
        touched: set[Pair] = set()
        for i in self.where.pop(pair, ()):
            word, count = self.words[i], self.counts[i]
            before = len(word)
            changes = merge_word(word, a, b, new)
            n = (before - len(word)) * count
            self.symbol_counts[a] -= n
            self.symbol_counts[b] -= n
            self.symbol_counts[new] += n
            for p, delta in changes:
                self.pair_counts[p] += delta * count
                if delta > 0:
                    self.where[p].add(i)
                    touched.add(p)
        del self.pair_counts[pair]
        if self.score_kind.uses_symbol_counts:
            for p in touched:
                self.pairs_with[p[0]].add(p)
                self.pairs_with[p[1]].add(p)
            for s in (a, b):  # count(s) shrank, so every pair touching s scores higher now
                alive = {p for p in self.pairs_with[s] if self.pair_counts.get(p, 0) > 0}
                self.pairs_with[s] = alive
                touched |= alive
        for p in touched:  # pairs whose score may have gone up need a fresh heap entry
            if (s := self.score(p)) > 0:
                heapq.heappush(self.heap, (-s, p))


def learn_merges(words: list[list[int]], counts: list[int], vocab: list[str], vocab_size: int,
                 *, score: str = "frequency", min_frequency: int = 0,
                 continuing_prefix: str | None = None) -> tuple[list[Pair], MergeLog]:
    """Merge pairs until `vocab` (extended in place) holds `vocab_size` tokens.

    `words` are symbol-id lists of the unique words, `counts` their frequencies. A merged token
    is left + right, minus the right part's continuation prefix (WordPiece's `##`). Stops early
    when no pair occurs `min_frequency` times (at least once).
    """
    if score not in SCORES:
        raise TokenizerError(f"score={score!r} is not one of {sorted(SCORES)}")
    queue = PairQueue(words, counts, SCORES[score], min_frequency)
    token_id = {t: i for i, t in enumerate(vocab)}
    merges: list[Pair] = []
    log = MergeLog()
    while len(vocab) < vocab_size and (best := queue.pop_best()) is not None:
        value, (a, b), tied = best
        right = vocab[b]
        if continuing_prefix and right.startswith(continuing_prefix):
            right = right[len(continuing_prefix):]
        new_token = vocab[a] + right
        if new_token not in token_id:  # two merges can spell the same string: reuse its id
            token_id[new_token] = len(vocab)
            vocab.append(new_token)
        queue.merge((a, b), token_id[new_token])
        merges.append((a, b))
        log.scores.append(value)
        log.tied.append(tied)
    return merges, log


def spell_words(word_counts: dict[str, int], special_tokens: list[str], *,
                continuing_prefix: str | None = None, end_suffix: str | None = None,
                initial_alphabet: tuple[str, ...] = ()
                ) -> tuple[list[str], list[list[int]], list[int]]:
    """The starting vocabulary, and every unique word spelled in its symbols' ids.

    Vocabulary order, which fixes the ids and so the tie-breaks: the special tokens; every
    character seen (plus `initial_alphabet`) by code point, as HF orders them; then the
    variants marking position, `##x` (continuation) or `x</w>` (end of word), by code point.
    HF gives those variants ids in hash-map order, which changes from run to run: the one
    place where its tie-breaks and ours can legitimately differ.
    """
    vocab = list(dict.fromkeys(special_tokens))
    seen = set(vocab)
    for c in sorted(set(initial_alphabet).union(*word_counts)):
        if c not in seen:
            vocab.append(c)
            seen.add(c)
    spelled = []
    for word in word_counts:
        symbols = list(word)
        if continuing_prefix:
            symbols[1:] = [continuing_prefix + c for c in symbols[1:]]
        if end_suffix:
            symbols[-1] += end_suffix
        spelled.append(symbols)
    vocab += sorted({s for symbols in spelled for s in symbols} - seen)
    token_id = {t: i for i, t in enumerate(vocab)}
    words = [[token_id[s] for s in symbols] for symbols in spelled]
    return vocab, words, list(word_counts.values())
