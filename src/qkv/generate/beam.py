"""Beam search with GNMT length normalisation, early stopping and n-best lists (question 29).

Each source keeps ``k`` running hypotheses. Every step scores all ``k × V`` one-token
extensions by total log-probability and walks the best ``2k`` in order: an extension that ends
in EOS becomes a finished hypothesis (scored with the length penalty), the others fill the ``k``
running beams for the next step. Taking ``2k`` candidates guarantees ``k`` non-EOS beams
survive even when up to ``k`` candidates end (the fairseq / Hugging Face scheme).

Length penalty (Wu et al., 2016, eq. 14): ``score = log P(Y) / lp(Y)``,
``lp(Y) = ((5 + |Y|) / 6) ** alpha``; ``alpha = 0`` ranks by raw log-probability.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

from .stepper import Stepper


def length_penalty(length: int, alpha: float) -> float:
    return ((5.0 + length) / 6.0) ** alpha


@dataclass
class Hypotheses:
    """The finished hypotheses of one source: ``(score, tokens)``, best first, at most ``k``."""

    k: int
    items: list[tuple[float, list[int]]] = field(default_factory=list)

    def add(self, score: float, tokens: list[int]) -> None:
        self.items.append((score, tokens))
        self.items.sort(key=lambda item: -item[0])
        del self.items[self.k :]

    def worst(self) -> float:
        return self.items[-1][0] if len(self.items) == self.k else float("-inf")


@torch.no_grad()
def beam_search(
    stepper: Stepper,
    max_new_tokens: int,
    eos_id: int | None,
    pad_id: int,
    *,
    beams: int = 4,
    alpha: float = 0.0,
    early_stopping: bool = False,
    n_best: int = 1,
) -> tuple[Tensor, list[list[tuple[float, list[int]]]]]:
    """Best hypothesis per source ``(B, L)`` (padded) and the n-best lists ``[(score, tokens)]``.

    ``early_stopping=True`` stops a source as soon as it has ``beams`` finished hypotheses;
    otherwise it stops when no running beam can still beat the worst finished one.
    """
    logits = stepper.prefill()  # (B, V)
    B, V = logits.shape
    K = beams
    device = logits.device
    stepper.reorder(torch.arange(B, device=device).repeat_interleave(K))  # rows b*K .. b*K+K-1
    logits = logits.repeat_interleave(K, dim=0)  # (B*K, V)
    scores = torch.full((B, K), float("-inf"), device=device)
    scores[:, 0] = 0.0  # at the start all beams are the same; keep one
    history = torch.empty(B * K, 0, dtype=torch.long, device=device)
    finished = [Hypotheses(K) for _ in range(B)]
    done = [False] * B
    for t in range(max_new_tokens):
        logp = torch.log_softmax(logits.float(), dim=-1)  # (B*K, V)
        total = (scores.view(-1, 1) + logp).view(B, K * V)
        top_scores, top_index = total.topk(2 * K, dim=-1)  # (B, 2K)
        # The per-source choices are plain Python lists, made into tensors once per step.
        next_scores = [[float("-inf")] * K for _ in range(B)]
        next_rows = [[b * K] * K for b in range(B)]  # a finished source keeps copies of row b*K
        next_tokens = [[pad_id] * K for _ in range(B)]
        last = t == max_new_tokens - 1
        for b, (row_scores, row_index) in enumerate(zip(top_scores.tolist(), top_index.tolist())):
            if done[b]:
                continue
            filled = 0
            for rank, (s, i) in enumerate(zip(row_scores, row_index)):
                beam, token = divmod(i, V)
                if token == eos_id:
                    if rank < K:
                        tokens = history[b * K + beam].tolist() + [token]
                        finished[b].add(s / length_penalty(len(tokens), alpha), tokens)
                    continue
                next_scores[b][filled], next_rows[b][filled], next_tokens[b][filled] = s, b * K + beam, token
                filled += 1
                if filled == K:
                    break
            best_running = next_scores[b][0] / length_penalty(t + 1, alpha)
            if len(finished[b].items) == K and (early_stopping or finished[b].worst() >= best_running):
                done[b] = True
            elif last:  # out of steps: running beams compete with the finished ones
                for j in range(K):
                    tokens = history[next_rows[b][j]].tolist() + [next_tokens[b][j]]
                    finished[b].add(next_scores[b][j] / length_penalty(len(tokens), alpha), tokens)
        if all(done) or last:
            break
        rows = torch.tensor(next_rows, device=device).view(-1)  # (B*K,), each within its source
        tokens_now = torch.tensor(next_tokens, device=device).view(-1)
        history = torch.cat([history.index_select(0, rows), tokens_now[:, None]], dim=1)
        scores = torch.tensor(next_scores, device=device)
        stepper.reorder(rows, same_source=True)
        logits = stepper.step(tokens_now)
    n_best_lists = [h.items[:n_best] for h in finished]
    length = max(len(h[0][1]) for h in n_best_lists)
    best = torch.full((B, length), pad_id, dtype=torch.long, device=device)
    for b, hyps in enumerate(n_best_lists):
        best[b, : len(hyps[0][1])] = torch.tensor(hyps[0][1], device=device)
    return best, n_best_lists
