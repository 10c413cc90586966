"""Model families, built from a ``ModelConfig`` by :func:`build_model`."""

from __future__ import annotations

from torch import nn

from ..config import ModelConfig
from .common import n_params
from .encoder import EncoderModel
from .lm import LanguageModel
from .lstm import LSTMLanguageModel, LSTMSeq2Seq
from .seq2seq import Seq2Seq
from .unused import unused_fields

FAMILIES = {
    ("transformer", "seq2seq"): Seq2Seq,
    ("transformer", "lm"): LanguageModel,
    ("transformer", "encoder"): EncoderModel,
    ("lstm", "seq2seq"): LSTMSeq2Seq,
    ("lstm", "lm"): LSTMLanguageModel,
}


def build_model(config: ModelConfig) -> nn.Module:
    """The model the config describes, freshly initialised."""
    return FAMILIES[(config.arch, config.family)](config)


def describe(model: nn.Module) -> str:
    """One line: family, shape and parameter count."""
    c = model.config
    if c.arch == "lstm":
        return f"{c.family} LSTM: {c.n_layers} layers, d={c.d_model}, {n_params(model) / 1e6:.2f}M params"
    layers = f"{c.n_layers}+{c.decoder_layers}" if c.family == "seq2seq" else f"{c.n_layers}"
    return (
        f"{c.family}: {layers} layers, d={c.d_model}, {c.n_heads} heads (kv {c.kv_heads}, d_head "
        f"{c.head_dim}), ffn {c.d_ff} {c.activation}, {c.norm_placement}-{c.norm}norm, "
        f"{c.position} positions, {c.attention} attention, {n_params(model) / 1e6:.2f}M params"
    )


__all__ = ["build_model", "describe", "n_params", "unused_fields", "Seq2Seq", "LanguageModel", "EncoderModel",
           "LSTMSeq2Seq", "LSTMLanguageModel", "FAMILIES"]
