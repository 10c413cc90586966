"""Decoder-only language model (GPT; Radford et al., 2018/2019; question 28).

    ids ─▶ decoder stack (causal self-attention, no cross-attention) ─▶ output head ─▶ logits
"""

from __future__ import annotations

from torch import Tensor, nn

from ..config import ModelConfig
from ..generate import GenerationMixin
from ..nn.attention import KVCache
from ..nn.stack import Stack
from .common import OutputHead, init_token_embedding, init_weights


class LanguageModel(GenerationMixin, nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.config = cfg
        embed = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.decoder = Stack(cfg, embed, causal=True)
        self.head = OutputHead(cfg, embed)
        init_weights(self, cfg)
        init_token_embedding(embed, cfg)

    def forward(self, input_ids: Tensor, mask: Tensor | None = None, cache: KVCache | None = None,
                right_padded: bool | None = None) -> Tensor:
        """input_ids ``(B, T)``; mask ``(B, cached + T)`` bool, True = real → logits ``(B, T, V)``.
        ``right_padded=True`` vouches that ``mask`` pads on the right only (see ``Stack``)."""
        return self.head(self.decoder(input_ids, mask, cache=cache, right_padded=right_padded))

    def forward_batch(self, batch: dict[str, Tensor]) -> Tensor:
        """Logits from a collator's batch: right-padded (``qkv.data.pad_batch``), so no check."""
        return self(batch["input_ids"], batch.get("mask"), right_padded=True)

    def new_cache(self, max_len: int) -> KVCache:
        return self.decoder.new_cache(max_len)
