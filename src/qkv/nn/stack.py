"""A stack of layers with its embedding front end: the shared body of every model family.

    ids ─▶ token embedding ·√d (opt.) ─▶ + absolute position (opt.) ─▶ + segment (opt.)
        ─▶ norm (opt., BERT) ─▶ dropout ─▶ N × layer ─▶ final norm (pre-norm stacks) ─▶ hidden

The stack builds the attention mask once per forward (padding ∧ causal ∧ window, True = may
attend) and asks its position scheme once for what attention needs; every layer shares both.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from ..config import ModelConfig
from . import masks
from .attention import KVCache
from .block import build_decoder_layer, build_encoder_layer
from .ids import check_ids
from .norm import build_norm
from .position import build_position


class Stack(nn.Module):
    """Encoder stack (``causal=False``) or decoder stack (``causal=True``, optionally with cross).

    ``embed`` is injected so a seq2seq model can share one table between encoder, decoder and
    output projection (Press & Wolf, 2017). ``ids_name`` is what an out-of-vocabulary error
    calls the ids (``src`` and ``tgt_in`` in a seq2seq model). Only the decoder of an
    encoder-decoder (``cross=True``) has ``n_decoder_layers`` layers; every other stack, the
    decoder-only LM's included, has ``n_layers``, as the LSTM baselines and ``describe`` count.
    """

    def __init__(self, cfg: ModelConfig, embed: nn.Embedding, causal: bool, cross: bool = False,
                 ids_name: str = "input_ids") -> None:
        super().__init__()
        self.cfg, self.causal, self.cross, self.ids_name = cfg, causal, cross, ids_name
        # Decoder layers whose self-attention may still see the future (cfg.causal_mask=False):
        # the "cheating" decoder of question 16. Cached decoding stays causal whatever this says.
        self.mask_future = causal and cfg.causal_mask
        # mask_hook(mask, T, S) -> mask: a user's change to the attention mask, applied after
        # padding ∧ causal ∧ window; it gets a bool (B|1, 1, T|1, S) tensor or None and returns one.
        self.mask_hook = None
        self.embed = embed
        self.embed_scale = math.sqrt(cfg.d_model) if cfg.embed_scale else 1.0  # question 8
        self.position = build_position(cfg, causal)
        self.segment = nn.Embedding(cfg.type_vocab_size, cfg.d_model) if cfg.type_vocab_size else None
        self.embed_norm = build_norm(cfg) if cfg.embed_norm else None
        self.dropout = nn.Dropout(cfg.dropout_embed)
        n = cfg.decoder_layers if cross else cfg.n_layers
        if causal:
            self.layers = nn.ModuleList(build_decoder_layer(cfg, cross) for _ in range(n))
        else:
            self.layers = nn.ModuleList(build_encoder_layer(cfg) for _ in range(n))
        self.final_norm = build_norm(cfg) if cfg.use_final_norm else None
        self.gradient_checkpointing = False  # recompute each layer in backward (question 31)

    def new_cache(self, max_len: int) -> KVCache:
        """A windowed decoder keeps only the keys its window can still reach, an XL decoder the last
        ``xl_memory`` positions: the cache then stays flat however long the text."""
        window = self.cfg.window if self.mask_future else None
        memory = self.cfg.xl_memory if self.causal else None
        return KVCache(len(self.layers), max_len, cross=self.cross, window=window, memory=None if window else memory)

    def positions(self, T: int, token_mask: Tensor | None, offset: int, device: torch.device) -> tuple[Tensor, Tensor]:
        """Query and key positions, ``(B|1, T)`` and ``(B|1, S)``; left padding is skipped."""
        if token_mask is not None:
            pos_k = masks.positions_from_mask(token_mask)  # (B, S)
        else:
            pos_k = torch.arange(offset + T, device=device)[None]  # (1, S)
        limit = self.position.max_positions
        # Positions never exceed S - 1, so the reduction (and its sync) only runs near the limit.
        if limit is not None and pos_k.shape[-1] > limit and int(pos_k.max()) >= limit:
            raise ValueError(
                f"sequence reaches position {int(pos_k.max())}, but {self.cfg.position!r} positions "
                f"stop at max_len={limit}; shorten the input or use a position scheme that "
                f"extrapolates (sinusoidal, rope, alibi, t5_bias)"
            )
        return pos_k[:, -T:], pos_k

    def attention_mask(self, T: int, S: int, token_mask: Tensor | None, device: torch.device,
                       right_padded: bool | None = None):
        """padding ∧ causal ∧ window as one bool mask ``(B|1, 1, T|1, S)``, or None if unrestricted.

        A plain causal mask over a full sequence, unpadded or padded on the right only (teacher
        forcing), is returned as ``masks.CAUSAL`` so the fused kernel can skip the masked blocks
        instead of reading a dense ``(B, 1, T, S)`` mask: 1.4–2× faster at ≥ 2k tokens.
        ``right_padded=None`` looks at ``token_mask`` to find out (one reduction, a host sync on
        CUDA); a caller that knows, such as ``forward_batch`` on a collator's batch, says so.
        """
        if self.mask_future and T == S > 1 and self.mask_hook is None and (
            token_mask is None or (masks.is_right_padded(token_mask) if right_padded is None else right_padded)
        ):  # windowed: attended block by block, O(T·w) (nn.local_attention)
            return masks.LocalWindow(self.cfg.window) if self.cfg.window else masks.CAUSAL
        pad = masks.padding_mask(token_mask) if token_mask is not None else None
        # A single newest query may see every key, so decoding steps need no causal mask.
        causal = masks.causal_mask(T, S, device) if self.mask_future and T > 1 else None
        window = masks.window_mask(T, S, self.cfg.window, device) if self.cfg.window else None
        mask = masks.combine(pad, causal, window)
        if self.mask_hook is not None:  # the hook always sees the 4-d form (or None)
            mask = self.mask_hook(mask if mask is None or mask.dim() == 4 else mask[None, None], T, S)
        return masks.ensure_nonempty_rows(mask) if mask is not None else None

    def forward(
        self,
        ids: Tensor,
        token_mask: Tensor | None = None,
        *,
        memory: Tensor | None = None,
        memory_mask: Tensor | None = None,
        cache: KVCache | None = None,
        segments: Tensor | None = None,
        right_padded: bool | None = None,
    ) -> Tensor:
        """ids ``(B, T)`` → hidden ``(B, T, d)``.

        token_mask: ``(B, S)`` bool, True for real tokens, covering the cached positions too
        (S = cached + T). memory ``(B, S_enc, d)`` and memory_mask ``(B, S_enc)`` feed
        cross-attention. With ``cache``, only the new tokens ``ids`` are processed.
        right_padded: True promises every ``token_mask`` row is real tokens then padding (what
        qkv's collators make), None checks; see :meth:`attention_mask`.
        """
        B, T = ids.shape
        offset = cache.length if cache is not None else 0
        S = offset + T
        if token_mask is not None and token_mask.shape != (B, S):
            raise ValueError(f"token_mask has shape {tuple(token_mask.shape)}, expected {(B, S)} (cached + new)")
        pos_q, pos_k = self.positions(T, token_mask, offset, ids.device)
        visible = cache.visible(T) if cache is not None else S  # a rolling cache holds the last keys only
        if visible < S:
            pos_k = pos_k[:, -visible:]
            token_mask = token_mask[:, -visible:] if token_mask is not None else None
        check_ids(ids, self.embed.num_embeddings, self.ids_name)
        x = self.embed(ids) * self.embed_scale  # (B, T, d)
        absolute = self.position.absolute(pos_q)
        if absolute is not None:
            x = x + absolute.to(x.dtype)
        if self.segment is not None:
            x = x + self.segment(segments if segments is not None else torch.zeros_like(ids))
        query_mask = token_mask[:, -T:] if token_mask is not None else None  # (B, T)
        if self.embed_norm is not None:
            x = self.embed_norm(x, query_mask)
        x = self.dropout(x)

        mask = self.attention_mask(T, visible, token_mask, ids.device, right_padded)
        terms = self.position.attention_terms(pos_q, pos_k)
        cross_mask = masks.padding_mask(memory_mask) if memory_mask is not None else None
        for i, layer in enumerate(self.layers):
            extra = {}
            if self.causal:
                layer_cache = None
                if cache is not None:
                    layer_cache = (cache.self_attn[i], cache.cross_attn[i] if cache.cross_attn else None)
                extra = dict(memory=memory, memory_mask=cross_mask, cache=layer_cache)
            if self.gradient_checkpointing and self.training:
                x = checkpoint(layer, x, mask, terms, query_mask, use_reentrant=False, **extra)
            else:
                x = layer(x, mask, terms, query_mask, **extra)
        if self.final_norm is not None:
            x = self.final_norm(x, query_mask)
        return x
