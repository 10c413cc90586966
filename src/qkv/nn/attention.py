"""Attention (questions 1–5, 22, 24): the readable reference, the fused kernel, and the cache.

The reference path is the formula written out, softmax(QKᵀ·scale + bias, masked)·V, and it can
return the weights. The fast path hands the same tensors to PyTorch's fused
``scaled_dot_product_attention``. Tests hold them equal for every mask and position kind; a
module takes the reference path when it must (weights requested via ``capture``, additive
scores, Shaw relative values) and the fused path otherwise.

Shapes: B batch, T queries, S keys, H query heads, G key/value heads (G divides H; G < H is
grouped-query attention, G = 1 multi-query), D head width.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import ModelConfig
from ..registry import Registry
from .local_attention import block_local_attention
from .masks import CAUSAL, LocalWindow, to_additive
from .position import PositionTerms, apply_rotary

ATTENTION = Registry("attention")

# Each scorer says whether it is ``fusable``: whether its score is the plain q·k that
# ``scaled_dot_product_attention`` computes itself. A scorer that is not (additive) must take the
# reference path, or the fused kernel would silently compute dot-product attention instead.


@ATTENTION.register("dot")
class DotScore(nn.Module):
    """score(q, k) = q·k (Vaswani et al., 2017): one matmul, so it runs in fused kernels."""

    fusable = True

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()

    def forward(self, q: Tensor, k: Tensor, scale: float) -> Tensor:
        return (q @ k.transpose(-2, -1)) * scale  # (B, H, T, D) @ (B, H, D, S) -> (B, H, T, S)


@ATTENTION.register("additive")
class AdditiveScore(nn.Module):
    """score(q, k) = wᵀ tanh(q + k) per head (Bahdanau, Cho & Bengio, 2015).

    q and k are the usual per-head projections (Bahdanau's W_a s and U_a h), so this is a
    drop-in for the dot score. It materialises a ``(B, H, T, S, D)`` tensor — the memory and
    time cost question 3 measures. ``attention_scale`` does not apply (no dot product to tame).
    """

    fusable = False

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.randn(cfg.n_heads, cfg.head_dim) / math.sqrt(cfg.head_dim))

    def forward(self, q: Tensor, k: Tensor, scale: float) -> Tensor:
        hidden = torch.tanh(q[:, :, :, None, :] + k[:, :, None, :, :])  # (B, H, T, S, D)
        return torch.einsum("bhtsd,hd->bhts", hidden, self.w)  # (B, H, T, S)


def attention_scale(cfg: ModelConfig) -> float:
    """1/√d_k (question 4), 1 (``"none"``), or the given multiplier."""
    if cfg.attention_scale == "sqrt_dk":
        return 1.0 / math.sqrt(cfg.head_dim)
    if cfg.attention_scale == "none":
        return 1.0
    return float(cfg.attention_scale)


def reference_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    *,
    scorer: nn.Module,
    scale: float,
    mask: Tensor | None = None,
    terms: PositionTerms | None = None,
    dropout: nn.Module | None = None,
    keep_scores: list | None = None,
) -> tuple[Tensor, Tensor]:
    """softmax(score(q, k) + bias, masked) · v, written out. Returns ``(out, weights)``.

    q ``(B, H, T, D)``, k and v ``(B, H, S, D)``, mask bool ``(B|1, 1|H, T|1, S)`` with
    True = may attend → out ``(B, H, T, D)`` and weights ``(B, H, T, S)`` (before dropout).
    ``keep_scores``: a list that receives the pre-softmax scores ``(B, H, T, S)`` (masked: -inf).
    """
    scores = scorer(q, k, scale)  # (B, H, T, S)
    if terms is not None and terms.rel_k is not None:  # Shaw: q·a^K_ij
        scores = scores + torch.einsum("bhtd,btsd->bhts", q, terms.rel_k.to(q.dtype)) * scale
    if terms is not None and terms.bias is not None:
        scores = scores + terms.bias.to(scores.dtype)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    if keep_scores is not None:
        keep_scores.append(scores)
    weights = torch.softmax(scores.float(), dim=-1).to(q.dtype)  # softmax in fp32 for stability
    dropped = dropout(weights) if dropout is not None else weights
    out = dropped @ v  # (B, H, T, S) @ (B, H, S, D) -> (B, H, T, D)
    if terms is not None and terms.rel_v is not None:  # Shaw: Σ_j p_ij a^V_ij
        out = out + torch.einsum("bhts,btsd->bhtd", dropped, terms.rel_v.to(q.dtype))
    return out, weights


def fused_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    *,
    scale: float,
    mask: Tensor | None = None,
    bias: Tensor | None = None,
    dropout_p: float = 0.0,
    is_causal: bool = False,
) -> Tensor:
    """The same computation through ``F.scaled_dot_product_attention`` (no weights returned).

    A boolean mask goes in as is (SDPA shares the True = may attend polarity); with an
    additive bias (ALiBi, T5) the mask is folded into the bias as -inf. ``is_causal`` (no mask,
    no bias, T == S) lets the kernel skip the masked blocks.
    """
    if is_causal:
        return F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p, scale=scale, is_causal=True)
    attn_mask = mask
    if bias is not None:
        attn_mask = bias.to(q.dtype) if mask is None else to_additive(mask, q.dtype, bias=bias)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, dropout_p=dropout_p, scale=scale)


class LayerCache:
    """Keys and values of one attention layer, preallocated to ``max_len`` positions.

    Self-attention appends the new step's keys/values in place (no re-concatenation per step);
    cross-attention stores the encoder's keys/values once (``static=True``).
    """

    def __init__(self, max_len: int, static: bool = False) -> None:
        self.max_len, self.static = max_len, static
        self.k: Tensor | None = None  # (B, G, max_len, D) or (B, G, S, D) when static
        self.v: Tensor | None = None
        self.length = 0

    def append(self, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        """Store ``(B, G, T, D)`` new keys/values; return all so far ``(B, G, length, D)``."""
        B, G, T, D = k.shape
        if self.k is None:
            self.k = k.new_empty(B, G, self.max_len, D)
            self.v = v.new_empty(B, G, self.max_len, D)
        if self.length + T > self.max_len:
            raise ValueError(
                f"KV cache holds {self.max_len} positions; cannot add {T} more after {self.length}. "
                f"Create the cache with a larger max_len."
            )
        self.k[:, :, self.length : self.length + T] = k
        self.v[:, :, self.length : self.length + T] = v
        self.length += T
        return self.k[:, :, : self.length], self.v[:, :, : self.length]

    def store(self, k: Tensor, v: Tensor) -> None:
        self.k, self.v, self.length = k, v, k.shape[2]

    def reorder(self, index: Tensor) -> None:
        """Select batch rows (beam search): ``index`` ``(B',)`` long.

        A self-attention cache gathers only its filled positions into a fresh buffer: the rest
        holds nothing yet, and copying it would double the bytes moved per beam step on average.
        """
        if self.k is None:
            return
        if self.static:
            self.k, self.v = self.k.index_select(0, index), self.v.index_select(0, index)
            return
        self.k, self.v = self._gather_filled(self.k, index), self._gather_filled(self.v, index)

    def _gather_filled(self, buffer: Tensor, index: Tensor) -> Tensor:
        out = buffer.new_empty((len(index), *buffer.shape[1:]))
        torch.index_select(buffer[:, :, : self.length], 0, index, out=out[:, :, : self.length])
        return out


class RollingLayerCache(LayerCache):
    """A self-attention cache that keeps only the last ``keep`` keys/values (oldest first).

    Two uses. A sliding-window decoder keeps ``window - 1``, all that its next query can still
    see, so decoding memory stays flat however long the generation. Transformer-XL's segment
    memory (Dai et al., 2019) keeps the last ``memory`` positions of one segment for the next,
    which attends to them as well as to itself. What is kept is detached: no gradient flows into
    an earlier segment. ``length`` still counts every position seen (the next query's position,
    so relative positions stay right); ``held`` is how many keys are kept.
    """

    def __init__(self, keep: int) -> None:
        super().__init__(max_len=keep)
        self.keep = keep

    @property
    def held(self) -> int:
        return self.k.shape[2] if self.k is not None else 0

    def append(self, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        """``(B, G, T, D)`` new keys/values → the kept ones followed by them ``(B, G, held + T, D)``."""
        keys = torch.cat([self.k, k], dim=2) if self.k is not None else k
        values = torch.cat([self.v, v], dim=2) if self.v is not None else v
        start = keys.shape[2] - min(self.keep, keys.shape[2])
        self.k, self.v = keys[:, :, start:].detach(), values[:, :, start:].detach()
        self.length += k.shape[2]
        return keys, values

    def reorder(self, index: Tensor) -> None:
        if self.k is not None:
            self.k, self.v = self.k.index_select(0, index), self.v.index_select(0, index)


class KVCache:
    """The per-layer caches of a decoder stack: ``self_attn[i]`` and ``cross_attn[i]``.

    With ``window``, the self-attention caches roll (:class:`RollingLayerCache`)."""

    def __init__(self, n_layers: int, max_len: int, cross: bool = False, window: int | None = None,
                 memory: int | None = None) -> None:
        """``window``: a sliding-window decoder's cache (keeps window - 1); ``memory``: a segment
        memory keeping the last ``memory`` positions (Transformer-XL)."""
        keep = window - 1 if window else memory
        self.self_attn = [RollingLayerCache(keep) if keep is not None else LayerCache(max_len) for _ in range(n_layers)]
        self.cross_attn = [LayerCache(max_len, static=True) for _ in range(n_layers)] if cross else None

    @property
    def length(self) -> int:
        """Positions already cached (the offset of the next query)."""
        return self.self_attn[0].length

    def visible(self, T: int) -> int:
        """How many keys ``T`` new queries attend to: every position so far, or for a rolling cache
        the ones it keeps plus the new."""
        first = self.self_attn[0]
        return (first.held if isinstance(first, RollingLayerCache) else first.length) + T

    def reorder(self, index: Tensor, cross: bool = True) -> None:
        """Select batch rows ``index`` of every cache; ``cross=False`` leaves the encoder
        keys/values alone (valid when rows only move among copies of the same source)."""
        for c in self.self_attn + ((self.cross_attn or []) if cross else []):
            c.reorder(index)


class MultiHeadAttention(nn.Module):
    """Multi-head (and grouped/multi-query) attention with the score, scale and ties of the config.

    ``forward(x, memory=None, ...)``: self-attention over ``x`` ``(B, T, d)``, or — for a module
    built with ``cross=True`` — cross-attention from ``x`` to ``memory`` ``(B, S, d)``. Returns
    ``(B, T, d)``. ``cross`` fixes which at construction: a cross-attention module projects
    keys/values from ``memory`` (or reads them from its cache) and needs one of the two; a
    self-attention module projects q, k, v together and refuses ``memory``, so miswiring fails
    loudly instead of attending to the wrong sequence.
    Set ``capture = True`` to keep the attention weights of the next forward in ``weights``
    ``(B, H, T, S)`` (this switches the module to the reference path); ``capture = "scores"``
    also keeps the pre-softmax scores in ``scores``. ``qkv.interpret.capture`` does this for you.
    """

    def __init__(self, cfg: ModelConfig, cross: bool = False) -> None:
        super().__init__()
        self.n_heads, self.n_kv, self.d_head = cfg.n_heads, cfg.kv_heads, cfg.head_dim
        self.scale = attention_scale(cfg)
        self.cross = cross
        inner, kv_inner = cfg.n_heads * cfg.head_dim, cfg.kv_heads * cfg.head_dim
        self.q_proj = nn.Linear(cfg.d_model, inner, bias=cfg.bias)
        # Tied Wq = Wk (question 2): keys are then the queries' projection of the same input.
        self.k_proj = None if cfg.tie_qk else nn.Linear(cfg.d_model, kv_inner, bias=cfg.bias)
        self.v_proj = nn.Linear(cfg.d_model, kv_inner, bias=cfg.bias)
        self.out_proj = nn.Linear(inner, cfg.d_model, bias=cfg.bias)
        self.scorer = ATTENTION[cfg.attention](cfg)
        self.dropout = nn.Dropout(cfg.dropout_attention)
        self.capture = False
        self.weights: Tensor | None = None
        self.scores: Tensor | None = None  # pre-softmax, kept when capture == "scores"
        self._stacked: tuple | None = None  # (key, weight, bias) kept between generation steps
        # (H,) factors on each head's output before out_proj: 0 ablates a head; its gradient is
        # Michel et al. (2019)'s head importance. None = every head as it is (no extra work).
        self.head_mask: Tensor | None = None

    def _heads(self, x: Tensor, n: int) -> Tensor:
        B, T, _ = x.shape
        return x.view(B, T, n, self.d_head).transpose(1, 2)  # (B, T, n·D) -> (B, n, T, D)

    def _qkv_weight(self) -> tuple[Tensor, Tensor | None, list[int]]:
        """The q, k, v projections stacked into one ``(H·D + 2·G·D, d)`` weight (and bias).

        Training concatenates afresh each call (cheap next to the step, and autograd routes the
        gradient back to the three parameters). Without autograd — generation — the stacked copy
        is kept and reused until any of the parameters is moved or changed in place (storage
        pointer and version counter), which takes a weight-sized copy per layer off every step.
        """
        layers = [self.q_proj] + ([self.k_proj] if self.k_proj is not None else []) + [self.v_proj]
        params = [m.weight for m in layers] + ([m.bias for m in layers] if self.q_proj.bias is not None else [])
        sizes = [m.out_features for m in layers]
        # Parameters created under inference_mode have no version counter: never cache those.
        cacheable = not torch.is_grad_enabled() and not any(p.is_inference() for p in params)
        if not cacheable:
            self._stacked = None
        else:
            key = tuple((p.data_ptr(), p._version) for p in params)
            if self._stacked is not None and self._stacked[0] == key:
                return self._stacked[1], self._stacked[2], sizes
        weight = torch.cat([m.weight for m in layers])
        bias = torch.cat([m.bias for m in layers]) if self.q_proj.bias is not None else None
        if cacheable:
            self._stacked = (key, weight, bias)
        return weight, bias, sizes

    def _project_self(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """q, k, v from one matmul against the stacked weights (fewer, larger GEMMs)."""
        if type(self.q_proj) is not nn.Linear:  # replaced (e.g. int8 for inference): no weight to stack
            q, v = self.q_proj(x), self.v_proj(x)
            k = self.k_proj(x) if self.k_proj is not None else q
            return self._heads(q, self.n_heads), self._heads(k, self.n_kv), self._heads(v, self.n_kv)
        weight, bias, sizes = self._qkv_weight()
        parts = F.linear(x, weight, bias).split(sizes, dim=-1)
        q, v = parts[0], parts[-1]
        k = parts[1] if self.k_proj is not None else q
        return self._heads(q, self.n_heads), self._heads(k, self.n_kv), self._heads(v, self.n_kv)

    def _project_memory(self, memory: Tensor) -> tuple[Tensor, Tensor]:
        k_proj = self.k_proj if self.k_proj is not None else self.q_proj
        return self._heads(k_proj(memory), self.n_kv), self._heads(self.v_proj(memory), self.n_kv)

    def forward(
        self,
        x: Tensor,
        memory: Tensor | None = None,
        mask: Tensor | None = None,
        terms: PositionTerms | None = None,
        cache: LayerCache | None = None,
    ) -> Tensor:
        B, T, _ = x.shape
        if self.cross:
            q, k, v = self._cross_qkv(x, memory, cache)  # (B, H, T, D), (B, G, S, D), (B, G, S, D)
        elif memory is not None:
            raise ValueError("memory given to a self-attention module; build it with cross=True "
                             "to attend to memory")
        else:
            q, k, v = self._self_qkv(x, terms, cache)  # (B, H, T, D), (B, G, S, D), (B, G, S, D)
        if self.n_kv != self.n_heads:  # grouped-query: each k/v head serves H/G query heads
            k = k.repeat_interleave(self.n_heads // self.n_kv, dim=1)  # (B, H, S, D)
            v = v.repeat_interleave(self.n_heads // self.n_kv, dim=1)
        out = self._attend(q, k, v, mask, terms)  # (B, H, T, D)
        if self.head_mask is not None:
            out = out * self.head_mask.to(out.dtype)[None, :, None, None]
        out = out.transpose(1, 2).reshape(B, T, self.n_heads * self.d_head)  # (B, T, H·D)
        return self.out_proj(out)

    def _self_qkv(self, x: Tensor, terms: PositionTerms | None, cache: LayerCache | None):
        q, k, v = self._project_self(x)  # (B, H, T, D), (B, G, T, D), (B, G, T, D)
        if terms is not None and terms.rotary is not None:
            cos, sin = terms.rotary
            q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)
        if cache is not None:
            k, v = cache.append(k, v)  # (B, G, S, D) with S = cached + T
        return q, k, v

    def _cross_qkv(self, x: Tensor, memory: Tensor | None, cache: LayerCache | None):
        q = self._heads(self.q_proj(x), self.n_heads)  # (B, H, T, D)
        if cache is not None and cache.k is not None:
            return q, cache.k, cache.v  # encoder keys/values were computed at the first step
        if memory is None:
            raise ValueError("cross-attention needs memory (the encoder output) or a cache that "
                             "already holds its keys/values")
        k, v = self._project_memory(memory)  # (B, G, S, D)
        if cache is not None:
            cache.store(k, v)
        return q, k, v

    def _attend(self, q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None, terms: PositionTerms | None) -> Tensor:
        fusable = self.scorer.fusable and (terms is None or terms.rel_k is None)
        bias = terms.bias if terms is not None else None
        structured = mask is CAUSAL or isinstance(mask, LocalWindow)
        if structured and not (fusable and not self.capture and bias is None):
            mask = mask.materialise(q.shape[2], k.shape[2], q.device)  # (1, 1, T, S)
        if fusable and not self.capture:
            p = self.dropout.p if self.training else 0.0
            if mask is CAUSAL:
                return fused_attention(q, k, v, scale=self.scale, dropout_p=p, is_causal=True)
            if isinstance(mask, LocalWindow):  # O(T·w) blocks instead of a (T, T) band
                return block_local_attention(q, k, v, mask.window, self.scale, dropout_p=p)
            return fused_attention(q, k, v, scale=self.scale, mask=mask, bias=bias, dropout_p=p)
        kept: list | None = [] if self.capture == "scores" else None
        out, weights = reference_attention(
            q, k, v, scorer=self.scorer, scale=self.scale, mask=mask, terms=terms, dropout=self.dropout,
            keep_scores=kept,
        )
        self.weights = weights if self.capture else None
        self.scores = kept[0] if kept else None
        return out
