"""Batches by token budget, with examples of similar length together.

Padding wastes compute in proportion to the spread of lengths inside a batch, and a fixed
number of sentences per batch gives batches of wildly different memory cost. So, as in
fairseq and the Transformer paper's "batched together by approximate sequence length ...
approximately 25000 source tokens" (Vaswani et al. 2017, §5.1), batches are filled up to a
budget of *padded* tokens, ``batch_size * longest_in_batch``, from examples sorted by length.

Sorting the whole corpus would make every epoch the same sequence of batches, sorted short
to long; instead the shuffled corpus is cut into pools of ``pool_size`` examples, each pool
is sorted, and the batches are shuffled again. All randomness comes from
``numpy.random.default_rng((seed, epoch))``, so (seed, epoch) fixes the batches exactly and a
resumed run can skip the first k batches of an epoch and continue as if never stopped.
"""

from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np
import torch

from qkv.errors import ConfigError


def _greedy_batches(order: np.ndarray, lengths: np.ndarray, max_tokens: int,
                    max_sentences: int | None) -> list[list[int]]:
    """Cut ``order`` (indices sorted by length) into consecutive batches within the budget."""
    batches: list[list[int]] = []
    batch: list[int] = []
    longest = 0
    for index in order.tolist():
        new_longest = max(longest, int(lengths[index]))
        full = max_sentences is not None and len(batch) == max_sentences
        if batch and (full or (len(batch) + 1) * new_longest > max_tokens):
            batches.append(batch)
            batch, new_longest = [], int(lengths[index])
        batch.append(index)
        longest = new_longest
    if batch:
        batches.append(batch)
    return batches


class TokenBudgetBatchSampler:
    """Length-bucketed batch sampler: yields lists of example indices, one list per batch.

    Use as ``DataLoader(dataset, batch_sampler=sampler, collate_fn=...)`` and call
    ``set_epoch(epoch)`` before each epoch.

    Args:
        lengths: per-example padded length as the collator will build it (e.g. for
            translation ``max(len(src) + 1, len(tgt) + 1)`` to count the added eos/bos).
        max_tokens: budget for ``batch_size * max_length_in_batch``.
        max_sentences: optional cap on examples per batch.
        shuffle: shuffle pools and batch order; False gives a fixed, length-sorted-per-pool
            order (evaluation).
        seed: base seed; the generator is seeded with (seed, epoch).
        pool_size: examples sorted together; larger pools → less padding, less randomness.
    """

    def __init__(self, lengths: Sequence[int], max_tokens: int, *, max_sentences: int | None = None,
                 shuffle: bool = True, seed: int = 0, pool_size: int = 4096) -> None:
        self.lengths = np.asarray(lengths, dtype=np.int64)
        if self.lengths.ndim != 1 or len(self.lengths) == 0:
            raise ValueError("lengths must be a non-empty 1-D sequence")
        too_long = np.flatnonzero(self.lengths > max_tokens)
        if len(too_long):
            i = int(too_long[0])
            raise ConfigError(f"example {i} has length {self.lengths[i]} > max_tokens={max_tokens}; "
                             "filter or truncate it first")
        if max_sentences is not None and max_sentences < 1:
            raise ConfigError(f"max_sentences must be >= 1, got {max_sentences}")
        self.max_tokens, self.max_sentences = max_tokens, max_sentences
        self.shuffle, self.seed, self.pool_size = shuffle, seed, pool_size
        self.epoch, self.start_batch = 0, 0
        self._cached: tuple[int, list[list[int]]] | None = None

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        """Select the epoch's batches; skip the first ``start_batch`` of them (for resuming)."""
        self.epoch, self.start_batch = epoch, start_batch

    def batches(self, epoch: int) -> list[list[int]]:
        """All batches of ``epoch``, in order; a pure function of (lengths, settings, seed, epoch)."""
        rng = np.random.default_rng((self.seed, epoch))
        n = len(self.lengths)
        order = rng.permutation(n) if self.shuffle else np.arange(n)
        batches: list[list[int]] = []
        for start in range(0, n, self.pool_size):
            pool = order[start:start + self.pool_size]
            pool = pool[np.argsort(self.lengths[pool], kind="stable")]
            batches.extend(_greedy_batches(pool, self.lengths, self.max_tokens, self.max_sentences))
        if self.shuffle:
            batches = [batches[i] for i in rng.permutation(len(batches))]
        return batches

    def _epoch_batches(self) -> list[list[int]]:
        if self._cached is None or self._cached[0] != self.epoch:
            self._cached = (self.epoch, self.batches(self.epoch))
        return self._cached[1]

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self._epoch_batches()[self.start_batch:])

    def __len__(self) -> int:
        return max(0, len(self._epoch_batches()) - self.start_batch)


def lm_chunks(stream: torch.Tensor, context: int) -> torch.Tensor:
    """Cut a token stream into contiguous windows of ``context + 1`` tokens for LM training.

    Windows start every ``context`` tokens, so each one overlaps the next by a single token:
    window[:-1] are inputs, window[1:] targets, and every token after the first is a target
    exactly once. A tail shorter than a full window is dropped.

    Args: stream (N,) LongTensor; context T. Returns (M, T + 1) with M = (N - 1) // T.
    """
    if stream.dim() != 1:
        raise ValueError(f"stream must be 1-D, got shape {tuple(stream.shape)}")
    n_windows = (len(stream) - 1) // context
    if n_windows < 1:
        raise ConfigError(f"stream of {len(stream)} tokens is too short for context {context}")
    return stream.unfold(0, context + 1, context)[:n_windows]  # (M, T + 1)


def strided_lm_windows(stream: torch.Tensor, context: int, stride: int) -> dict[str, torch.Tensor]:
    """Sliding-window evaluation: windows of ``context`` inputs starting every ``stride`` tokens,
    each scoring only its last ``stride`` targets (the first window scores all of its own).

    Every target up to the last full window is scored exactly once, like :func:`lm_chunks`, but
    each with at least ``context - stride`` tokens before it instead of 0 … context-1: the loss
    of a model that always sees a long context, at ``context / stride`` times the compute
    (``stride = context`` is the non-overlapping evaluation).

    Args: stream (N,); returns ``input_ids`` and ``labels`` (M, context), labels -100 where not scored.
    """
    if not 1 <= stride <= context:
        raise ConfigError(f"stride {stride} must be between 1 and the context {context}")
    if len(stream) < context + 1:
        raise ConfigError(f"stream of {len(stream)} tokens is too short for context {context}")
    windows = stream.unfold(0, context + 1, stride)  # (M, T + 1): starts 0, stride, 2·stride, …
    inputs, labels = windows[:, :-1].clone(), windows[:, 1:].clone()
    labels[1:, : context - stride] = -100  # already scored by the window before
    return {"input_ids": inputs, "labels": labels}
