"""LSTM baselines on the same data and interfaces (questions 17, 21, 26, 33).

``LSTMSeq2Seq``: bidirectional LSTM encoder; LSTM decoder with Luong "general" attention over
the encoder states (Luong, Pham & Manning, 2015), computed for all target positions at once
after the recurrent pass — the recurrence itself is what cannot be parallelised over time.
``LSTMLanguageModel``: embedding → LSTM → tied output. Both take the same batches and expose
the same ``encode``/``decode``/``new_cache`` surface as the Transformer families.

Of the config they read the sizes, the two dropouts (``dropout_embed`` on the embeddings,
``dropout_residual`` between and after the LSTM layers), ``tie_embeddings``, ``output_bias`` and
``embed_scale`` — which here only picks the embedding's initial std (d^-½ rather than
``init_std``): there is no √d multiplier, the LSTM's input weights take the table as it is.
The Transformer-only switches are listed by ``qkv.models.unused_fields``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from ..config import ModelConfig
from ..generate import GenerationMixin
from ..nn.ids import check_ids
from .common import OutputHead, init_token_embedding


class RecurrentState:
    """The decoder's (h, c) between calls, so generation runs one step at a time."""

    def __init__(self) -> None:
        self.state: tuple[Tensor, Tensor] | None = None
        self.length = 0

    def reorder(self, index: Tensor, cross: bool = True) -> None:
        """Select batch rows ``index`` ``(B',)`` (beam search). ``cross`` is ``KVCache``'s flag for
        its encoder keys/values; an LSTM's attention reads the memory, which the caller reorders."""
        if self.state is not None:
            self.state = tuple(s.index_select(1, index) for s in self.state)


def _run(lstm: nn.LSTM, x: Tensor, mask: Tensor | None, state=None):
    """Run ``lstm`` over ``(B, T, d)``, skipping right padding when a mask is given."""
    if mask is None or bool(mask.all()):
        return lstm(x, state)
    lengths = mask.sum(1).clamp(min=1).cpu()
    packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    out, state = lstm(packed, state)
    out, _ = pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
    return out, state


class LSTMSeq2Seq(GenerationMixin, nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.config = cfg
        d, p = cfg.d_model, cfg.dropout_residual
        self.embed = nn.Embedding(cfg.vocab_size, d)
        self.embed_dropout = nn.Dropout(cfg.dropout_embed)
        self.encoder = nn.LSTM(d, d // 2, cfg.n_layers, batch_first=True, bidirectional=True,
                               dropout=p if cfg.n_layers > 1 else 0.0)
        self.decoder = nn.LSTM(d, d, cfg.decoder_layers, batch_first=True,
                               dropout=p if cfg.decoder_layers > 1 else 0.0)
        self.attn = nn.Linear(d, d, bias=False)  # Luong "general": score = h_t W h_s
        self.combine = nn.Linear(2 * d, d)
        self.dropout = nn.Dropout(p)
        self.head = OutputHead(cfg, self.embed)
        init_token_embedding(self.embed, cfg)

    def encode(self, src: Tensor, src_mask: Tensor | None = None) -> Tensor:
        """src ``(B, S)`` → encoder states ``(B, S, d)`` (forward and backward halves)."""
        check_ids(src, self.embed.num_embeddings, "src")
        out, _ = _run(self.encoder, self.embed_dropout(self.embed(src)), src_mask)
        return out

    def decode(self, tgt: Tensor, memory: Tensor, src_mask: Tensor | None = None,
               tgt_mask: Tensor | None = None, cache: RecurrentState | None = None) -> Tensor:
        """tgt ``(B, T)`` → logits ``(B, T, V)``; with ``cache`` the state carries over."""
        check_ids(tgt, self.embed.num_embeddings, "tgt_in")
        x = self.embed_dropout(self.embed(tgt))
        state = cache.state if cache is not None else None
        h, state = self.decoder(x, state)  # (B, T, d)
        if cache is not None:
            cache.state, cache.length = state, cache.length + tgt.shape[1]
        scores = self.attn(h) @ memory.transpose(1, 2)  # (B, T, d) @ (B, d, S) -> (B, T, S)
        if src_mask is not None:
            scores = scores.masked_fill(~src_mask[:, None, :], float("-inf"))
        context = torch.softmax(scores, dim=-1) @ memory  # (B, T, d)
        out = torch.tanh(self.combine(torch.cat([h, context], dim=-1)))
        return self.head(self.dropout(out))

    def forward(self, src: Tensor, tgt_in: Tensor, src_mask: Tensor | None = None,
                tgt_mask: Tensor | None = None) -> Tensor:
        return self.decode(tgt_in, self.encode(src, src_mask), src_mask, tgt_mask)

    def forward_batch(self, batch: dict[str, Tensor]) -> Tensor:
        return self(batch["src"], batch["tgt_in"], batch.get("src_mask"), batch.get("tgt_mask"))

    def new_cache(self, max_len: int) -> RecurrentState:
        return RecurrentState()


class LSTMLanguageModel(GenerationMixin, nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.config = cfg
        d, p = cfg.d_model, cfg.dropout_residual
        self.embed = nn.Embedding(cfg.vocab_size, d)
        self.embed_dropout = nn.Dropout(cfg.dropout_embed)  # as in LSTMSeq2Seq and the Transformers
        self.lstm = nn.LSTM(d, d, cfg.n_layers, batch_first=True, dropout=p if cfg.n_layers > 1 else 0.0)
        self.dropout = nn.Dropout(p)
        self.head = OutputHead(cfg, self.embed)
        init_token_embedding(self.embed, cfg)

    def forward(self, input_ids: Tensor, mask: Tensor | None = None, cache: RecurrentState | None = None) -> Tensor:
        """input_ids ``(B, T)`` → logits ``(B, T, V)``. Prompts must be right-padded or unpadded."""
        check_ids(input_ids, self.embed.num_embeddings)
        state = cache.state if cache is not None else None
        h, state = self.lstm(self.embed_dropout(self.embed(input_ids)), state)
        if cache is not None:
            cache.state, cache.length = state, cache.length + input_ids.shape[1]
        return self.head(self.dropout(h))

    def forward_batch(self, batch: dict[str, Tensor]) -> Tensor:
        return self(batch["input_ids"], batch.get("mask"))

    def new_cache(self, max_len: int) -> RecurrentState:
        return RecurrentState()
