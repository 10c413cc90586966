"""Greedy decoding: the most probable token at every step (question 29)."""

from __future__ import annotations

import torch
from torch import Tensor

from .stepper import Stepper


@torch.no_grad()
def greedy(stepper: Stepper, max_new_tokens: int, eos_id: int | None, pad_id: int) -> Tensor:
    """New tokens ``(B, ≤ max_new_tokens)``; after a row's EOS the row is padded with ``pad_id``."""
    logits = stepper.prefill()
    B = logits.shape[0]
    done = torch.zeros(B, dtype=torch.bool, device=logits.device)
    out = []
    for t in range(max_new_tokens):
        token = logits.argmax(-1).masked_fill(done, pad_id)  # (B,)
        out.append(token)
        if eos_id is not None:
            done |= token == eos_id
        if done.all() or t == max_new_tokens - 1:
            break
        logits = stepper.step(token)
    return torch.stack(out, dim=1)
