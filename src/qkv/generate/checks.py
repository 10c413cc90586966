"""What ``generate`` refuses before it runs, and when it crops the context instead.

Every decoding setting is checked here with a one-line :class:`GenerationError` that names
the setting, the bad value and the allowed range — so ``temperature=0`` or ``top_p=0`` fail
with a reason instead of a torch error deep in a softmax, and ``top_p=1.5`` is not silently
taken as "keep everything".

Length policy (:func:`context_window`): a decoder-only Transformer asked for more positions
than ``max_len`` keeps going with the context cropped to its last ``max_len`` tokens, as
nanoGPT's ``generate`` does; with ``allow_extrapolation=True`` a position scheme that can run
past ``max_len`` is run past it instead. A seq2seq source or target past ``max_len`` is refused.
"""

from __future__ import annotations

import math
from numbers import Integral, Real

import torch
from torch import Tensor, nn

from ..config import ModelConfig
from ..errors import GenerationError

MAX_NEW_TOKENS_LIMIT = 100_000
SEED_LIMIT = 2**64 - 1  # torch.Generator.manual_seed takes 64-bit seeds
EXTRAPOLATING = ("sinusoidal", "rope", "alibi", "t5_bias", "shaw", "none")  # no table indexed by position


def _is_int(value: object) -> bool:
    return isinstance(value, Integral) and not isinstance(value, bool)


def _is_real(value: object) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value)


def _integer(name: str, value: object, low: int, high: int | None = None, optional: bool = False) -> None:
    if optional and value is None:
        return
    if not _is_int(value) or value < low or (high is not None and value > high):
        allowed = f"an integer >= {low}" if high is None else f"an integer in [{low}, {high}]"
        raise GenerationError(f"{name}={value!r} must be {allowed}" + (" or None" if optional else ""))


def _flag(name: str, value: object) -> None:
    if not isinstance(value, bool):
        raise GenerationError(f"{name}={value!r} must be True or False")


def _check_sampling(do_sample: bool, beams: int, temperature: object, top_k: object, top_p: object,
                    repetition_penalty: object) -> None:
    """The sampling filters. ``temperature`` only matters when sampling, so greedy ignores it."""
    if do_sample and beams > 1:
        raise GenerationError(f"do_sample=True with beams={beams}: beam sampling is not supported; "
                              f"sample with beams=1, or search with do_sample=False")
    if do_sample and not (_is_real(temperature) and temperature > 0):
        hint = "; use greedy decoding (do_sample=False) for temperature 0" if temperature == 0 else ""
        raise GenerationError(f"temperature={temperature!r} must be a finite number > 0 when sampling{hint}")
    _integer("top_k", top_k, 1, optional=True)
    if top_p is not None and not (_is_real(top_p) and 0 < top_p <= 1):
        raise GenerationError(f"top_p={top_p!r} must lie in (0, 1] or be None (1 keeps every token)")
    if not (_is_real(repetition_penalty) and repetition_penalty > 0):
        raise GenerationError(f"repetition_penalty={repetition_penalty!r} must be a finite number > 0 "
                              f"(1 = no penalty)")


def check_settings(cfg: ModelConfig, *, max_new_tokens: object, beams: object, length_alpha: object,
                   early_stopping: object, do_sample: object, temperature: object, top_k: object,
                   top_p: object, repetition_penalty: object, seed: object, eos_id: object,
                   allow_extrapolation: object, use_cache: object = True) -> None:
    """Raise :class:`GenerationError` for the first decoding setting out of range."""
    _integer("max_new_tokens", max_new_tokens, 1, MAX_NEW_TOKENS_LIMIT)
    _integer("beams", beams, 1)
    if not (_is_real(length_alpha) and length_alpha >= 0):
        raise GenerationError(f"length_alpha={length_alpha!r} must be a finite number >= 0 (0 = no length penalty)")
    _flag("early_stopping", early_stopping)
    _flag("do_sample", do_sample)
    _flag("allow_extrapolation", allow_extrapolation)
    _flag("use_cache", use_cache)
    _check_sampling(do_sample, beams, temperature, top_k, top_p, repetition_penalty)
    _integer("seed", seed, 0, SEED_LIMIT, optional=True)
    if eos_id is not None and eos_id != -1 and not (_is_int(eos_id) and 0 <= eos_id < cfg.vocab_size):
        raise GenerationError(f"eos_id={eos_id!r} must be None (never stop), -1 (the config's, "
                              f"{cfg.eos_id}) or a token id in [0, {cfg.vocab_size})")


