"""Position schemes (questions 9, 10, 23), one small module each, registered by name.

A scheme acts in one or more of three places, and each module implements only its own:

* ``absolute(pos)``: a vector added to the token embedding (sinusoidal, learned);
* ``attention_terms(pos_q, pos_k)``: what self-attention needs, gathered once per forward and
  shared by every layer of the stack — a rotation of queries and keys (RoPE), an additive bias
  on the scores (ALiBi, T5 buckets), or relative key/value vectors (Shaw).
* nothing at all (``none``): then an encoder is permutation-equivariant (question 23).

Positions are integer tensors ``(B|1, T)``, not implied by indices, so a KV cache (queries start
at an offset) and left-padded prompts are handled by the same code.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..config import ModelConfig
from ..registry import Registry

POSITION = Registry("position")


@dataclass
class PositionTerms:
    """Per-forward position inputs to attention (all optional).

    rotary: ``(cos, sin)`` each ``(B|1, 1, T, d_head)`` at the query positions (RoPE).
    bias:   ``(B|1, H|1, T, S)`` added to the attention scores (ALiBi, T5).
    rel_k, rel_v: ``(B|1, T, S, d_head)`` relative-position vectors (Shaw et al., 2018).
    """

    rotary: tuple[Tensor, Tensor] | None = None
    bias: Tensor | None = None
    rel_k: Tensor | None = None
    rel_v: Tensor | None = None


class PositionScheme(nn.Module):
    """Base: contributes nothing. ``max_positions`` is a hard length limit (None = none)."""

    max_positions: int | None = None

    def absolute(self, pos: Tensor) -> Tensor | None:
        return None

    def attention_terms(self, pos_q: Tensor, pos_k: Tensor) -> PositionTerms:
        return PositionTerms()


@POSITION.register("none")
class NoPosition(PositionScheme):
    """No position information: attention is then a function of the *set* of tokens."""

    def __init__(self, cfg: ModelConfig, causal: bool) -> None:
        super().__init__()


@POSITION.register("sinusoidal")
class Sinusoidal(PositionScheme):
    """Fixed sinusoids, PE(p, 2i) = sin(p / 10000^(2i/d)), PE(p, 2i+1) = cos(...) (Vaswani 2017, §3.5).

    Computed from the positions on the fly, so any length works (extrapolation, question 9).
    ``layout="concat"`` puts all sines before all cosines (Marian's layout); the set of
    features is the same, only their order differs.
    """

    def __init__(self, cfg: ModelConfig, causal: bool) -> None:
        super().__init__()
        self.d_model, self.layout = cfg.d_model, cfg.sinusoidal_layout
        inv_freq = 1.0 / (10000 ** (torch.arange(0, cfg.d_model, 2).float() / cfg.d_model))
        self.register_buffer("inv_freq", inv_freq, persistent=False)  # (d/2,)

    def absolute(self, pos: Tensor) -> Tensor:
        angles = pos[..., None].float() * self.inv_freq  # (B|1, T, d/2)
        if self.layout == "concat":
            return torch.cat([angles.sin(), angles.cos()], dim=-1)  # (B|1, T, d)
        return torch.stack([angles.sin(), angles.cos()], dim=-1).flatten(-2)  # (B|1, T, d)


@POSITION.register("learned")
class Learned(PositionScheme):
    """A trained vector per absolute position (BERT, GPT-2); cannot go past ``max_len``."""

    def __init__(self, cfg: ModelConfig, causal: bool) -> None:
        super().__init__()
        self.max_positions = cfg.max_len
        self.table = nn.Embedding(cfg.max_len, cfg.d_model)

    def absolute(self, pos: Tensor) -> Tensor:
        return self.table(pos)  # (B|1, T, d)


@POSITION.register("shaw")
class ShawRelative(PositionScheme):
    """Relative position representations (Shaw, Uszkoreit & Vaswani, 2018, arXiv:1803.02155).

    Learned vectors a^K, a^V for each clipped distance ``clip(j - i, -k, k)``:
    ``e_ij = q_i·(k_j + a^K_ij) / √d`` and ``z_i = Σ_j p_ij (v_j + a^V_ij)``. The value term needs
    the attention weights, so attention takes the reference path whenever ``rel_k`` is present.
    Shared across heads (as in the paper) and across the layers of a stack.
    """

    def __init__(self, cfg: ModelConfig, causal: bool) -> None:
        super().__init__()
        self.k = cfg.shaw_max_distance
        self.key_table = nn.Embedding(2 * self.k + 1, cfg.head_dim)
        self.value_table = nn.Embedding(2 * self.k + 1, cfg.head_dim)

    def attention_terms(self, pos_q: Tensor, pos_k: Tensor) -> PositionTerms:
        rel = (pos_k[:, None, :] - pos_q[:, :, None]).clamp(-self.k, self.k) + self.k  # (B|1, T, S)
        return PositionTerms(rel_k=self.key_table(rel), rel_v=self.value_table(rel))


def t5_bucket(relative: Tensor, bidirectional: bool, num_buckets: int, max_distance: int) -> Tensor:
    """T5's bucketing of ``key_pos - query_pos``: exact for small distances, log-spaced after.

    (Raffel et al., 2020, §2.1; the same arithmetic as the reference T5 implementation.)
    """
    bucket = torch.zeros_like(relative)
    if bidirectional:
        num_buckets //= 2
        bucket += (relative > 0).long() * num_buckets
        n = relative.abs()
    else:
        n = (-relative).clamp(min=0)  # only the past is visible to a causal query
    max_exact = num_buckets // 2
    log_ratio = torch.log(n.float().clamp(min=1) / max_exact) / math.log(max_distance / max_exact)
    large = max_exact + (log_ratio * (num_buckets - max_exact)).long()
    large = large.clamp(max=num_buckets - 1)
    return bucket + torch.where(n < max_exact, n, large)


@POSITION.register("t5_bias")
class T5Bias(PositionScheme):
    """A learned scalar per (bucketed distance, head) added to the scores (T5)."""

    def __init__(self, cfg: ModelConfig, causal: bool) -> None:
        super().__init__()
        self.bidirectional = not causal
        self.num_buckets, self.max_distance = cfg.t5_num_buckets, cfg.t5_max_distance
        self.table = nn.Embedding(cfg.t5_num_buckets, cfg.n_heads)

    def attention_terms(self, pos_q: Tensor, pos_k: Tensor) -> PositionTerms:
        rel = pos_k[:, None, :] - pos_q[:, :, None]  # (B|1, T, S)
        buckets = t5_bucket(rel, self.bidirectional, self.num_buckets, self.max_distance)
        bias = self.table(buckets).permute(0, 3, 1, 2)  # (B|1, T, S, H) -> (B|1, H, T, S)
        return PositionTerms(bias=bias)


def alibi_slopes(n_heads: int) -> Tensor:
    """Head slopes 2^(-8/n), 2^(-16/n), ... (Press et al., 2022); non-powers of two interleave."""

    def powers(n: int) -> list[float]:
        start = 2 ** (-8 / n)
        return [start ** (i + 1) for i in range(n)]

    if math.log2(n_heads).is_integer():
        return torch.tensor(powers(n_heads))
    closest = 2 ** math.floor(math.log2(n_heads))
    extra = powers(2 * closest)[0::2][: n_heads - closest]
    return torch.tensor(powers(closest) + extra)


@POSITION.register("alibi")
class ALiBi(PositionScheme):
    """Attention with Linear Biases: score -= slope_h · |i - j| (Press, Smith & Lewis, 2022).

    No parameters; the linear penalty lets a model trained at length L run at 2L and beyond.
    """

    def __init__(self, cfg: ModelConfig, causal: bool) -> None:
        super().__init__()
        self.register_buffer("slopes", alibi_slopes(cfg.n_heads), persistent=False)  # (H,)

    def attention_terms(self, pos_q: Tensor, pos_k: Tensor) -> PositionTerms:
        distance = (pos_k[:, None, :] - pos_q[:, :, None]).abs().float()  # (B|1, T, S)
        return PositionTerms(bias=-self.slopes[None, :, None, None] * distance[:, None])


@POSITION.register("rope")
class Rotary(PositionScheme):
    """Rotary position embedding (Su et al., 2021, arXiv:2104.09864).

    Rotates each pair of query/key dimensions by an angle proportional to the position, so
    ``q_i·k_j`` depends only on ``i - j``. Uses the "rotate half" pairing (dims ``m`` and
    ``m + d/2``) as GPT-NeoX and Llama do.
    """

    def __init__(self, cfg: ModelConfig, causal: bool) -> None:
        super().__init__()
        d = cfg.head_dim
        inv_freq = 1.0 / (cfg.rope_base ** (torch.arange(0, d, 2).float() / d))
        self.register_buffer("inv_freq", inv_freq, persistent=False)  # (d/2,)

    def attention_terms(self, pos_q: Tensor, pos_k: Tensor) -> PositionTerms:
        angles = pos_q[..., None].float() * self.inv_freq  # (B|1, T, d/2)
        angles = torch.cat([angles, angles], dim=-1)[:, None]  # (B|1, 1, T, d)
        return PositionTerms(rotary=(angles.cos(), angles.sin()))


def rotate_half(x: Tensor) -> Tensor:
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat([-x2, x1], dim=-1)


def apply_rotary(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Rotate ``x`` ``(B, H, T, d)`` by the angles whose cos/sin are ``(B|1, 1, T, d)``."""
    return x * cos.to(x.dtype) + rotate_half(x) * sin.to(x.dtype)


def build_position(cfg: ModelConfig, causal: bool) -> PositionScheme:
    return POSITION[cfg.position](cfg, causal)
