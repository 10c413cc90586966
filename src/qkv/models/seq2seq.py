"""Encoder-decoder Transformer for translation (Vaswani et al., 2017; questions 7, 15, 28).

    src ─▶ encoder stack ─▶ memory ──────────────┐ (cross-attention in every decoder layer)
    tgt_in ─▶ decoder stack (causal self-attn) ◀─┘ ─▶ output head ─▶ logits

Source and target share one vocabulary and one embedding table (a joint BPE, as Marian does).
"""

from __future__ import annotations

from torch import Tensor, nn

from ..config import ModelConfig
from ..generate import GenerationMixin
from ..nn.attention import KVCache
from ..nn.stack import Stack
from .common import OutputHead, init_token_embedding, init_weights


class Seq2Seq(GenerationMixin, nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.config = cfg
        embed = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.encoder = Stack(cfg, embed, causal=False, ids_name="src")
        self.decoder = Stack(cfg, embed, causal=True, cross=True, ids_name="tgt_in")
        self.head = OutputHead(cfg, embed)
        init_weights(self, cfg)
        init_token_embedding(embed, cfg)

    def encode(self, src: Tensor, src_mask: Tensor | None = None) -> Tensor:
        """src ``(B, S)``, src_mask ``(B, S)`` bool → memory ``(B, S, d)``."""
        return self.encoder(src, src_mask)

    def decode(
        self,
        tgt: Tensor,
        memory: Tensor,
        src_mask: Tensor | None = None,
        tgt_mask: Tensor | None = None,
        cache: KVCache | None = None,
        right_padded: bool | None = None,
    ) -> Tensor:
        """tgt ``(B, T)`` (the new tokens when cached) → logits ``(B, T, V)``."""
        h = self.decoder(tgt, tgt_mask, memory=memory, memory_mask=src_mask, cache=cache, right_padded=right_padded)
        return self.head(h)

    def forward(
        self, src: Tensor, tgt_in: Tensor, src_mask: Tensor | None = None, tgt_mask: Tensor | None = None,
        right_padded: bool | None = None,
    ) -> Tensor:
        """Teacher-forced logits ``(B, T, V)`` for decoder inputs ``tgt_in`` ``(B, T)``.
        ``right_padded=True`` vouches that ``tgt_mask`` pads on the right only (see ``Stack``)."""
        return self.decode(tgt_in, self.encode(src, src_mask), src_mask, tgt_mask, right_padded=right_padded)

    def forward_batch(self, batch: dict[str, Tensor]) -> Tensor:
        """Logits aligned with ``batch["labels"]`` from a translation collator's batch (right-padded,
        as ``qkv.data.pad_batch`` makes every batch, so the decoder need not check)."""
        return self(batch["src"], batch["tgt_in"], batch.get("src_mask"), batch.get("tgt_mask"), right_padded=True)

    def new_cache(self, max_len: int) -> KVCache:
        return self.decoder.new_cache(max_len)
