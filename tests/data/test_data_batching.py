"""Token-budget batching: coverage, budget, determinism, resumption, and less padding."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from qkv.data import TokenBudgetBatchSampler, lm_chunks


def _lengths(n: int = 5000, seed: int = 0) -> list[int]:
    return np.random.default_rng(seed).integers(1, 120, size=n).tolist()


def _check_epoch(sampler: TokenBudgetBatchSampler, lengths: list[int]) -> list[list[int]]:
    batches = list(sampler)
    flat = sorted(i for batch in batches for i in batch)
    assert flat == list(range(len(lengths)))  # every example exactly once
    for batch in batches:
        assert len(batch) * max(lengths[i] for i in batch) <= sampler.max_tokens
    return batches


def test_covers_every_example_once_within_budget():
    lengths = _lengths()
    sampler = TokenBudgetBatchSampler(lengths, max_tokens=2000, seed=1)
    for epoch in range(3):
        sampler.set_epoch(epoch)
        _check_epoch(sampler, lengths)


def test_same_seed_and_epoch_same_batches_others_differ():
    lengths = _lengths()
    a = TokenBudgetBatchSampler(lengths, max_tokens=2000, seed=7)
    b = TokenBudgetBatchSampler(lengths, max_tokens=2000, seed=7)
    a.set_epoch(4), b.set_epoch(4)
    assert list(a) == list(b)
    b.set_epoch(5)
    assert list(a) != list(b)
    c = TokenBudgetBatchSampler(lengths, max_tokens=2000, seed=8)
    c.set_epoch(4)
    assert list(a) != list(c)


def test_resume_mid_epoch_skips_exactly_k_batches():
    lengths = _lengths()
    sampler = TokenBudgetBatchSampler(lengths, max_tokens=2000, seed=3)
    sampler.set_epoch(2)
    full = list(sampler)
    resumed = TokenBudgetBatchSampler(lengths, max_tokens=2000, seed=3)
    resumed.set_epoch(2, start_batch=17)
    assert list(resumed) == full[17:]
    assert len(resumed) == len(full) - 17


def test_max_sentences_caps_batch_size():
    lengths = [3] * 1000
    sampler = TokenBudgetBatchSampler(lengths, max_tokens=10_000, max_sentences=32)
    batches = _check_epoch(sampler, lengths)
    assert max(len(b) for b in batches) == 32


def test_length_sorting_cuts_padding():
    lengths = _lengths(20_000)
    sampler = TokenBudgetBatchSampler(lengths, max_tokens=4000, seed=0)
    batches = list(sampler)
    padded = sum(len(b) * max(lengths[i] for i in b) for b in batches)
    assert padded / sum(lengths) < 1.1
    # The same batch sizes over a random order pad far more.
    order = np.random.default_rng(0).permutation(len(lengths)).tolist()
    random_padded, start = 0, 0
    for b in batches:
        chunk = order[start:start + len(b)]
        random_padded += len(chunk) * max(lengths[i] for i in chunk)
        start += len(b)
    assert random_padded / sum(lengths) > 1.5


def test_unshuffled_order_ignores_seed_and_epoch():
    lengths = _lengths(500)
    a = TokenBudgetBatchSampler(lengths, max_tokens=1000, shuffle=False, seed=1)
    b = TokenBudgetBatchSampler(lengths, max_tokens=1000, shuffle=False, seed=2)
    b.set_epoch(9)
    assert list(a) == list(b)


def test_example_over_budget_is_an_error():
    with pytest.raises(ValueError, match="example 1"):
        TokenBudgetBatchSampler([5, 50, 5], max_tokens=40)


def test_works_as_a_dataloader_batch_sampler():
    lengths = _lengths(300)
    sampler = TokenBudgetBatchSampler(lengths, max_tokens=600, seed=0)
    loader = torch.utils.data.DataLoader(list(range(300)), batch_sampler=sampler,
                                         collate_fn=lambda xs: xs)
    seen = sorted(i for batch in loader for i in batch)
    assert seen == list(range(300))
    assert len(loader) == len(list(sampler))


@settings(max_examples=60, deadline=None)
@given(lengths=st.lists(st.integers(1, 50), min_size=1, max_size=200),
       max_tokens=st.integers(50, 400), max_sentences=st.one_of(st.none(), st.integers(1, 20)),
       pool_size=st.integers(1, 64), seed=st.integers(0, 3), epoch=st.integers(0, 3))
def test_property_coverage_and_budget(lengths, max_tokens, max_sentences, pool_size, seed, epoch):
    sampler = TokenBudgetBatchSampler(lengths, max_tokens, max_sentences=max_sentences,
                                      pool_size=pool_size, seed=seed)
    sampler.set_epoch(epoch)
    batches = _check_epoch(sampler, lengths)
    if max_sentences is not None:
        assert all(len(b) <= max_sentences for b in batches)


def test_lm_chunks_are_contiguous_and_predict_each_token_once():
    stream = torch.arange(103)
    chunks = lm_chunks(stream, context=10)
    assert chunks.shape == (10, 11)
    for i, chunk in enumerate(chunks):
        assert torch.equal(chunk, torch.arange(10 * i, 10 * i + 11))
    targets = chunks[:, 1:].reshape(-1)
    assert torch.equal(targets, torch.arange(1, 101))
    with pytest.raises(ValueError):
        lm_chunks(torch.arange(5), context=10)
