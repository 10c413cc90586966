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

The (w, 2w) call copies every key and value twice (the unfolded windows overlap), and its
gradients are twice the keys' size again. On the CPU's fused kernel, which reports each row's
log-sum-exp, qkv instead makes two calls: each block against itself under ``is_causal``, and
each block against the previous one under the strict upper triangle (``previous_block_mask``).
Blocks are batch items of the token-major storage the projections write, so neither call
copies an input. The two softmaxes are merged by their log-sum-exps, and the backward pass is
the kernel's own backward, run once per half against the merged output and log-sum-exp
(``_TwoHalves``; FlashAttention's split-key rule). That keeps its memory near plain causal
attention's (docs/benchmarks.md, long context).
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

    Equal (to rounding) to full attention under ``causal ∧ |i - j| < window``: the two-halves
    path on the CPU kernel without dropout, the (w, 2w) band call everywhere else.
    """
    B, H, T, D = q.shape
    w = min(window, T)
    n = math.ceil(T / w)
    pad = n * w - T
    if pad:  # whole blocks: pad the end; padded queries are cut off, padded keys only follow real ones
        q, k, v = (F.pad(t, (0, 0, 0, pad)) for t in (q, k, v))
    if n > 1 and dropout_p == 0.0 and q.device.type == "cpu" and q.dtype == k.dtype == v.dtype:
        return _TwoHalves.apply(q, k, v, w, scale)[:, :, :T]
    return band_attention(q, k, v, w, scale, dropout_p)[:, :, :T]


def band_attention(q: Tensor, k: Tensor, v: Tensor, w: int, scale: float, dropout_p: float = 0.0) -> Tensor:
    """The (w, 2w) band call, T a multiple of w. The first block has no previous one: plain
    causal attention over its w keys. Every later block is one of ``H·(n-1)`` independent
    (w queries, 2w keys) problems under the same band mask, run as a single 4-d fused call
    (a 4-d layout lets the CPU kernel take its fast path)."""
    B, H, T, D = q.shape
    n = T // w
    first = F.scaled_dot_product_attention(q[:, :, :w], k[:, :, :w], v[:, :, :w], is_causal=True, scale=scale,
                                           dropout_p=dropout_p)  # (B, H, w, D)
    if n == 1:
        return first
    queries = q[:, :, w:].reshape(B, H * (n - 1), w, D)
    # windows of 2w keys starting every w: block c's queries see blocks c-1 and c
    keys = k.unfold(2, 2 * w, w).transpose(-1, -2).reshape(B, H * (n - 1), 2 * w, D)
    values = v.unfold(2, 2 * w, w).transpose(-1, -2).reshape(B, H * (n - 1), 2 * w, D)
    rest = F.scaled_dot_product_attention(queries, keys, values, attn_mask=band_mask(w, q.device), scale=scale,
                                          dropout_p=dropout_p)  # (B, H·(n-1), w, D)
    return torch.cat([first, rest.reshape(B, H, (n - 1) * w, D)], dim=2)


_flash = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu  # → (out, log-sum-exp per row)
_flash_backward = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu_backward


def previous_block_mask(w: int, dtype: torch.dtype, device: torch.device | None = None) -> Tensor:
    """``(w, w)`` additive: query r of a block sees key s of the previous block iff s > r."""
    r = torch.arange(w, device=device)[:, None]
    s = torch.arange(w, device=device)[None, :]
    return torch.zeros(w, w, dtype=dtype, device=device).masked_fill(s <= r, float("-inf"))


def to_blocks(t: Tensor, w: int) -> Tensor:
    """``(B, H, n·w, D)`` → ``(B·n, H, w, D)``: each block a batch item, as a view of the
    token-major ``(B, T, H, D)`` storage the projections write (copied only if not so)."""
    B, H, T, D = t.shape
    return t.transpose(1, 2).contiguous().view(B * (T // w), w, H, D).transpose(1, 2)


def from_blocks(t: Tensor, B: int) -> Tensor:
    """``(B·n, H, w, D)`` token-major → ``(B, H, n·w, D)``, a view."""
    Bn, H, w, D = t.shape
    return t.transpose(1, 2).reshape(B, Bn // B * w, H, D).transpose(1, 2)


class _TwoHalves(torch.autograd.Function):
    """Block-local attention as own-block (causal) ⊕ previous-block (strict upper) attention.

    Blocks are batch items, so "the previous block" of item i is item i-1. For the first block
    of each sequence after the first, that is the last block of the sequence before: those
    pairs are dropped from the merge (log-sum-exp -inf) and get no gradient (their incoming
    gradient is zeroed, so the kernel's dS, dK, dV for them are 0).
    """

    @staticmethod
    def forward(ctx, q: Tensor, k: Tensor, v: Tensor, w: int, scale: float) -> Tensor:
        B, n = q.shape[0], q.shape[2] // w
        qb, kb, vb = (to_blocks(t, w) for t in (q, k, v))  # (B·n, H, w, D)
        out, lse = _flash(qb, kb, vb, 0.0, True, scale=scale)  # (B·n, H, w, D), (B·n, H, w)
        prev, lse_prev = _flash(qb[1:], kb[:-1], vb[:-1], 0.0, False,
                                attn_mask=previous_block_mask(w, q.dtype, q.device), scale=scale)
        lse_prev[..., -1] = float("-inf")  # a block's last query sees no earlier key; the kernel reports 0
        lse_prev[n - 1::n] = float("-inf")  # a sequence's first block, paired with the one before's last
        merged = torch.logaddexp(lse[1:], lse_prev)  # (B·n-1, H, w)
        out[1:].mul_((lse[1:] - merged).exp().unsqueeze(-1)).add_(prev * (lse_prev - merged).exp().unsqueeze(-1))
        lse[1:] = merged
        ctx.save_for_backward(qb, kb, vb, out, lse)
        ctx.w, ctx.scale, ctx.batch = w, scale, B
        return from_blocks(out, B)

    @staticmethod
    def backward(ctx, grad: Tensor):
        qb, kb, vb, out, lse = ctx.saved_tensors
        w, scale, B = ctx.w, ctx.scale, ctx.batch
        n = qb.shape[0] // B
        grad_blocks = to_blocks(grad, w)
        grad_later = grad_blocks[1:]
        if B > 1:
            grad_later = grad_later.clone()
            grad_later[n - 1::n] = 0  # the cross-sequence pairs
        # each half's gradient is the kernel's backward against the merged output and log-sum-exp
        dq, dk, dv = _flash_backward(grad_blocks, qb, kb, vb, out, lse, 0.0, True, scale=scale)
        later = _flash_backward(grad_later, qb[1:], kb[:-1], vb[:-1], out[1:], lse[1:], 0.0, False,
                                attn_mask=previous_block_mask(w, qb.dtype, qb.device), scale=scale)
        dq[1:] += later[0]
        dk[:-1] += later[1]
        dv[:-1] += later[2]
        del later
        return from_blocks(dq, B), from_blocks(dk, B), from_blocks(dv, B), None, None


__all__ = ["block_local_attention", "band_attention", "band_mask", "previous_block_mask"]
