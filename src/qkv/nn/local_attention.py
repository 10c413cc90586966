"""Causal sliding-window attention computed in blocks, so it costs O(T·w), not O(T²) (question 31).

Query i sees keys i-w+1 … i. Cut the sequence into blocks of w positions: every key a query of
block c may see lies in block c-1 or block c. So each block of queries attends to the 2w keys
of its own and the previous block, under one fixed (w, 2w) band mask — one fused attention
call over (B, H, n_blocks) independent problems instead of one (T, T) problem:

    keys of block c-1 │ keys of block c
    query r of block c sees key s of the 2w iff  r < s ≤ r + w

(the first block has no previous one: those w keys are zeros and masked out). Arithmetic and
memory are 2w per query; a mask over full attention — ``window_mask`` — computes all T and
discards T - w of them, which is why it costs more than no window at all.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor


def band_mask(n_blocks: int, w: int, device: torch.device | None = None) -> Tensor:
    """``(n_blocks, w, 2w)`` bool: query r of a block may see key s of (previous ‖ own) block."""
    r = torch.arange(w, device=device)[:, None]
    s = torch.arange(2 * w, device=device)[None, :]
    band = (s > r) & (s <= r + w)  # (w, 2w)
    first = torch.arange(n_blocks, device=device)[:, None, None] == 0  # (n, 1, 1)
    return band[None] & ~(first & (s < w)[None])  # block 0 has no previous block


def _with_previous(x: Tensor) -> Tensor:
    """``(B, H, n, w, D)`` → ``(B, H, n, 2w, D)``: each block preceded by the one before (zeros for the first)."""
    previous = F.pad(x, (0, 0, 0, 0, 1, 0))[:, :, :-1]  # shift the blocks by one
    return torch.cat([previous, x], dim=3)


def block_local_attention(q: Tensor, k: Tensor, v: Tensor, window: int, scale: float,
                          dropout_p: float = 0.0) -> Tensor:
    """softmax over keys i-w+1 … i of q·k·scale, times v. q, k, v ``(B, H, T, D)`` → ``(B, H, T, D)``.

    Equal (to rounding) to full attention under ``causal ∧ |i - j| < window``.
    """
    B, H, T, D = q.shape
    w = min(window, T)
    n = math.ceil(T / w)
    pad = n * w - T
    if pad:  # whole blocks: pad the end; padded queries are cut off, padded keys only follow real ones
        q, k, v = (F.pad(t, (0, 0, 0, pad)) for t in (q, k, v))
    qb = q.reshape(B, H, n, w, D)
    kb, vb = _with_previous(k.reshape(B, H, n, w, D)), _with_previous(v.reshape(B, H, n, w, D))  # (B, H, n, 2w, D)
    out = F.scaled_dot_product_attention(qb, kb, vb, attn_mask=band_mask(n, w, q.device), scale=scale,
                                         dropout_p=dropout_p)  # (B, H, n, w, D)
    return out.reshape(B, H, n * w, D)[:, :, :T]


__all__ = ["block_local_attention", "band_mask"]
