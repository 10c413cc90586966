"""Attention masks, with ONE polarity everywhere in qkv: ``True`` means "may attend".

Masks are boolean and broadcast to scores of shape ``(B, H, T, S)`` (batch, heads, queries,
keys). They are combined with ``&``. ``torch.nn.functional.scaled_dot_product_attention`` uses
the same polarity for boolean masks, so no conversion is needed there; the one place a
different convention is needed — a float mask added to the scores, which the fused kernel takes
when a position bias (ALiBi, T5) must ride along — goes through :func:`to_additive`.
"""

from __future__ import annotations

import torch
from torch import Tensor


def padding_mask(token_mask: Tensor) -> Tensor:
    """Keys that are real tokens: ``(B, S)`` bool (True = real) → ``(B, 1, 1, S)``."""
    return token_mask[:, None, None, :]


def causal_mask(T: int, S: int, device: torch.device | None = None) -> Tensor:
    """Query ``i`` may see key ``j`` iff ``j <= i + (S - T)`` (question 16) → ``(T, S)``.

    The last query is aligned with the last key, so the same mask serves full sequences
    (``T == S``) and cached decoding (``T`` new queries after ``S - T`` cached keys).
    """
    i = torch.arange(T, device=device)[:, None] + (S - T)
    j = torch.arange(S, device=device)[None, :]
    return j <= i


class CausalOnly:
    """Stands for "exactly the causal mask, nothing else" (T == S, no padding, no window).

    A fused kernel then runs its causal variant (``is_causal=True``), which skips the masked
    half of the score blocks instead of computing and discarding it — about 2× faster and 4×
    less memory at 2k–8k tokens (docs/benchmarks.md, attention scaling). The reference path
    materialises the mask (:meth:`materialise`), so both paths still mean the same thing.
    """

    def materialise(self, T: int, S: int, device: torch.device | None = None) -> Tensor:
        return causal_mask(T, S, device)[None, None]  # (1, 1, T, S)

    def __repr__(self) -> str:
        return "CAUSAL"


CAUSAL = CausalOnly()


class LocalWindow:
    """Stands for "causal ∧ |i - j| < window" over a full sequence (T == S, no padding but on
    the right): the fused path then attends block by block (``nn.local_attention``), O(T·w)
    instead of O(T²); the reference path materialises the same mask."""

    def __init__(self, window: int) -> None:
        self.window = window

    def materialise(self, T: int, S: int, device: torch.device | None = None) -> Tensor:
        return (causal_mask(T, S, device) & window_mask(T, S, self.window, device))[None, None]  # (1, 1, T, S)

    def __repr__(self) -> str:
        return f"LocalWindow({self.window})"


def is_right_padded(token_mask: Tensor) -> bool:
    """True when every row is real tokens followed only by padding (``(B, S)`` bool).

    Under a causal mask a real query then never reaches a padding key, so the causal mask alone
    already gives the real positions their exact outputs; the padding queries' outputs are
    never read (losses and pooling skip them).
    """
    return bool((token_mask[:, 1:] <= token_mask[:, :-1]).all())


def window_mask(T: int, S: int, window: int, device: torch.device | None = None) -> Tensor:
    """Sliding-window (local) attention: only keys with ``|i - j| < window`` → ``(T, S)``.

    Aligned like :func:`causal_mask`. Combined with it, a query sees itself and the
    ``window - 1`` tokens before it (Longformer, Mistral); alone it is a symmetric band.
    """
    i = torch.arange(T, device=device)[:, None] + (S - T)
    j = torch.arange(S, device=device)[None, :]
    return (i - j).abs() < window


def combine(*masks: Tensor | None) -> Tensor | None:
    """Logical AND of the given masks (``None`` = no restriction)."""
    out: Tensor | None = None
    for m in masks:
        if m is not None:
            out = m if out is None else out & m
    return out


def ensure_nonempty_rows(mask: Tensor) -> Tensor:
    """Let query rows that may attend to nothing attend to everything instead.

    A fully masked row (a padding query under a causal mask with left padding, say) would give
    ``softmax([-inf, ...]) = NaN``, and NaN leaks into real positions through ``0 * NaN`` in the
    next matmul. Such rows belong to padding, so their output is never used; letting them attend
    everywhere keeps them finite and makes the reference and fused paths agree exactly.
    """
    empty = ~mask.any(dim=-1, keepdim=True)
    return mask | empty


def to_additive(mask: Tensor, dtype: torch.dtype, bias: Tensor | None = None) -> Tensor:
    """Boolean "may attend" mask → float mask to add to the scores: ``bias`` (or 0) where
    allowed, -inf where not.

    mask ``(B|1, 1|H, T|1, S)`` bool; bias broadcastable against it, e.g. ``(B|1, H, T, S)``
    → the broadcast shape of the two, in ``dtype``.
    """
    base = bias.to(dtype) if bias is not None else torch.zeros((), dtype=dtype, device=mask.device)
    return base.masked_fill(~mask, float("-inf"))


def positions_from_mask(token_mask: Tensor) -> Tensor:
    """Positions that skip left padding: ``(B, S)`` bool → ``(B, S)`` long, pads at 0.

    Real tokens are numbered 0, 1, 2, ... in order whatever padding precedes them, which is
    what makes a left-padded batch give the same outputs as each prompt alone.
    """
    return (token_mask.long().cumsum(-1) - 1).clamp(min=0)
