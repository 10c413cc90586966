"""Word alignment by IBM Model 1 (Brown et al., 1993), to score cross-attention against.

IBM Model 1 says each target token t_j was produced by one source token s_i (or by NULL),
chosen uniformly, with probability τ(t | s). EM fits τ: the E-step gives every (j, i) the
posterior τ(t_j | s_i) / Σ_i' τ(t_j | s_i'); the M-step sets τ(t | s) to the expected count of the
pair over the expected count of s. A pair that never co-occurs never gets mass, so only the
co-occurring pairs are stored, one tensor entry per (sentence, j, i), and both steps are
scatter-adds over them — seconds for Multi30k's 29k sentence pairs.

``viterbi`` then links each target token to its most probable source token; ``alignment_error``
compares such links with a cross-attention map's argmax (1 − F1 of the link sets; NULL links and
special tokens excluded), and ``diagonal_links`` is the baseline that ignores the words.
"""

from __future__ import annotations

import torch
from torch import Tensor

NULL = -1  # the NULL source word, stored as source id = vocabulary size


class IBMModel1:
    """τ(t | s) over the (source, target) id pairs seen together in some sentence pair."""

    def __init__(self, pairs: list[tuple[list[int], list[int]]], source_vocab: int, iterations: int = 10) -> None:
        self.null = source_vocab
        sent, tgt_pos, src_ids, tgt_ids = self._instances(pairs)
        key = src_ids * (1 << 32) + tgt_ids
        self.keys, inverse = torch.unique(key, return_inverse=True)  # one τ per co-occurring pair
        tau = torch.ones(len(self.keys))  # uniform start
        group = sent * 4096 + tgt_pos  # one normaliser per target token instance
        _, group = torch.unique(group, return_inverse=True)
        for _ in range(iterations):
            p = tau[inverse]  # (N,) τ(t_j | s_i) per instance
            norm = torch.zeros(int(group.max()) + 1).scatter_add_(0, group, p)
            posterior = p / norm[group]  # E-step
            counts = torch.zeros(len(self.keys)).scatter_add_(0, inverse, posterior)
            src_of_key = self.keys // (1 << 32)
            per_source = torch.zeros(int(src_of_key.max()) + 1).scatter_add_(0, src_of_key, counts)
            tau = counts / per_source[src_of_key]  # M-step
        self.tau = tau

    def _instances(self, pairs):
        """Every (sentence, target position, source id, target id), NULL included on the source side."""
        sent, tgt_pos, src_ids, tgt_ids = [], [], [], []
        for n, (src, tgt) in enumerate(pairs):
            source = list(src) + [self.null]
            for j, t in enumerate(tgt):
                sent += [n] * len(source)
                tgt_pos += [j] * len(source)
                src_ids += source
                tgt_ids += [t] * len(source)
        return (torch.tensor(sent), torch.tensor(tgt_pos), torch.tensor(src_ids), torch.tensor(tgt_ids))

    def prob(self, src: list[int], tgt: list[int]) -> Tensor:
        """τ(t_j | s_i) as ``(len(tgt), len(src) + 1)`` (last column: NULL); 0 for unseen pairs."""
        source = torch.tensor(list(src) + [self.null])
        target = torch.tensor(tgt)
        key = source[None, :] * (1 << 32) + target[:, None]  # (T, S + 1)
        idx = torch.searchsorted(self.keys, key).clamp(max=len(self.keys) - 1)
        return torch.where(self.keys[idx] == key, self.tau[idx], torch.zeros(()))

    def viterbi(self, src: list[int], tgt: list[int]) -> set[tuple[int, int]]:
        """Links (target j, source i) to the most probable source token; NULL links dropped."""
        best = self.prob(src, tgt).argmax(-1)  # (T,)
        return {(j, int(i)) for j, i in enumerate(best) if int(i) < len(src)}


def attention_links(cross: Tensor, keep: list[int] | None = None) -> set[tuple[int, int]]:
    """Cross-attention ``(T, S)`` → links (j, argmax_i), for the target positions in ``keep``."""
    best = cross.argmax(-1)
    rows = range(cross.shape[0]) if keep is None else keep
    return {(j, int(best[j])) for j in rows}


def diagonal_links(T: int, S: int) -> set[tuple[int, int]]:
    """The word-blind baseline: target j linked to source round(j · S / T)."""
    return {(j, min(S - 1, round(j * S / max(T, 1)))) for j in range(T)}


def alignment_error(predicted: set, reference: set) -> float:
    """1 − F1 of two link sets (0: identical, 1: nothing in common)."""
    if not predicted and not reference:
        return 0.0
    hits = len(predicted & reference)
    return 1.0 - 2 * hits / (len(predicted) + len(reference))


__all__ = ["IBMModel1", "attention_links", "diagonal_links", "alignment_error"]
