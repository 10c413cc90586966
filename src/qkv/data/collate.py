"""Collators: lists of token ids → dicts of padded tensors that the models and trainer read.

Conventions shared by every collator (and by ``qkv.nn.masks``):
- a bool mask is True at real tokens ("may attend"), False at padding;
- labels are -100 (``IGNORE_INDEX``, the default ``ignore_index`` of
  ``torch.nn.functional.cross_entropy``) wherever no loss should be taken;
- padding is on the right;
- ``augment`` (every collator and LM batch function takes one, default None: no change) is a
  callable ``batch dict -> batch dict`` applied last, e.g. :class:`TokenDropout`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator, Sequence

import torch

from qkv.data.batching import lm_chunks
from qkv.errors import ConfigError

IGNORE_INDEX = -100
Augment = Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]]


def _augmented(batch: dict[str, torch.Tensor], augment: Augment | None) -> dict[str, torch.Tensor]:
    return batch if augment is None else augment(batch)


@dataclass
class TokenDropout:
    """Input-token dropout, a data augmentation: each input token is replaced with probability
    ``p`` by ``unk_id`` (or, with ``random_range=(lo, hi)``, by a uniform id in [lo, hi)).

    Only the tensors named in ``keys`` change; ``labels`` are never touched, so the model must
    predict the true next token from a corrupted context (the word-dropout of Bowman et al.,
    2016; Sennrich et al., 2016 drop whole source words). Ids in ``keep_ids`` (padding,
    bos/eos) are never replaced. The generator makes the corruption reproducible.
    """

    p: float
    unk_id: int
    keys: tuple[str, ...] = ("input_ids",)
    keep_ids: tuple[int, ...] = ()
    random_range: tuple[int, int] | None = None
    generator: torch.Generator = field(default_factory=lambda: torch.Generator().manual_seed(0))

    def __post_init__(self) -> None:
        if not 0.0 <= self.p <= 1.0:
            raise ConfigError(f"TokenDropout p must be in [0, 1], got {self.p}")

    def __call__(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        out = dict(batch)
        for key in self.keys:
            ids = batch[key]  # (B, L)
            drop = torch.rand(ids.shape, generator=self.generator) < self.p  # (B, L)
            if self.keep_ids:
                drop &= ~torch.isin(ids, torch.tensor(self.keep_ids, dtype=ids.dtype))
            if self.random_range is None:
                fill = torch.full_like(ids, self.unk_id)
            else:
                fill = torch.randint(*self.random_range, ids.shape, generator=self.generator, dtype=ids.dtype)
            out[key] = torch.where(drop, fill, ids)
        return out


def pad_batch(seqs: Sequence[Sequence[int]], pad_value: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad id lists to the longest: returns ids (B, L) long and mask (B, L) bool."""
    longest = max((len(s) for s in seqs), default=0)
    ids = torch.full((len(seqs), longest), pad_value, dtype=torch.long)
    mask = torch.zeros((len(seqs), longest), dtype=torch.bool)
    for row, seq in enumerate(seqs):
        ids[row, : len(seq)] = torch.as_tensor(seq, dtype=torch.long)
        mask[row, : len(seq)] = True
    return ids, mask


@dataclass(frozen=True)
class TranslationCollator:
    """(src_ids, tgt_ids) pairs without bos/eos → teacher-forcing tensors.

    ``tgt_in`` is the decoder input (bos + tgt) and ``labels`` the same sequence shifted left
    by one (tgt + eos), so position t predicts token t+1. ``tgt_mask`` marks padding only; the
    causal mask is the decoder's job. Output, with S = 1 + longest src, T = 1 + longest tgt:
    ``src`` (B, S), ``src_mask`` (B, S), ``tgt_in`` (B, T), ``tgt_mask`` (B, T), ``labels`` (B, T).
    """

    pad_id: int
    bos_id: int
    eos_id: int
    augment: Augment | None = None  # e.g. TokenDropout(keys=("src", "tgt_in"), keep_ids=(pad, bos, eos))

    def __call__(self, batch: Sequence[tuple[Sequence[int], Sequence[int]]]) -> dict[str, torch.Tensor]:
        src, src_mask = pad_batch([[*s, self.eos_id] for s, _ in batch], self.pad_id)
        tgt_in, tgt_mask = pad_batch([[self.bos_id, *t] for _, t in batch], self.pad_id)
        labels, _ = pad_batch([[*t, self.eos_id] for _, t in batch], IGNORE_INDEX)
        out = {"src": src, "src_mask": src_mask, "tgt_in": tgt_in, "tgt_mask": tgt_mask, "labels": labels}
        return _augmented(out, self.augment)


@dataclass(frozen=True)
class ClassificationCollator:
    """(ids, label) pairs → ``input_ids`` (B, L), ``mask`` (B, L), ``labels`` (B,)."""

    pad_id: int
    augment: Augment | None = None

    def __call__(self, batch: Sequence[tuple[Sequence[int], int]]) -> dict[str, torch.Tensor]:
        input_ids, mask = pad_batch([ids for ids, _ in batch], self.pad_id)
        labels = torch.tensor([label for _, label in batch], dtype=torch.long)
        return _augmented({"input_ids": input_ids, "mask": mask, "labels": labels}, self.augment)


# ---- causal language modelling -------------------------------------------------------------

def causal_lm_batch(chunks: torch.Tensor, augment: Augment | None = None) -> dict[str, torch.Tensor]:
    """Windows (B, T + 1) → ``input_ids`` = chunks[:, :-1] and ``labels`` = chunks[:, 1:], both (B, T)."""
    return _augmented({"input_ids": chunks[:, :-1].contiguous(), "labels": chunks[:, 1:].contiguous()}, augment)


