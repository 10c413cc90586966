"""Marian (``MarianMTModel``; Junczys-Dowmunt et al., 2018) ⇄ qkv ``family="seq2seq"``.

Marian is the 2017 Transformer almost verbatim: post-norm, fixed sinusoidal positions,
embeddings scaled by √d (``scale_embedding``), one embedding table shared by encoder, decoder
and output, plus a per-token ``final_logits_bias``. Its sinusoids put all sines before all
cosines (``sinusoidal_layout="concat"``), and its decoder starts from the pad token
(``decoder_start_id``). Its LayerNorms use PyTorch's default eps, 1e-5, fixed.

A qkv model with qkv's default interleaved sinusoids (sin, cos, sin, cos, ...) still exports:
the two layouts hold the same features in another order, so renumbering the model's hidden
features (every tensor's ``d_model`` axis, by :func:`concat_order`) turns one into the other. The
position vector then lands in Marian's order, and every other operation on the hidden vector
(a matmul, a residual sum, LayerNorm's mean and variance) does not care how its features are
numbered, so the exported model computes the same logits.
"""

from __future__ import annotations

import torch

from ..config import ModelConfig
from ..nn.position import Sinusoidal
from .hf_common import (
    ACT_TO_HF, StateDict, activation_from_hf, cfg_require, check_fields, common_needs, expand, hf_require,
    to_hf_names, to_qkv_names, token_id,
)

ARCH = "Marian (MarianMTModel)"
NORM_EPS = 1e-5  # nn.LayerNorm's default; Marian's config has no field for it
_DEFAULTS = ModelConfig()

ATTN = {"q_proj": "q_proj", "k_proj": "k_proj", "v_proj": "v_proj", "out_proj": "out_proj"}
ENCODER_LAYER = {
    **{f"self_attn.{q}": f"self_attn.{h}" for q, h in ATTN.items()},
    "sub_attn.norm": "self_attn_layer_norm",
    "ffn.up": "fc1",
    "ffn.down": "fc2",
    "sub_ffn.norm": "final_layer_norm",
}
DECODER_LAYER = {
    **ENCODER_LAYER,
    **{f"cross_attn.{q}": f"encoder_attn.{h}" for q, h in ATTN.items()},
    "sub_cross.norm": "encoder_attn_layer_norm",
}
BIAS = "final_logits_bias"


def model_class() -> type:
    from transformers import MarianMTModel

    return MarianMTModel


def modules(cfg: ModelConfig) -> dict[str, str]:
    table = {
        "encoder.embed": "model.encoder.embed_tokens",
        "decoder.embed": "model.decoder.embed_tokens",
        "head.proj": "lm_head",
        "head": "final_logits",  # head.bias -> final_logits.bias, reshaped below
    }
    table.update(expand(ENCODER_LAYER, cfg.n_layers, "encoder.layers", "model.encoder.layers"))
    table.update(expand(DECODER_LAYER, cfg.decoder_layers, "decoder.layers", "model.decoder.layers"))
    return table


# ---------------------------------------------------------------------------------------------
# config


def _check_hf(c) -> None:
    """Marian settings that qkv's one-shape seq2seq cannot hold."""
    hf_require(c.share_encoder_decoder_embeddings, ARCH, "share_encoder_decoder_embeddings", False,
               "qkv's encoder and decoder share one embedding table")
    hf_require(c.decoder_vocab_size in (None, c.vocab_size), ARCH, "decoder_vocab_size",
               c.decoder_vocab_size, "qkv has one vocabulary for source and target")
    hf_require(c.decoder_attention_heads == c.encoder_attention_heads, ARCH, "decoder_attention_heads",
               c.decoder_attention_heads, "qkv uses one n_heads for encoder and decoder")
    hf_require(c.decoder_ffn_dim == c.encoder_ffn_dim, ARCH, "decoder_ffn_dim", c.decoder_ffn_dim,
               "qkv uses one d_ff for encoder and decoder")
    for name in ("encoder_layerdrop", "decoder_layerdrop"):
        hf_require(getattr(c, name) == 0, ARCH, name, getattr(c, name), "qkv has no LayerDrop")


def config_from_hf(c) -> ModelConfig:
    """``MarianConfig`` → ``ModelConfig``."""
    _check_hf(c)
    dropout = float(c.dropout)
    return ModelConfig(
        family="seq2seq", vocab_size=c.vocab_size, d_model=c.d_model, n_layers=c.encoder_layers,
        n_decoder_layers=c.decoder_layers, n_heads=c.encoder_attention_heads, d_ff=c.encoder_ffn_dim,
        max_len=c.max_position_embeddings, position="sinusoidal", sinusoidal_layout="concat",
        norm="layer", norm_eps=NORM_EPS, norm_placement="post", final_norm=False,
        activation=activation_from_hf(c.activation_function, ARCH, "activation_function"),
        embed_scale=c.scale_embedding, tie_embeddings=c.tie_word_embeddings, output_bias=True,
        dropout_embed=dropout, dropout_residual=dropout, dropout_attention=float(c.attention_dropout),
        dropout_activation=float(c.activation_dropout),
        pad_id=token_id(c.pad_token_id, fallback=_DEFAULTS.pad_id),
        bos_id=token_id(c.bos_token_id, fallback=_DEFAULTS.bos_id),
        eos_id=token_id(c.eos_token_id, fallback=_DEFAULTS.eos_id),
        decoder_start_id=token_id(c.decoder_start_token_id, fallback=token_id(c.pad_token_id, 0)),
        init_std=c.init_std,
    )


