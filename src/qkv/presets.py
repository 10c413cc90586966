"""Named model configurations. Each is a function returning a ``ModelConfig``; override any
field with ``preset().replace(...)`` or on the command line with ``key=value``."""

from __future__ import annotations

from typing import Callable

from .config import ModelConfig

PRESETS: dict[str, Callable[[], ModelConfig]] = {}


def preset(fn: Callable[[], ModelConfig]) -> Callable[[], ModelConfig]:
    PRESETS[fn.__name__] = fn
    return fn


@preset
def transformer_base() -> ModelConfig:
    """The 2017 paper's base model: 6+6 layers, d=512, 8 heads, FFN 2048, post-norm, sinusoids."""
    return ModelConfig(family="seq2seq", vocab_size=37000, d_model=512, n_layers=6, n_heads=8, d_ff=2048)


@preset
def multi30k() -> ModelConfig:
    """A small translator for Multi30k: 3+3 layers, d=256, 4 heads, FFN 1024 (the peers' shape)."""
    return ModelConfig(family="seq2seq", vocab_size=8000, d_model=256, n_layers=3, n_heads=4, d_ff=1024)


@preset
def gpt_small() -> ModelConfig:
    """A decoder-only LM in GPT-2's wiring: pre-norm, learned positions, GELU."""
    return ModelConfig(
        family="lm", vocab_size=8000, d_model=256, n_layers=4, n_heads=4, d_ff=1024, max_len=256,
        position="learned", norm_placement="pre", activation="gelu_tanh", embed_scale=False,
    )


@preset
def shakespeare_char() -> ModelConfig:
    """nanoGPT's CPU recipe for Tiny Shakespeare: 4 layers, 4 heads, d=128, context 64, no dropout."""
    return ModelConfig(
        family="lm", vocab_size=65, d_model=128, n_layers=4, n_heads=4, d_ff=512, max_len=64,
        position="learned", norm_placement="pre", activation="gelu", embed_scale=False,
        dropout_embed=0.0, dropout_residual=0.0,
    )


@preset
def bert_small() -> ModelConfig:
    """An encoder in BERT's wiring: post-norm, learned positions, embedding norm, GELU."""
    return ModelConfig(
        family="encoder", vocab_size=8000, d_model=256, n_layers=4, n_heads=4, d_ff=1024, max_len=128,
        position="learned", activation="gelu", embed_norm=True, embed_scale=False, output_bias=True,
    )


@preset
def lstm_multi30k() -> ModelConfig:
    """The LSTM baseline for translation, same vocabulary and width as ``multi30k``."""
    return ModelConfig(family="seq2seq", arch="lstm", vocab_size=8000, d_model=256, n_layers=2)
