"""Residual wiring and the encoder/decoder layers (questions 7, 11, 12, 15, 25).

A layer receives its attention, feed-forward and norm modules already built (composition by
injection, as in the annotated Transformer), and wraps each sublayer f in a ``Residual``::

    post-norm (Vaswani et al., 2017):   x ─┬──── f ── dropout ──(+)── norm ──▶
                                           └─────────────────────┘
    pre-norm (Xiong et al., 2020):      x ─┬── norm ── f ── dropout ──(+)──▶
                                           └────────────────────────────┘

With ``residual=False`` the skip path is removed (the ``(+)`` disappears), for question 11.
"""

from __future__ import annotations

from torch import Tensor, nn

from ..config import ModelConfig
from .attention import LayerCache, MultiHeadAttention
from .ffn import build_ffn
from .norm import build_norm
from .position import PositionTerms


class Residual(nn.Module):
    """One sublayer's norm, dropout and skip connection, wired as the config says."""

    def __init__(self, norm: nn.Module, placement: str, residual: bool, dropout: float) -> None:
        super().__init__()
        self.norm, self.placement, self.residual = norm, placement, residual
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, sublayer, token_mask: Tensor | None) -> Tensor:
        if self.placement == "pre":
            h = self.dropout(sublayer(self.norm(x, token_mask)))
            return x + h if self.residual else h
        h = self.dropout(sublayer(x))
        return self.norm(x + h if self.residual else h, token_mask)

    @classmethod
    def from_config(cls, cfg: ModelConfig) -> "Residual":
        return cls(build_norm(cfg), cfg.norm_placement, cfg.residual, cfg.dropout_residual)


class EncoderLayer(nn.Module):
    """Self-attention then feed-forward, each inside a ``Residual``. ``(B, T, d)`` → ``(B, T, d)``."""

    def __init__(self, self_attn: nn.Module, ffn: nn.Module, wiring: list[Residual]) -> None:
        super().__init__()
        self.self_attn, self.ffn = self_attn, ffn
        self.sub_attn, self.sub_ffn = wiring

    def forward(self, x: Tensor, mask: Tensor | None, terms: PositionTerms, token_mask: Tensor | None) -> Tensor:
        x = self.sub_attn(x, lambda h: self.self_attn(h, mask=mask, terms=terms), token_mask)
        return self.sub_ffn(x, self.ffn, token_mask)


class DecoderLayer(nn.Module):
    """Masked self-attention, cross-attention to the encoder (when present), feed-forward.

    Without ``cross_attn`` this is the decoder-only (GPT) layer. ``(B, T, d)`` → ``(B, T, d)``.
    """

    def __init__(
        self, self_attn: nn.Module, cross_attn: nn.Module | None, ffn: nn.Module, wiring: list[Residual]
    ) -> None:
        super().__init__()
        self.self_attn, self.cross_attn, self.ffn = self_attn, cross_attn, ffn
        self.sub_attn = wiring[0]
        self.sub_cross = wiring[1] if cross_attn is not None else None
        self.sub_ffn = wiring[-1]

    def forward(
        self,
        x: Tensor,
        mask: Tensor | None,
        terms: PositionTerms,
        token_mask: Tensor | None,
        memory: Tensor | None = None,
        memory_mask: Tensor | None = None,
        cache: tuple[LayerCache, LayerCache | None] | None = None,
    ) -> Tensor:
        self_cache, cross_cache = cache if cache is not None else (None, None)
        x = self.sub_attn(x, lambda h: self.self_attn(h, mask=mask, terms=terms, cache=self_cache), token_mask)
        if self.cross_attn is not None:
            x = self.sub_cross(
                x, lambda h: self.cross_attn(h, memory, mask=memory_mask, cache=cross_cache), token_mask
            )
        return self.sub_ffn(x, self.ffn, token_mask)


def build_encoder_layer(cfg: ModelConfig) -> EncoderLayer:
    wiring = [Residual.from_config(cfg) for _ in range(2)]
    return EncoderLayer(MultiHeadAttention(cfg), build_ffn(cfg), wiring)


def build_decoder_layer(cfg: ModelConfig, cross: bool) -> DecoderLayer:
    wiring = [Residual.from_config(cfg) for _ in range(3 if cross else 2)]
    cross_attn = MultiHeadAttention(cfg, cross=True) if cross else None
    return DecoderLayer(MultiHeadAttention(cfg), cross_attn, build_ffn(cfg), wiring)