def random_lm_batch(stream: torch.Tensor, context: int, batch_size: int,
                    generator: torch.Generator, augment: Augment | None = None) -> dict[str, torch.Tensor]:
    """B windows at uniformly random offsets of a (N,) stream (nanoGPT's ``get_batch``).

    Random offsets, rather than fixed chunks, let every step see new alignments of the text;
    the caller's generator makes the sequence of batches reproducible and resumable (save
    ``generator.get_state()``). Returns ``input_ids`` and ``labels``, both (B, T).
    """
    if len(stream) < context + 1:
        raise ConfigError(f"stream of {len(stream)} tokens is too short for context {context}")
    starts = torch.randint(len(stream) - context, (batch_size,), generator=generator)  # (B,)
    offsets = starts[:, None] + torch.arange(context + 1)  # (B, T + 1)
    return causal_lm_batch(stream[offsets], augment)


def sequential_lm_batches(stream: torch.Tensor, context: int, batch_size: int,
                          augment: Augment | None = None) -> Iterator[dict[str, torch.Tensor]]:
    """Non-overlapping windows in order, for evaluation: every token after the first is a
    label exactly once (except a tail shorter than a window). The last batch may be smaller."""
    chunks = lm_chunks(stream, context)  # (M, T + 1)
    for start in range(0, len(chunks), batch_size):
        yield causal_lm_batch(chunks[start:start + batch_size], augment)


# ---- masked language modelling ------------------------------------------------------------

class MLMCollator:
    """BERT's masked-LM corruption (Devlin et al. 2019, §3.1 "Task #1: Masked LM").

    Selects ``select_prob`` (15%) of the real, non-special tokens of each sequence; of those,
    ``mask_prob`` (80%) become [MASK], ``random_prob`` (10%) a uniformly random non-special
    token, and the rest (10%) stay unchanged. The paper's reason for not always using [MASK]:
    [MASK] never occurs at fine-tuning time, so the model must also predict tokens it can see,
    and the random 10% stops it from trusting that the visible token is correct.
    ``mask_prob=1.0, random_prob=0.0`` is the "100% [MASK]" ablation (paper's Table 8).

    Each sequence with any candidate gets at least one selected token, as in BERT's
    ``create_pretraining_data.py`` (``max(1, round(n * 0.15))``), so no sequence is lossless.

    Input: id lists that already hold their special tokens ([CLS], [SEP], ...).
    Output: ``input_ids`` (B, L) corrupted, ``mask`` (B, L) bool, ``labels`` (B, L) with the
    original id at selected positions and -100 elsewhere.
    """

    def __init__(self, *, pad_id: int, mask_id: int, vocab_size: int, special_ids: Iterable[int] = (),
                 select_prob: float = 0.15, mask_prob: float = 0.8, random_prob: float = 0.1,
                 seed: int = 0, generator: torch.Generator | None = None, augment: Augment | None = None) -> None:
        for name, p in (("select_prob", select_prob), ("mask_prob", mask_prob), ("random_prob", random_prob)):
            if not 0.0 <= p <= 1.0:
                raise ConfigError(f"{name} must be in [0, 1], got {p}")
        if mask_prob + random_prob > 1.0:
            raise ConfigError(f"mask_prob + random_prob must be <= 1, got {mask_prob} + {random_prob}")
        specials = {*special_ids, pad_id, mask_id}
        self.pad_id, self.mask_id = pad_id, mask_id
        self.select_prob, self.mask_prob, self.random_prob = select_prob, mask_prob, random_prob
        self.special = torch.tensor(sorted(specials), dtype=torch.long)
        self.replacements = torch.tensor([i for i in range(vocab_size) if i not in specials], dtype=torch.long)
        if len(self.replacements) == 0:
            raise ValueError("the vocabulary has no non-special token to draw random replacements from")
        self.generator = generator if generator is not None else torch.Generator().manual_seed(seed)
        self.augment = augment  # applied after the MLM corruption

    def __call__(self, batch: Sequence[Sequence[int]]) -> dict[str, torch.Tensor]:
        input_ids, mask = pad_batch(batch, self.pad_id)
        return _augmented(self.corrupt(input_ids, mask), self.augment)

    def corrupt(self, input_ids: torch.Tensor, mask: torch.Tensor) -> dict[str, torch.Tensor]:
        """Corrupt padded ids (B, L) with padding mask (B, L); see the class docstring."""
        candidates = mask & ~torch.isin(input_ids, self.special)  # (B, L)
        selected = self._select(candidates)
        labels = torch.where(selected, input_ids, IGNORE_INDEX)
        u = torch.rand(input_ids.shape, generator=self.generator)
        to_mask = selected & (u < self.mask_prob)
        to_random = selected & (u >= self.mask_prob) & (u < self.mask_prob + self.random_prob)
        draws = torch.randint(len(self.replacements), input_ids.shape, generator=self.generator)
        corrupted = torch.where(to_mask, self.mask_id, input_ids)
        corrupted = torch.where(to_random, self.replacements[draws], corrupted)
        return {"input_ids": corrupted, "mask": mask, "labels": labels}

    def _select(self, candidates: torch.Tensor) -> torch.Tensor:
        """Bernoulli(select_prob) over candidates (B, L), plus one forced pick per empty row."""
        scores = torch.rand(candidates.shape, generator=self.generator)
        selected = candidates & (scores < self.select_prob)
        needs_one = candidates.any(dim=1) & ~selected.any(dim=1)  # (B,)
        # The lowest-scoring candidate of a row is a uniform choice among its candidates.
        lowest = scores.masked_fill(~candidates, 2.0).argmin(dim=1)  # (B,)
        rows = needs_one.nonzero(as_tuple=True)[0]
        selected[rows, lowest[rows]] = True
        return selected
