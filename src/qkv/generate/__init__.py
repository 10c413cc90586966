"""Decoding: greedy, beam search and sampling, batched, over a KV cache (questions 17, 29).

``generate(model, input_ids, ...)`` is also available as ``model.generate(...)``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .beam import beam_search, length_penalty
from .greedy import greedy
from .sampling import sample, top_k_filter, top_p_filter
from .stepper import Stepper

MAX_NEW_TOKENS_LIMIT = 100_000


class GenerationError(ValueError):
    """A generation request qkv refuses, with the reason and the fix."""


def _check(model: nn.Module, input_ids: Tensor, mask: Tensor | None, max_new_tokens: int, beams: int,
           allow_extrapolation: bool) -> None:
    cfg = model.config
    if input_ids.dim() != 2 or input_ids.numel() == 0:
        raise GenerationError(f"input_ids must be a non-empty (batch, length) tensor, got shape {tuple(input_ids.shape)}")
    if mask is not None and mask.shape != input_ids.shape:
        raise GenerationError(f"mask shape {tuple(mask.shape)} differs from input_ids shape {tuple(input_ids.shape)}")
    if mask is not None and not mask.any(dim=1).all():
        raise GenerationError("a row of the batch is all padding; give every row at least one real token")
    if not 0 < max_new_tokens <= MAX_NEW_TOKENS_LIMIT:
        raise GenerationError(f"max_new_tokens={max_new_tokens} must be in [1, {MAX_NEW_TOKENS_LIMIT}]")
    if beams < 1:
        raise GenerationError(f"beams={beams} must be a positive integer (1 = greedy)")
    if int(input_ids.max()) >= cfg.vocab_size or int(input_ids.min()) < 0:
        raise GenerationError(f"input_ids hold ids outside the vocabulary [0, {cfg.vocab_size})")
    needed = max_new_tokens + (1 if cfg.family == "seq2seq" else input_ids.shape[1])
    prompt = input_ids.shape[1]
    extrapolates = cfg.position in ("sinusoidal", "rope", "alibi", "t5_bias", "shaw", "none")
    if cfg.arch == "transformer" and (prompt > cfg.max_len or needed > cfg.max_len):
        if cfg.position == "learned" or not (allow_extrapolation and extrapolates):
            raise GenerationError(
                f"input of {prompt} tokens plus max_new_tokens={max_new_tokens} needs {needed} positions, "
                f"over the model's max_len={cfg.max_len}; shorten the input or lower max_new_tokens"
                + ("" if cfg.position == "learned" else
                   f", or pass allow_extrapolation=True ({cfg.position!r} positions can run past max_len)")
            )


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
) -> Tensor:
    """Generate token ids. Greedy unless ``beams > 1`` or ``do_sample``.

    input_ids ``(B, S)``: source sentences (seq2seq, right-padded) or prompts (decoder-only,
    LEFT-padded so every row's last token is real); mask ``(B, S)`` bool, True = real.
    Returns ``(B, S + L)`` for decoder-only (prompt then new tokens) and ``(B, L)`` new tokens
    for seq2seq; rows that end early are padded with ``pad_id`` after their EOS.
    ``eos_id=-1`` means the config's; None never stops early.
    """
    cfg = model.config
    _check(model, input_ids, mask, max_new_tokens, beams, allow_extrapolation)
    eos = cfg.eos_id if eos_id == -1 else eos_id
    was_training = model.training
    model.eval()
    try:
        stepper = Stepper(model, input_ids, mask, max_new_tokens)
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


__all__ = ["generate", "GenerationMixin", "GenerationError", "greedy", "beam_search", "sample",
           "Stepper", "length_penalty", "top_k_filter", "top_p_filter"]
