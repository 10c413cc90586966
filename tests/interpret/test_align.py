"""IBM Model 1 learns a word mapping from sentence pairs alone; link sets are scored by 1 − F1."""

from __future__ import annotations

import random

import torch

from qkv.interpret.align import IBMModel1, alignment_error, attention_links, diagonal_links


def corpus(n: int = 300):
    """Source words 0–9 translate to target words 100–109, in reversed order (so not diagonal)."""
    rng = random.Random(0)
    pairs = []
    for _ in range(n):
        src = rng.sample(range(10), rng.randint(3, 6))
        pairs.append((src, [100 + w for w in reversed(src)]))
    return pairs


def test_em_finds_the_translation_of_every_word():
    model = IBMModel1(corpus(), source_vocab=10, iterations=10)
    src = [3, 7, 1, 4]
    tgt = [104, 101, 107, 103]
    assert model.viterbi(src, tgt) == {(0, 3), (1, 2), (2, 1), (3, 0)}
    probs = model.prob(src, tgt)  # (T, S + 1), last column NULL
    assert probs.shape == (4, 5) and float(probs[0, 3]) > 0.5
    assert float(model.prob([3], [999])[0, 0]) == 0.0  # a pair never seen together


def test_alignment_error_and_the_diagonal_baseline():
    reference = {(0, 3), (1, 2), (2, 1), (3, 0)}
    assert alignment_error(reference, reference) == 0.0
    assert alignment_error(set(), reference) == 1.0
    assert alignment_error(diagonal_links(4, 4), reference) == 1.0  # reversed order: the diagonal misses all
    cross = torch.zeros(4, 4)
    cross[torch.arange(4), torch.tensor([3, 2, 1, 0])] = 1.0
    assert attention_links(cross) == reference
    assert attention_links(cross, keep=[0, 1]) == {(0, 3), (1, 2)}
