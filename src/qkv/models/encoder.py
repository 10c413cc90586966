"""Encoder-only model (BERT; Devlin et al., 2019; questions 20, 28, 34) with an MLM or a
sequence-classification head.

    ids ─▶ encoder stack (bidirectional) ─▶ hidden ─┬▶ MLM head: dense, act, norm, tied output ─▶ (B, T, V)
                                                    └▶ classify head: pool (CLS / mean / max), dense, tanh ─▶ (B, C)

Both heads sit on the same body (``self.encoder``), so a classifier can start from an MLM
checkpoint by loading the body's weights.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..config import ModelConfig
from ..nn.ffn import ACTIVATION
from ..nn.norm import build_norm
from ..nn.stack import Stack
from .common import OutputHead, init_token_embedding, init_weights


# The MLM head is one dense layer, with no second projection for a gate to multiply, so a gated
# activation (Shazeer, 2020) gives the head its gate's function: SwiGLU → SiLU, GEGLU → GELU.
HEAD_ACTIVATION = {"swiglu": "silu", "geglu": "gelu"}


def head_activation(activation: str) -> str:
    """The element-wise activation the MLM head uses for the config's ``activation``."""
    return HEAD_ACTIVATION.get(activation, activation)


class MLMHead(nn.Module):
    """BERT's prediction head: dense → activation → norm → output tied to the embedding.

    The activation is the body's (:func:`head_activation` maps a gated one to its gate's).
    """

    def __init__(self, cfg: ModelConfig, embed: nn.Embedding) -> None:
        super().__init__()
        self.dense = nn.Linear(cfg.d_model, cfg.d_model)
        self.act = ACTIVATION[head_activation(cfg.activation)]
        self.norm = build_norm(cfg)
        self.out = OutputHead(cfg, embed)

    def forward(self, h: Tensor, token_mask: Tensor | None) -> Tensor:
        return self.out(self.norm(self.act(self.dense(h)), token_mask))  # (B, T, V)


class ClassifyHead(nn.Module):
    """Pool the sequence (first token, mean or max over real tokens), then dense → tanh → classes."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.pooling = cfg.pooling
        self.dense = nn.Linear(cfg.d_model, cfg.d_model)
        self.dropout = nn.Dropout(cfg.dropout_residual)
        self.out = nn.Linear(cfg.d_model, cfg.n_classes)

    def forward(self, h: Tensor, token_mask: Tensor | None) -> Tensor:
        if self.pooling == "cls":
            pooled = h[:, 0]  # (B, d)
        else:
            real = token_mask[..., None] if token_mask is not None else torch.ones_like(h[..., :1], dtype=torch.bool)
            if self.pooling == "max":  # per feature, the largest value over real tokens (Kim's CNN pooling)
                pooled = h.masked_fill(~real, float("-inf")).amax(1)  # (B, d)
            else:
                w = real.to(h.dtype)
                pooled = (h * w).sum(1) / w.sum(1).clamp(min=1)  # (B, d)
        return self.out(self.dropout(torch.tanh(self.dense(pooled))))  # (B, C)


class EncoderModel(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.config = cfg
        embed = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.encoder = Stack(cfg, embed, causal=False)
        self.head = MLMHead(cfg, embed) if cfg.head == "mlm" else ClassifyHead(cfg)
        init_weights(self, cfg)
        init_token_embedding(embed, cfg)

    def forward(self, input_ids: Tensor, mask: Tensor | None = None, segments: Tensor | None = None) -> Tensor:
        """input_ids ``(B, T)``, mask ``(B, T)`` → ``(B, T, V)`` (mlm) or ``(B, C)`` (classify)."""
        h = self.encoder(input_ids, mask, segments=segments)
        return self.head(h, mask)

    def forward_batch(self, batch: dict[str, Tensor]) -> Tensor:
        return self(batch["input_ids"], batch.get("mask"), batch.get("segments"))
