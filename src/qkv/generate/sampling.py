"""Sampling: temperature, top-k, top-p (nucleus) and repetition penalty, seeded (question 29).

Filters set the logits of disallowed tokens to -inf before the softmax, so a token outside
the top-k set or the nucleus can never be drawn (tested).
"""

from __future__ import annotations

import torch
from torch import Tensor

from .greedy import decode_loop
from .stepper import Stepper


def top_k_filter(logits: Tensor, k: int) -> Tensor:
    """Keep the ``k`` largest logits per row ``(B, V)``."""
    kth = logits.topk(min(k, logits.shape[-1]), dim=-1).values[:, -1:]  # (B, 1)
    return logits.masked_fill(logits < kth, float("-inf"))


def top_p_filter(logits: Tensor, p: float) -> Tensor:
    """Keep the smallest set of tokens whose probabilities sum to ≥ p (Holtzman et al., 2020)."""
    sorted_logits, order = logits.sort(dim=-1, descending=True)
    cumulative = sorted_logits.softmax(-1).cumsum(-1)
    remove = cumulative - sorted_logits.softmax(-1) >= p  # tokens after the nucleus is full
    sorted_logits = sorted_logits.masked_fill(remove, float("-inf"))
    return torch.full_like(logits, float("-inf")).scatter(-1, order, sorted_logits)


def repetition_penalty(logits: Tensor, seen: Tensor, penalty: float) -> Tensor:
    """CTRL's penalty (Keskar et al., 2019): divide positive / multiply negative seen logits."""
    picked = logits.gather(-1, seen)
    picked = torch.where(picked > 0, picked / penalty, picked * penalty)
    return logits.scatter(-1, seen, picked)


@torch.no_grad()
def sample(
    stepper: Stepper,
    max_new_tokens: int,
    eos_id: int | None,
    pad_id: int,
    *,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    penalty: float = 1.0,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Sampled new tokens ``(B, ≤ max_new_tokens)``, padded after EOS."""
    B = stepper.input_ids.shape[0]
    device = stepper.input_ids.device
    history = [stepper.input_ids if not stepper.seq2seq else torch.empty(B, 0, dtype=torch.long, device=device)]

    def choose(logits: Tensor) -> Tensor:
        logits = logits.float()
        seen = torch.cat(history, dim=1)  # prompt (decoder-only) and every token drawn so far
        if penalty != 1.0 and seen.shape[1]:
            logits = repetition_penalty(logits, seen, penalty)
        logits = logits / temperature
        if top_k is not None:
            logits = top_k_filter(logits, top_k)
        if top_p is not None:
            logits = top_p_filter(logits, top_p)
        token = torch.multinomial(logits.softmax(-1), 1, generator=generator).squeeze(1)
        history.append(token[:, None])
        return token

    return decode_loop(stepper, max_new_tokens, eos_id, pad_id, choose)