def config_to_hf(cfg: ModelConfig):
    """``ModelConfig`` → ``MarianConfig``, or ValueError naming the first field Marian lacks."""
    from transformers import MarianConfig

    check_fields(cfg, ARCH, {
        **common_needs(cfg),
        "family": ("seq2seq",),
        "attention_scale": ("sqrt_dk",),
        "position": ("sinusoidal",),
        "norm_eps": (NORM_EPS,),
        "norm_placement": ("post",),
        "embed_norm": (False,),
        "final_norm": (None, False),
    })
    cfg_require(cfg.dropout_embed == cfg.dropout_residual, ARCH, "dropout_embed", cfg.dropout_embed,
                "Marian's one `dropout` is both the embedding and the residual dropout, "
                f"so it needs dropout_embed == dropout_residual={cfg.dropout_residual}")
    return MarianConfig(
        vocab_size=cfg.vocab_size, decoder_vocab_size=cfg.vocab_size, max_position_embeddings=cfg.max_len,
        encoder_layers=cfg.n_layers, decoder_layers=cfg.decoder_layers, encoder_ffn_dim=cfg.d_ff,
        decoder_ffn_dim=cfg.d_ff, encoder_attention_heads=cfg.n_heads, decoder_attention_heads=cfg.n_heads,
        d_model=cfg.d_model, activation_function=ACT_TO_HF[cfg.activation], dropout=cfg.dropout_residual,
        attention_dropout=cfg.dropout_attention, activation_dropout=cfg.dropout_activation,
        init_std=cfg.init_std, scale_embedding=cfg.embed_scale, tie_word_embeddings=cfg.tie_embeddings,
        share_encoder_decoder_embeddings=True, pad_token_id=cfg.pad_id, bos_token_id=cfg.bos_id,
        eos_token_id=cfg.eos_id, forced_eos_token_id=cfg.eos_id, decoder_start_token_id=cfg.start_id,
    )


# ---------------------------------------------------------------------------------------------
# weights


def check_positions(hf_sd: StateDict, cfg: ModelConfig) -> None:
    """HF stores the sinusoid table; qkv computes it. Refuse a table that is not the sinusoid."""
    expected = Sinusoidal(cfg, causal=False).absolute(torch.arange(cfg.max_len)[None])[0]  # (L, d)
    for side in ("encoder", "decoder"):
        table = hf_sd[f"model.{side}.embed_positions.weight"].float()
        hf_require(torch.allclose(table, expected, atol=1e-3), ARCH, f"model.{side}.embed_positions",
                   "(a non-sinusoidal table)", "qkv computes Marian's concat sinusoids, it stores no table")


def weights_from_hf(hf_sd: StateDict, cfg: ModelConfig, qkv_keys: list[str]) -> StateDict:
    check_positions(hf_sd, cfg)
    sd = dict(hf_sd)
    sd["final_logits.bias"] = sd.pop(BIAS)[0]  # (1, V) -> (V,)
    return to_qkv_names(sd, modules(cfg), qkv_keys)


# Which axis of each HF tensor is the hidden (d_model) one; the others (V, d_ff, heads) stay.
# Matched on the end of the name, so one row serves encoder and decoder, self- and cross-attention.
HIDDEN_AXIS = (
    ("embed_tokens.weight", 1), ("lm_head.weight", 1),  # (V, d)
    ("q_proj.weight", 1), ("k_proj.weight", 1), ("v_proj.weight", 1), ("fc1.weight", 1),  # (out, d)
    ("out_proj.weight", 0), ("fc2.weight", 0), ("out_proj.bias", 0), ("fc2.bias", 0),  # (d, in), (d,)
    ("layer_norm.weight", 0), ("layer_norm.bias", 0),  # (d,)
)


def concat_order(d_model: int) -> torch.Tensor:
    """Marian's feature j is qkv's interleaved feature ``order[j]``: sines (even) then cosines (odd).

    Interleaved ``PE[2i] = sin_i, PE[2i+1] = cos_i``; concatenated ``PE[i] = sin_i,
    PE[d/2 + i] = cos_i``; so ``order = [0, 2, 4, ..., 1, 3, 5, ...]``.
    """
    return torch.cat([torch.arange(0, d_model, 2), torch.arange(1, d_model, 2)])  # (d,)


def to_concat_layout(sd: StateDict, d_model: int) -> StateDict:
    """HF-named weights of an interleaved qkv model, renumbered so its hidden features are in
    Marian's concatenated order (see the module docstring)."""
    order = concat_order(d_model)
    out = {}
    for key, tensor in sd.items():
        axis = next((a for suffix, a in HIDDEN_AXIS if key.endswith(suffix)), None)
        out[key] = tensor if axis is None else tensor.index_select(axis, order.to(tensor.device))
    return out


def weights_to_hf(qkv_sd: StateDict, cfg: ModelConfig) -> StateDict:
    sd = to_hf_names(qkv_sd, modules(cfg))
    if cfg.sinusoidal_layout == "interleave":
        sd = to_concat_layout(sd, cfg.d_model)
    bias = sd.pop("final_logits.bias", None)
    if bias is None:  # qkv without output_bias: Marian's bias is then zero
        bias = torch.zeros(cfg.vocab_size, dtype=sd["lm_head.weight"].dtype)
    sd[BIAS] = bias[None]  # (V,) -> (1, V)
    sd["model.shared.weight"] = sd["model.encoder.embed_tokens.weight"]
    return sd


# HF keys computed from the config, not loaded: Marian fills these tables itself.
DERIVED = ("model.encoder.embed_positions.weight", "model.decoder.embed_positions.weight")
