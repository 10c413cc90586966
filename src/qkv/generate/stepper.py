"""One decoding interface for every family: prefill once, then one token per step.

``Stepper`` hides what differs between an encoder-decoder (encode the source once, start the
decoder from ``start_id``, cross-attend to the cached encoder keys/values) and a decoder-only
LM (run the left-padded prompt once, then extend its mask by one real token per step). The
search algorithms — greedy, beam, sampling — only ever call ``prefill``, ``step`` and
``reorder``.

With ``window`` (decoder-only), the model only ever sees the last ``window`` tokens, at
positions ``0 .. window-1`` — nanoGPT's ``idx[:, -block_size:]`` — so a model with learned
positions can generate past ``max_len``. The KV cache fills as usual until it holds ``window``
positions; from then on each step rebuilds it from the window (``refill``).

With ``use_cache=False`` there is no cache at all: every step runs the decoder again over the
whole prefix (the prompt or start token and every token generated so far, cropped to
``window``), which is what decoding costs without a KV cache (question 17). A seq2seq source
is still encoded once; its cross-attention keys/values are projected again at every step.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class Stepper:
    """Drives ``model`` with a KV cache. ``input_ids`` ``(B, S)``, ``mask`` ``(B, S)`` bool.

    ``window``: crop a decoder-only context to its last ``window`` tokens (None = never crop).
    ``use_cache=False``: recompute the full prefix at every step instead (see the module docstring).
    """

    def __init__(self, model: nn.Module, input_ids: Tensor, mask: Tensor | None, max_new_tokens: int,
                 window: int | None = None, use_cache: bool = True) -> None:
        self.model, self.cfg = model, model.config
        self.seq2seq = self.cfg.family == "seq2seq"
        if window is not None and self.seq2seq:
            raise ValueError("a context window crops a decoder-only prompt; seq2seq sources are not cropped")
        B, S = input_ids.shape
        self.input_ids = input_ids  # the whole prompt: what sampling's repetition penalty has seen
        self.window, self.use_cache = window, use_cache
        context = input_ids[:, -window:] if window is not None else input_ids  # (B, ≤ window)
        mask = mask[:, -window:] if mask is not None and window is not None else mask
        # The last `window` tokens (decoder-only, cropped); refilling the cache needs them, and
        # without a cache every step runs on them.
        self.context = context
        # No padding → no mask at all: positions then come from the cache offset and the
        # one-query steps need no masking, which keeps the per-token work to the layers alone.
        self.mask = mask if mask is not None and not bool(mask.all()) else None
        cache_len = max_new_tokens + (1 if self.seq2seq else S)
        cache_len = cache_len if window is None else min(cache_len, window)
        self.cache = model.new_cache(max_len=cache_len) if use_cache else None
        self.memory: Tensor | None = None
        self.targets: Tensor | None = None  # seq2seq without a cache: start token + tokens so far

    def prefill(self) -> Tensor:
        """Logits ``(B, V)`` for the first new token."""
        if self.seq2seq:
            self.memory = self.model.encode(self.input_ids, self.mask)
            start = torch.full((self.input_ids.shape[0], 1), self.cfg.start_id, device=self.input_ids.device)
            self.targets = None if self.use_cache else start  # (B, 1)
            return self.model.decode(start, self.memory, self.mask, cache=self.cache)[:, -1]
        return self.model(self.context, self.mask, cache=self.cache)[:, -1]

    def step(self, tokens: Tensor) -> Tensor:
        """Feed the newest tokens ``(B,)``; logits ``(B, V)`` for the next."""
        tokens = tokens[:, None]  # (B, 1)
        if self.seq2seq:
            return self.decode_step(tokens)
        if self.mask is not None:
            self.mask = torch.cat([self.mask, self.mask.new_ones(tokens.shape)], dim=1)
        if self.use_cache and self.window is None:
            return self.model(tokens, self.mask, cache=self.cache)[:, -1]
        self.context = torch.cat([self.context, tokens], dim=1)  # (B, prefix)
        if self.window is not None:
            self.context = self.context[:, -self.window :]  # (B, ≤ window)
            self.mask = self.mask[:, -self.window :] if self.mask is not None else None
        if self.use_cache and self.cache.length < self.window:
            return self.model(tokens, self.mask, cache=self.cache)[:, -1]
        return self.refill()

    def decode_step(self, tokens: Tensor) -> Tensor:
        """seq2seq: the newest tokens ``(B, 1)`` through the decoder, or (no cache) every target so far."""
        if self.use_cache:
            return self.model.decode(tokens, self.memory, self.mask, cache=self.cache)[:, -1]
        self.targets = torch.cat([self.targets, tokens], dim=1)  # (B, 1 + generated)
        return self.model.decode(self.targets, self.memory, self.mask)[:, -1]

    def refill(self) -> Tensor:
        """Rebuild the cache from the context window alone; logits ``(B, V)`` for the next token.

        Once the window slides, every token in it moves down one position, so every cached key
        (a function of its position, through the embedding or the rotation) is stale: the whole
        window is run again, from position 0 — nanoGPT's crop, each token predicted from at
        most the last ``window`` tokens. Without a cache this is every step: the whole context
        again, and no cache kept.
        """
        if self.window is not None and self.mask is not None and bool(self.mask.all()):
            self.mask = None  # the window has slid past the left padding
        self.cache = self.model.new_cache(max_len=self.window) if self.use_cache else None
        return self.model(self.context, self.mask, cache=self.cache)[:, -1]

    def reorder(self, index: Tensor, same_source: bool = False) -> None:
        """Keep rows ``index`` ``(B',)`` of every per-row state (beam search).

        ``same_source=True`` promises that each row moves only among rows holding the same
        source (the beams of one sentence or prompt). The source mask, encoder output and
        cross-attention keys/values are then identical across those rows, so they stay in place
        and only the self-attention caches (each beam's own history) are gathered.
        """
        if self.cache is not None:
            self.cache.reorder(index, cross=not same_source)
        if self.window is not None or not self.use_cache:
            self.context = self.context.index_select(0, index)  # each beam has its own history
        if self.targets is not None:
            self.targets = self.targets.index_select(0, index)
        if same_source:
            return
        if self.mask is not None:
            self.mask = self.mask.index_select(0, index)
        if self.memory is not None:
            self.memory = self.memory.index_select(0, index)
