"""Greedy decoding: the most probable token at every step (question 29).

``decode_loop`` is the one token-by-token loop that greedy decoding and sampling share: pick a
token per row, pad rows that already ended, stop when every row has hit EOS.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from .stepper import Stepper


def decode_loop(stepper: Stepper, max_new_tokens: int, eos_id: int | None, pad_id: int,
                choose: Callable[[Tensor], Tensor]) -> Tensor:
    """New tokens ``(B, ≤ max_new_tokens)``; ``choose(logits (B, V)) -> (B,)`` picks each step's
    tokens; after a row's EOS the row is padded with ``pad_id``."""
    logits = stepper.prefill()
    done = torch.zeros(logits.shape[0], dtype=torch.bool, device=logits.device)
    out = []
    for t in range(max_new_tokens):
        token = choose(logits).masked_fill(done, pad_id)  # (B,)
        out.append(token)
        if eos_id is not None:
            done |= token == eos_id
        if done.all() or t == max_new_tokens - 1:
            break
        logits = stepper.step(token)
    return torch.stack(out, dim=1)


@torch.no_grad()
def greedy(stepper: Stepper, max_new_tokens: int, eos_id: int | None, pad_id: int) -> Tensor:
    """New tokens ``(B, ≤ max_new_tokens)``; after a row's EOS the row is padded with ``pad_id``."""
    return decode_loop(stepper, max_new_tokens, eos_id, pad_id, lambda logits: logits.argmax(-1))
