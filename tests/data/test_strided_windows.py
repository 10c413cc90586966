"""Strided (sliding-window) evaluation scores every target once, each with a long context."""

from __future__ import annotations

import pytest
import torch

from qkv.data import lm_chunks, strided_lm_windows
from qkv.errors import ConfigError


def scored(batch):
    """(stream index of each scored target, tokens of context before it)."""
    out = []
    T = batch["labels"].shape[1]
    for w, row in enumerate(batch["labels"]):
        for t in range(T):
            if row[t] != -100:
                out.append((int(row[t]), t))  # the stream is arange, so a label is its own index
    return out


def test_each_target_once_with_at_least_context_minus_stride_before_it():
    stream = torch.arange(41)
    batch = strided_lm_windows(stream, context=8, stride=3)
    targets = scored(batch)
    indices = [i for i, _ in targets]
    assert indices == list(range(1, 1 + len(indices)))  # each once, in order, none skipped
    assert len(indices) >= 41 - 1 - 3  # at most the tail shorter than one stride is left out
    assert all(before >= 8 - 3 for i, before in targets if i > 8)
    assert batch["input_ids"][1].tolist() == list(range(3, 11))  # windows start every stride


def test_stride_equal_to_the_context_is_the_non_overlapping_evaluation():
    stream = torch.arange(50)
    batch = strided_lm_windows(stream, context=7, stride=7)
    chunks = lm_chunks(stream, 7)
    assert torch.equal(batch["input_ids"], chunks[:, :-1]) and torch.equal(batch["labels"], chunks[:, 1:])


@pytest.mark.parametrize("stride", [0, 9])
def test_a_stride_outside_one_to_context_is_refused(stride):
    with pytest.raises(ConfigError, match=f"stride {stride} must be between 1 and the context 8"):
        strided_lm_windows(torch.arange(30), context=8, stride=stride)
