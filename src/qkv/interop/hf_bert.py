"""BERT (``BertForMaskedLM``; Devlin et al., 2019) ⇄ qkv ``family="encoder"``, ``head="mlm"``.

BERT is a post-norm encoder whose embedding is word + learned position + token type, followed
by a LayerNorm (qkv's ``embed_norm``); exact-erf GELU; LayerNorm eps 1e-12. Its MLM head is
dense → activation → LayerNorm → a decoder tied to the word embedding, with its own bias
(``output_bias``). One ``hidden_dropout_prob`` serves both the embedding and the residual
dropouts, so a qkv config must keep those two equal to be expressible.
"""

from __future__ import annotations

import torch

from ..config import ModelConfig
from .hf_common import (
    ACT_TO_HF, StateDict, activation_from_hf, cfg_require, check_fields, common_needs, expand,
    hf_require, to_hf_names, to_qkv_names, token_id,
)

ARCH = "BERT (BertForMaskedLM)"
_DEFAULTS = ModelConfig()  # bos/eos ids when BERT's config leaves them unset

LAYER = {
    "self_attn.q_proj": "attention.self.query",
    "self_attn.k_proj": "attention.self.key",
    "self_attn.v_proj": "attention.self.value",
    "self_attn.out_proj": "attention.output.dense",
    "sub_attn.norm": "attention.output.LayerNorm",
    "ffn.up": "intermediate.dense",
    "ffn.down": "output.dense",
    "sub_ffn.norm": "output.LayerNorm",
}
OUT_BIAS = "cls.predictions.decoder.bias"


def model_class() -> type:
    from transformers import BertForMaskedLM

    return BertForMaskedLM


def modules(cfg: ModelConfig) -> dict[str, str]:
    table = {
        "encoder.embed": "bert.embeddings.word_embeddings",
        "encoder.position.table": "bert.embeddings.position_embeddings",
        "encoder.segment": "bert.embeddings.token_type_embeddings",
        "encoder.embed_norm": "bert.embeddings.LayerNorm",
        "head.dense": "cls.predictions.transform.dense",
        "head.norm": "cls.predictions.transform.LayerNorm",
        "head.out": "cls.predictions.decoder",  # head.out.bias: the decoder's bias
        "head.out.proj": "cls.predictions.decoder",
    }
    table.update(expand(LAYER, cfg.n_layers, "encoder.layers", "bert.encoder.layer"))
    return table


# ---------------------------------------------------------------------------------------------
# config


def config_from_hf(c) -> ModelConfig:
    """``BertConfig`` → ``ModelConfig`` (an MLM encoder)."""
    hf_require(not c.is_decoder, ARCH, "is_decoder", True, "qkv's encoder attends both ways")
    hf_require(not c.add_cross_attention, ARCH, "add_cross_attention", True,
               "a qkv encoder has no cross-attention")
    kind = getattr(c, "position_embedding_type", "absolute")  # gone from transformers 5
    hf_require(kind == "absolute", ARCH, "position_embedding_type", kind,
               "qkv maps only absolute learned positions")
    hidden_dropout = float(c.hidden_dropout_prob)
    return ModelConfig(
        family="encoder", head="mlm", vocab_size=c.vocab_size, d_model=c.hidden_size,
        n_layers=c.num_hidden_layers, n_heads=c.num_attention_heads, d_ff=c.intermediate_size,
        max_len=c.max_position_embeddings, position="learned", norm="layer", norm_eps=c.layer_norm_eps,
        norm_placement="post", embed_norm=True, final_norm=False,
        activation=activation_from_hf(c.hidden_act, ARCH, "hidden_act"), embed_scale=False,
        tie_embeddings=c.tie_word_embeddings, type_vocab_size=c.type_vocab_size, output_bias=True,
        dropout_embed=hidden_dropout, dropout_residual=hidden_dropout,
        dropout_attention=float(c.attention_probs_dropout_prob), dropout_activation=0.0,
        pad_id=token_id(c.pad_token_id, fallback=_DEFAULTS.pad_id),
        bos_id=token_id(c.bos_token_id, fallback=_DEFAULTS.bos_id),
        eos_id=token_id(c.eos_token_id, fallback=_DEFAULTS.eos_id), init_std=c.initializer_range,
    )


def config_to_hf(cfg: ModelConfig):
    """``ModelConfig`` → ``BertConfig``, or ValueError naming the first field BERT lacks."""
    from transformers import BertConfig

    check_fields(cfg, ARCH, {
        **common_needs(cfg),
        "family": ("encoder",),
        "head": ("mlm",),
        "attention_scale": ("sqrt_dk",),
        "position": ("learned",),
        "norm_placement": ("post",),
        "embed_norm": (True,),
        "final_norm": (None, False),
        "embed_scale": (False,),
        "dropout_activation": (0.0,),
    })
    cfg_require(cfg.dropout_embed == cfg.dropout_residual, ARCH, "dropout_embed", cfg.dropout_embed,
                "BERT's one `hidden_dropout_prob` is both the embedding and the residual dropout, "
                f"so it needs dropout_embed == dropout_residual={cfg.dropout_residual}")
    cfg_require(cfg.type_vocab_size >= 1, ARCH, "type_vocab_size", cfg.type_vocab_size,
                "BERT always adds a token-type embedding (needs type_vocab_size >= 1)")
    return BertConfig(
        vocab_size=cfg.vocab_size, hidden_size=cfg.d_model, num_hidden_layers=cfg.n_layers,
        num_attention_heads=cfg.n_heads, intermediate_size=cfg.d_ff, hidden_act=ACT_TO_HF[cfg.activation],
        hidden_dropout_prob=cfg.dropout_residual, attention_probs_dropout_prob=cfg.dropout_attention,
        max_position_embeddings=cfg.max_len, type_vocab_size=cfg.type_vocab_size,
        initializer_range=cfg.init_std, layer_norm_eps=cfg.norm_eps, tie_word_embeddings=cfg.tie_embeddings,
        pad_token_id=cfg.pad_id, bos_token_id=cfg.bos_id, eos_token_id=cfg.eos_id,
    )


# ---------------------------------------------------------------------------------------------
# weights


def weights_from_hf(hf_sd: StateDict, cfg: ModelConfig, qkv_keys: list[str]) -> StateDict:
    return to_qkv_names(hf_sd, modules(cfg), qkv_keys)


def weights_to_hf(qkv_sd: StateDict, cfg: ModelConfig) -> StateDict:
    sd = to_hf_names(qkv_sd, modules(cfg))
    if OUT_BIAS not in sd:  # qkv without output_bias: BERT's decoder bias is then zero
        sd[OUT_BIAS] = torch.zeros(cfg.vocab_size, dtype=sd["cls.predictions.decoder.weight"].dtype)
    sd["cls.predictions.bias"] = sd[OUT_BIAS]  # the same parameter in HF, stored under both names
    return sd


DERIVED: tuple[str, ...] = ()
