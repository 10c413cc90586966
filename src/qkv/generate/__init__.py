"""Decoding: greedy, beam search and sampling, batched, over a KV cache (questions 17, 29).

``generate(model, input_ids, ...)`` is also available as ``model.generate(...)``.
"""

from __future__ import annotations

import warnings

import torch
from torch import Tensor, nn

from .beam import beam_search, length_penalty
from .checks import MAX_NEW_TOKENS_LIMIT, check_input, check_settings, context_window, crop_notice
from .greedy import greedy
from .sampling import sample, top_k_filter, top_p_filter
from .stepper import Stepper
from ..errors import GenerationError, QkvNotice  # GenerationError re-exported


def generate(
    model: nn.Module,
    input_ids: Tensor,
    mask: Tensor | None = None,
    *,
    max_new_tokens: int = 64,
    beams: int = 1,
    length_alpha: float = 0.0,
    early_stopping: bool = False,
    do_sample: bool = False,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    repetition_penalty: float = 1.0,
    seed: int | None = None,
    eos_id: int | None = -1,
    allow_extrapolation: bool = False,
    use_cache: bool = True,
) -> Tensor:
    """Generate token ids. Greedy unless ``beams > 1`` or ``do_sample``.

    input_ids ``(B, S)``: source sentences (seq2seq, right-padded) or prompts (decoder-only,
    LEFT-padded so every row's last token is real); mask ``(B, S)`` bool, True = real.
    Returns ``(B, S + L)`` for decoder-only (prompt then new tokens) and ``(B, L)`` new tokens
    for seq2seq; rows that end early are padded with ``pad_id`` after their EOS.
    ``eos_id=-1`` means the config's; None never stops early.

    A decoder-only Transformer asked for more than ``max_len`` positions (prompt plus
    ``max_new_tokens``) warns once and predicts every token from the last ``max_len`` tokens
    alone, as nanoGPT does; ``allow_extrapolation=True`` runs a position scheme that can go past
    ``max_len`` (all but ``learned``) past it instead. A seq2seq request past ``max_len`` and
    every setting out of range raise :class:`GenerationError`. Beam sampling is not supported.

    ``use_cache=False`` keeps no KV cache (or LSTM state): each new token runs the decoder over
    the whole prefix again. That is the cached path's computation (so the same tokens, up to
    float rounding at a near tie) at the cost of decoding without a cache (question 17). For a
    decoder built without the causal mask (``causal_mask=False``, question 16) the two differ:
    the full pass lets earlier prefix positions see later ones.
    """
    cfg = model.config
    check_settings(cfg, max_new_tokens=max_new_tokens, beams=beams, length_alpha=length_alpha,
                   early_stopping=early_stopping, do_sample=do_sample, temperature=temperature, top_k=top_k,
                   top_p=top_p, repetition_penalty=repetition_penalty, seed=seed, eos_id=eos_id,
                   allow_extrapolation=allow_extrapolation, use_cache=use_cache)
    check_input(model, input_ids, mask)
    window = context_window(cfg, input_ids.shape[1], max_new_tokens, allow_extrapolation)
    if window is not None:
        warnings.warn(crop_notice(cfg, input_ids.shape[1], max_new_tokens), QkvNotice, stacklevel=2)
    eos = cfg.eos_id if eos_id == -1 else eos_id
    was_training = model.training
    model.eval()
    try:
        stepper = Stepper(model, input_ids, mask, max_new_tokens, window, use_cache=use_cache)
        if do_sample:
            gen = torch.Generator(device=input_ids.device)
            gen.manual_seed(seed if seed is not None else torch.seed())
            new = sample(stepper, max_new_tokens, eos, cfg.pad_id, temperature=temperature, top_k=top_k,
                         top_p=top_p, penalty=repetition_penalty, generator=gen)
        elif beams > 1:
            new, _ = beam_search(stepper, max_new_tokens, eos, cfg.pad_id, beams=beams, alpha=length_alpha,
                                 early_stopping=early_stopping)
        else:
            new = greedy(stepper, max_new_tokens, eos, cfg.pad_id)
    finally:
        model.train(was_training)
    return new if cfg.family == "seq2seq" else torch.cat([input_ids, new], dim=1)


class GenerationMixin:
    """Gives a model ``model.generate(input_ids, ...)``; see :func:`generate`."""

    def generate(self, input_ids: Tensor, mask: Tensor | None = None, **kwargs) -> Tensor:
        return generate(self, input_ids, mask, **kwargs)


__all__ = ["generate", "GenerationMixin", "GenerationError", "MAX_NEW_TOKENS_LIMIT", "greedy", "beam_search",
           "sample", "Stepper", "length_penalty", "top_k_filter", "top_p_filter"]