def check_input(model: nn.Module, input_ids: Tensor, mask: Tensor | None) -> None:
    """Shapes, dtypes, ids in the vocabulary, and left padding for decoder-only prompts."""
    cfg = model.config
    if input_ids.dim() != 2 or input_ids.numel() == 0:
        raise GenerationError(f"input_ids must be a non-empty (batch, length) tensor, "
                              f"got shape {tuple(input_ids.shape)}")
    if input_ids.dtype not in (torch.int64, torch.int32):  # what nn.Embedding takes
        raise GenerationError(f"input_ids must hold integer token ids, got dtype {input_ids.dtype}")
    if int(input_ids.max()) >= cfg.vocab_size or int(input_ids.min()) < 0:
        raise GenerationError(f"input_ids hold ids outside the vocabulary [0, {cfg.vocab_size})")
    if mask is None:
        return
    if mask.shape != input_ids.shape:
        raise GenerationError(f"mask shape {tuple(mask.shape)} differs from input_ids shape {tuple(input_ids.shape)}")
    if mask.dtype != torch.bool:
        raise GenerationError(f"mask must be a bool tensor (True = real token), got dtype {mask.dtype}; "
                              f"pass mask.bool()")
    if not mask.any(dim=1).all():
        raise GenerationError("a row of the batch is all padding; give every row at least one real token")
    # Decoding continues from each row's last column, so that token must be real.
    if cfg.family != "seq2seq" and not mask[:, -1].all():
        raise GenerationError("a decoder-only prompt ends in padding; pad prompts on the LEFT so every "
                              "row's last token is real")


def context_window(cfg: ModelConfig, prompt: int, max_new_tokens: int, allow_extrapolation: bool) -> int | None:
    """The number of tokens to crop the context to (``max_len``), or None for no crop.

    ``prompt`` is the padded input width. Raises for a seq2seq request past ``max_len``.
    """
    needed = max_new_tokens + (1 if cfg.family == "seq2seq" else prompt)  # a decoder starts from start_id
    if cfg.arch != "transformer" or (prompt <= cfg.max_len and needed <= cfg.max_len):
        return None  # an LSTM has no positional limit
    if allow_extrapolation and cfg.position in EXTRAPOLATING:
        return None
    if cfg.family != "seq2seq":
        return cfg.max_len
    raise GenerationError(
        f"input of {prompt} tokens plus max_new_tokens={max_new_tokens} needs {needed} positions, "
        f"over the model's max_len={cfg.max_len}; shorten the input or lower max_new_tokens"
        + ("" if cfg.position not in EXTRAPOLATING else
           f", or pass allow_extrapolation=True ({cfg.position!r} positions can run past max_len)")
    )


def crop_notice(cfg: ModelConfig, prompt: int, max_new_tokens: int) -> str:
    """The one warning a cropped generation gives."""
    notice = (f"prompt of {prompt} tokens plus max_new_tokens={max_new_tokens} needs {prompt + max_new_tokens} "
              f"positions, over max_len={cfg.max_len}: generating with the context cropped to the last "
              f"{cfg.max_len} tokens")
    if cfg.position in EXTRAPOLATING:
        notice += f" (or pass allow_extrapolation=True to run {cfg.position!r} positions past max_len)"
    return notice
