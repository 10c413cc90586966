"""Causal sliding-window attention computed in blocks, so it costs O(T·w), not O(T²) (question 31).

Query i sees keys i-w+1 … i. Cut the sequence into blocks of w positions: every key a query of
block c may see lies in block c-1 or block c. So each block of queries attends to the 2w keys
of its own and the previous block, under one fixed (w, 2w) band mask — one fused attention
call over (B, H, n_blocks) independent problems instead of one (T, T) problem:

    keys of block c-1 │ keys of block c
    query r of block c sees key s of the 2w iff  r < s ≤ r + w

(the first block has no previous one: it is plain causal attention). Arithmetic and memory
are 2w per query; a mask over full attention — ``window_mask`` — computes all T and
discards T - w of them, which is why it costs more than no window at all.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor


def band_mask(w: int, device: torch.device | None = None) -> Tensor:
    """``(w, 2w)`` bool: query r of a block may see key s of (previous ‖ own) block."""
    r = torch.arange(w, device=device)[:, None]
    s = torch.arange(2 * w, device=device)[None, :]
    return (s > r) & (s <= r + w)


def block_local_attention(q: Tensor, k: Tensor, v: Tensor, window: int, scale: float,
                          dropout_p: float = 0.0) -> Tensor:
    """softmax over keys i-w+1 … i of q·k·scale, times v. q, k, v ``(B, H, T, D)`` → ``(B, H, T, D)``.

    Equal (to rounding) to full attention under ``causal ∧ |i - j| < window``. The first block
    has no previous one: it is plain causal attention over its w keys. Every later block is one
    of ``H·(n-1)`` independent (w queries, 2w keys) problems under the same band mask, run as a
    single 4-d fused call (a 4-d layout lets the CPU kernel take its fast path).
    """
    B, H, T, D = q.shape
    w = min(window, T)
    n = math.ceil(T / w)
    pad = n * w - T
    if pad:  # whole blocks: pad the end; padded queries are cut off, padded keys only follow real ones
        q, k, v = (F.pad(t, (0, 0, 0, pad)) for t in (q, k, v))
    first = F.scaled_dot_product_attention(q[:, :, :w], k[:, :, :w], v[:, :, :w], is_causal=True, scale=scale,
                                           dropout_p=dropout_p)  # (B, H, w, D)
    if n == 1:
        return first[:, :, :T]
    queries = q[:, :, w:].reshape(B, H * (n - 1), w, D)
    # windows of 2w keys starting every w: block c's queries see blocks c-1 and c
    keys = k.unfold(2, 2 * w, w).transpose(-1, -2).reshape(B, H * (n - 1), 2 * w, D)
    values = v.unfold(2, 2 * w, w).transpose(-1, -2).reshape(B, H * (n - 1), 2 * w, D)
    rest = F.scaled_dot_product_attention(queries, keys, values, attn_mask=band_mask(w, q.device), scale=scale,
                                          dropout_p=dropout_p)  # (B, H·(n-1), w, D)
    return torch.cat([first, rest.reshape(B, H, (n - 1) * w, D)], dim=2)[:, :, :T]


__all__ = ["block_local_attention", "band_mask"]
