"""The trainers: agreement with HF's trainers, and the incremental loop against a full recount.

Tie rule (both libraries): the highest score wins, equal scores go to the lowest
(left id, right id). Ids agree with HF's except for the position-marked variants (`x</w>`,
`##x`), which HF numbers in hash-map order, different on every run. So:
- ByteBPE has no such variants: the merge lists must agree entirely.
- BPE and WordPiece(score="frequency") must agree on every merge before the first tie.
"""

from __future__ import annotations

import json
from collections import Counter

import pytest

from qkv.tokenize import BPE, ByteBPE, WordPiece
from qkv.tokenize.merges import SCORES, learn_merges, spell_words


def hf_model(fast) -> dict:
    return json.loads(fast.hf.to_str())["model"]


def test_byte_bpe_merges_equal_hf_entirely(qkv_trained, hf_trained):
    ours = qkv_trained["byte_bpe"]
    theirs = [tuple(m) for m in hf_model(hf_trained["byte_bpe"])["merges"]]
    assert ours.train_log.first_tie is not None  # ties happened and were broken the same way
    assert ours.merges == theirs
    assert ours.vocab == hf_model(hf_trained["byte_bpe"])["vocab"]


def test_bpe_merges_equal_hf_before_first_tie(qkv_trained, hf_trained):
    ours = qkv_trained["bpe"]
    theirs = [tuple(m) for m in hf_model(hf_trained["bpe"])["merges"]]
    tie = ours.train_log.first_tie
    assert tie is not None and tie > 20, "too few untied merges for a meaningful comparison"
    assert ours.merges[:tie] == theirs[:tie]
    assert len(ours.merges) == len(theirs)  # same stopping rule


def test_wordpiece_frequency_vocab_equals_hf_before_first_tie(train_lines, hf_trained):
    """HF's WordPieceTrainer merges by frequency; compare the merged tokens in learned order."""
    ours = WordPiece.train(train_lines, 3000, score="frequency")
    theirs = sorted(hf_model(hf_trained["wordpiece"])["vocab"].items(), key=lambda kv: kv[1])
    start = ours.vocab_size - len(ours.train_log.scores)  # first merged token's id
    learned = sorted(ours.vocab, key=ours.vocab.get)[start:]
    assert set(ours.vocab) - set(learned) == {t for t, _ in theirs[:start]}  # same alphabet
    tie = ours.train_log.first_tie
    assert tie is not None and tie > 20
    assert learned[:tie] == [t for t, _ in theirs[start:start + tie]]


def naive_merges(words, counts, vocab, vocab_size, score, prefix=None):
    """The textbook loop: recount every pair after every merge (slow, obviously right)."""
    words, vocab, merges = [list(w) for w in words], list(vocab), []
    while len(vocab) < vocab_size:
        pairs, symbols = Counter(), Counter()
        for word, count in zip(words, counts):
            for s in word:
                symbols[s] += count
            for pair in zip(word, word[1:]):
                pairs[pair] += count
        if not pairs:
            break
        value = {p: SCORES[score].fn(n, symbols[p[0]], symbols[p[1]]) for p, n in pairs.items()}
        a, b = max(pairs, key=lambda p: (value[p], -p[0], -p[1]))
        right = vocab[b][len(prefix):] if prefix and vocab[b].startswith(prefix) else vocab[b]
        if vocab[a] + right not in vocab:
            vocab.append(vocab[a] + right)
        new = vocab.index(vocab[a] + right)
        for word in words:
            i = 0
            while i < len(word) - 1:
                if word[i] == a and word[i + 1] == b:
                    word[i:i + 2] = [new]
                i += 1
        merges.append((a, b))
    return merges, vocab


@pytest.mark.parametrize("score,prefix,suffix", [("frequency", None, "</w>"),
                                                 ("likelihood", "##", None)])
def test_incremental_counts_equal_full_recount(train_lines, score, prefix, suffix):
    word_counts = Counter(w for line in train_lines[:300] + train_lines[-100:]
                          for w in line.split())
    vocab, words, counts = spell_words(dict(word_counts), ["<unk>"], continuing_prefix=prefix,
                                       end_suffix=suffix)
    size = len(vocab) + 150
    expected = naive_merges(words, counts, vocab, size, score, prefix)
    got_vocab = list(vocab)
    got = learn_merges([list(w) for w in words], counts, got_vocab, size, score=score,
                       continuing_prefix=prefix)[0]
    assert (got, got_vocab) == expected


def test_likelihood_prefers_pairs_that_rarely_occur_apart():
    """By hand: `##e ##r` is the most frequent pair (20), so frequency merges it first; but `q`
    and `##u` never occur apart, so their score 3 / (3 * 3) = 1/3 beats every other pair's."""
    texts = ["queen quiet quote"] + ["her over other error energy eye see tree"] * 5
    frequency = WordPiece.train(texts, 80, score="frequency")
    likelihood = WordPiece.train(texts, 80, score="likelihood")

    def first_merged(tok):
        return sorted(tok.vocab, key=tok.vocab.get)[tok.vocab_size - len(tok.train_log.scores)]

    assert (first_merged(frequency), frequency.train_log.scores[0]) == ("##er", 20)
    assert (first_merged(likelihood), likelihood.train_log.scores[0]) == ("qu", 1 / 3)


def test_training_is_deterministic(train_lines):
    a, b = BPE.train(train_lines[:2000], 800), BPE.train(train_lines[:2000], 800)
    assert a.to_json() == b.to_json()


def test_min_frequency_stops_early(train_lines):
    tok = ByteBPE.train(train_lines[:500], 5000, min_frequency=5)
    assert tok.vocab_size < 5000 and min(tok.train_log.scores) >= 5
