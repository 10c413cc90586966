"""Which config fields a built model never reads, and why.

``ModelConfig`` is one record for every family, so some of its fields cannot act in a given
model: a classifier's pooling in a language model, the decoder depth of an encoder. The config
accepts them (a checkpoint's ``config.json`` always carries every field, defaults included),
so this table is where "has no effect here" is written down. ``tests/models/test_switch_grid.py``
holds it to the truth: every field it lists leaves the model exactly as it was, and every
switch it does not list changes the model's parameters or outputs.
"""

from __future__ import annotations

import dataclasses

from ..config import ModelConfig

# What the LSTM baselines read (``qkv.models.lstm``); every other field is Transformer-only.
LSTM_READS = frozenset({
    "family", "arch", "vocab_size", "d_model", "n_layers", "n_decoder_layers", "max_len",
    "dropout_embed", "dropout_residual", "tie_embeddings", "output_bias", "embed_scale", "init_std",
    "embed_init_std",
    "pad_id", "bos_id", "eos_id", "decoder_start_id",
})


def unused_fields(cfg: ModelConfig) -> dict[str, str]:
    """``{field: why the model built from cfg ignores it}`` (the fields not listed may act)."""
    if cfg.arch == "lstm":
        return _lstm_unused(cfg)
    out = _family_unused(cfg)
    if cfg.attention == "additive" and cfg.position != "shaw":  # Shaw's q·a^K term is still scaled
        out["attention_scale"] = "additive scores have no dot product to scale"
    if cfg.position != "sinusoidal":
        out["sinusoidal_layout"] = f"it orders sinusoidal features; position={cfg.position!r}"
    for name, position in (("shaw_max_distance", "shaw"), ("t5_num_buckets", "t5_bias"),
                           ("t5_max_distance", "t5_bias"), ("rope_base", "rope")):
        if cfg.position != position:
            out[name] = f"only position={position!r} reads it"
    return out


def _family_unused(cfg: ModelConfig) -> dict[str, str]:
    out: dict[str, str] = {}
    if cfg.family != "seq2seq":
        out["n_decoder_layers"] = "only an encoder-decoder has a second stack (an LM has n_layers)"
        out["decoder_start_id"] = "only an encoder-decoder starts a decoder from a fixed id"
    if cfg.family == "encoder":
        out["causal_mask"] = "an encoder has no causal mask to drop"
        out["xl_memory"] = "only a decoder carries a segment memory from one segment to the next"
    if cfg.family != "encoder":
        out["head"] = "only family='encoder' chooses between an MLM and a classifier head"
    if cfg.family == "encoder" and cfg.head == "classify":
        for name in ("tie_embeddings", "output_bias"):
            out[name] = "the classify head has no vocabulary-sized output layer"
    else:
        for name in ("pooling", "n_classes"):
            out[name] = "only the encoder's classify head pools or has classes"
    return out


def _lstm_unused(cfg: ModelConfig) -> dict[str, str]:
    out = {f.name: "a Transformer-only switch; the LSTM baselines do not read it"
           for f in dataclasses.fields(cfg) if f.name not in LSTM_READS}
    if cfg.family != "seq2seq":
        out["n_decoder_layers"] = "only the LSTM seq2seq model has a decoder"
        out["decoder_start_id"] = "only an encoder-decoder starts a decoder from a fixed id"
    return out
