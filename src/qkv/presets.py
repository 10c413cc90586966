"""Named model configurations: the architectures the training presets (``qkv.tasks``) use, and
the reference shapes of the papers and of the Hugging Face models qkv interoperates with.

Each is a function returning a ``ModelConfig``; keyword arguments change fields
(``translator(position="rope")``), and on the command line any field is a ``key=value``
override. The vocabulary size and special ids are placeholders until a task's tokenizer is
trained (``Task.model_config`` fills them in).
"""

from __future__ import annotations

from typing import Any, Callable

from .config import ModelConfig

PRESETS: dict[str, Callable[..., ModelConfig]] = {}


def preset(fn: Callable[..., ModelConfig]) -> Callable[..., ModelConfig]:
    PRESETS[fn.__name__] = fn
    return fn


@preset
def transformer_base(**changes: Any) -> ModelConfig:
    """The 2017 paper's base model: 6+6 layers, d=512, 8 heads, FFN 2048, post-norm, sinusoids."""
    return ModelConfig(**{**dict(family="seq2seq", vocab_size=37000, d_model=512, n_layers=6, n_heads=8,
                                 d_ff=2048), **changes})


@preset
def translator(**changes: Any) -> ModelConfig:
    """The Multi30k / Tatoeba translator: 3+3 layers, d=256, 4 heads, FFN 1024, post-norm,
    sinusoids, dropout 0.1 on embeddings, residuals and attention (the peers' shape)."""
    base = dict(family="seq2seq", d_model=256, n_layers=3, n_heads=4, d_ff=1024, max_len=256,
                dropout_embed=0.1, dropout_residual=0.1, dropout_attention=0.1, dropout_activation=0.0)
    return ModelConfig(**{**base, **changes})


@preset
def lstm_translator(**changes: Any) -> ModelConfig:
    """The RNN baseline for translation: bidirectional 2-layer LSTM encoder, 2-layer LSTM decoder
    with Luong attention, d=256, dropout 0.2 — same vocabulary and width as ``translator``."""
    base = dict(family="seq2seq", arch="lstm", d_model=256, n_layers=2, max_len=256, dropout_embed=0.2,
                dropout_residual=0.2)
    return ModelConfig(**{**base, **changes})


@preset
def shakespeare_char(**changes: Any) -> ModelConfig:
    """nanoGPT's CPU model for Tiny Shakespeare: 4 layers, 4 heads, d=128, context 64, learned
    positions, pre-norm GELU, no biases, no dropout."""
    base = dict(family="lm", d_model=128, n_layers=4, n_heads=4, d_ff=512, max_len=64, position="learned",
                norm_placement="pre", activation="gelu", embed_scale=False, bias=False, dropout_embed=0.0,
                dropout_residual=0.0)
    return ModelConfig(**{**base, **changes})


@preset
def austen_lm(**changes: Any) -> ModelConfig:
    """A 4-layer d=256 decoder-only LM with rotary positions, context 128, for subword text."""
    base = dict(family="lm", d_model=256, n_layers=4, n_heads=4, d_ff=1024, max_len=128, position="rope",
                norm_placement="pre", activation="gelu", embed_scale=False, dropout_embed=0.1,
                dropout_residual=0.1)
    return ModelConfig(**{**base, **changes})


@preset
def sst2_encoder(**changes: Any) -> ModelConfig:
    """A 4-layer d=256 encoder in BERT's wiring (post-norm, embedding norm, GELU) with rotary
    positions: most SST-2 training phrases are under ten tokens, and a learned table would leave
    the positions only the longer dev sentences reach barely trained (~1 point on dev)."""
    base = dict(family="encoder", d_model=256, n_layers=4, n_heads=4, d_ff=1024, max_len=128,
                position="rope", activation="gelu", embed_norm=True, embed_scale=False, output_bias=True,
                norm_eps=1e-12, dropout_embed=0.1, dropout_residual=0.1, dropout_attention=0.1)
    return ModelConfig(**{**base, **changes})


@preset
def gpt_small(**changes: Any) -> ModelConfig:
    """A decoder-only LM in GPT-2's wiring: pre-norm, learned positions, tanh-GELU."""
    base = dict(family="lm", vocab_size=8000, d_model=256, n_layers=4, n_heads=4, d_ff=1024, max_len=256,
                position="learned", norm_placement="pre", activation="gelu_tanh", embed_scale=False)
    return ModelConfig(**{**base, **changes})


@preset
def bert_small(**changes: Any) -> ModelConfig:
    """An encoder in BERT's wiring: post-norm, learned positions, embedding norm, GELU."""
    base = dict(family="encoder", vocab_size=8000, d_model=256, n_layers=4, n_heads=4, d_ff=1024, max_len=128,
                position="learned", activation="gelu", embed_norm=True, embed_scale=False, output_bias=True)
    return ModelConfig(**{**base, **changes})


__all__ = ["PRESETS", "preset", "transformer_base", "translator", "lstm_translator", "shakespeare_char",
           "austen_lm", "sst2_encoder", "gpt_small", "bert_small"]
