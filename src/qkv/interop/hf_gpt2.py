"""GPT-2 (``GPT2LMHeadModel``; Radford et al., 2019) ⇄ qkv ``family="lm"``.

GPT-2 is a pre-norm decoder with learned positions, a final LayerNorm (``ln_f``), the tanh
approximation of GELU (HF's "gelu_new") and an output projection tied to the token embedding.
Two layout differences need more than a rename:

* its projections are ``Conv1D`` modules, whose weight is stored ``(in, out)`` — the transpose
  of ``nn.Linear``'s ``(out, in)``;
* the query, key and value projections are one fused ``c_attn`` of width ``3·d``, in that order.

Both are undone here by going through "virtual" HF names (``attn.q``, ``attn.k``, ``attn.v``)
that hold Linear-layout tensors, so the name table stays a plain rename.
"""

from __future__ import annotations

import torch

from ..config import ModelConfig
from .hf_common import (
    ACT_TO_HF, StateDict, activation_from_hf, cfg_require, check_fields, common_needs, expand,
    hf_require, to_hf_names, to_qkv_names, token_id,
)

ARCH = "GPT-2 (GPT2LMHeadModel)"

LAYER = {
    "self_attn.q_proj": "attn.q",  # virtual: one third of c_attn, Linear layout
    "self_attn.k_proj": "attn.k",
    "self_attn.v_proj": "attn.v",
    "self_attn.out_proj": "attn.c_proj",
    "sub_attn.norm": "ln_1",
    "ffn.up": "mlp.c_fc",
    "ffn.down": "mlp.c_proj",
    "sub_ffn.norm": "ln_2",
}
CONV1D = ("attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")


def model_class() -> type:
    from transformers import GPT2LMHeadModel

    return GPT2LMHeadModel


def modules(cfg: ModelConfig) -> dict[str, str]:
    table = {
        "decoder.embed": "transformer.wte",
        "decoder.position.table": "transformer.wpe",
        "decoder.final_norm": "transformer.ln_f",
        "head.proj": "lm_head",
    }
    table.update(expand(LAYER, cfg.n_layers, "decoder.layers", "transformer.h"))
    return table


# ---------------------------------------------------------------------------------------------
# config


def config_from_hf(c) -> ModelConfig:
    """``GPT2Config`` → ``ModelConfig``. GPT-2 has no pad token; eos pads, as is customary."""
    hf_require(not c.scale_attn_by_inverse_layer_idx, ARCH, "scale_attn_by_inverse_layer_idx",
               True, "qkv scales every layer's scores alike")
    hf_require(not c.add_cross_attention, ARCH, "add_cross_attention", True,
               "a qkv language model has no encoder to attend to")
    eos = token_id(c.eos_token_id, fallback=0)
    return ModelConfig(
        family="lm", vocab_size=c.vocab_size, d_model=c.n_embd, n_layers=c.n_layer, n_heads=c.n_head,
        d_ff=c.n_inner if c.n_inner is not None else 4 * c.n_embd, max_len=c.n_positions,
        attention_scale="sqrt_dk" if c.scale_attn_weights else "none",
        position="learned", norm="layer", norm_eps=c.layer_norm_epsilon, norm_placement="pre",
        final_norm=True, activation=activation_from_hf(c.activation_function, ARCH, "activation_function"),
        embed_scale=False, tie_embeddings=c.tie_word_embeddings, output_bias=False,
        dropout_embed=float(c.embd_pdrop), dropout_residual=float(c.resid_pdrop),
        dropout_attention=float(c.attn_pdrop), dropout_activation=0.0,
        pad_id=token_id(c.pad_token_id, fallback=eos), bos_id=token_id(c.bos_token_id, fallback=eos),
        eos_id=eos, init_std=c.initializer_range,
    )


def config_to_hf(cfg: ModelConfig):
    """``ModelConfig`` → ``GPT2Config``, or ValueError naming the first field GPT-2 lacks."""
    from transformers import GPT2Config

    check_fields(cfg, ARCH, {
        **common_needs(cfg),
        "family": ("lm",),
        "attention_scale": ("sqrt_dk", "none"),
        "position": ("learned",),
        "norm_placement": ("pre",),
        "embed_norm": (False,),
        "final_norm": (None, True),
        "embed_scale": (False,),
        "output_bias": (False,),
        "dropout_activation": (0.0,),  # GPT-2's MLP has no dropout between its two matrices
    })
    cfg_require(cfg.use_final_norm, ARCH, "final_norm", cfg.final_norm, "GPT-2 always has ln_f")
    return GPT2Config(
        vocab_size=cfg.vocab_size, n_positions=cfg.max_len, n_embd=cfg.d_model, n_layer=cfg.n_layers,
        n_head=cfg.n_heads, n_inner=cfg.d_ff, activation_function=ACT_TO_HF[cfg.activation],
        resid_pdrop=cfg.dropout_residual, embd_pdrop=cfg.dropout_embed, attn_pdrop=cfg.dropout_attention,
        layer_norm_epsilon=cfg.norm_eps, initializer_range=cfg.init_std,
        scale_attn_weights=cfg.attention_scale == "sqrt_dk", tie_word_embeddings=cfg.tie_embeddings,
        bos_token_id=cfg.bos_id, eos_token_id=cfg.eos_id, pad_token_id=cfg.pad_id,
    )


# ---------------------------------------------------------------------------------------------
# weights


def weights_from_hf(hf_sd: StateDict, cfg: ModelConfig, qkv_keys: list[str]) -> StateDict:
    sd = dict(hf_sd)
    for i in range(cfg.n_layers):
        p = f"transformer.h.{i}."
        for name in CONV1D:
            sd[p + name] = sd[p + name].t()  # Conv1D (in, out) -> Linear (out, in)
        w = sd.pop(p + "attn.c_attn.weight").t()  # (d, 3d) -> (3d, d)
        b = sd.pop(p + "attn.c_attn.bias")  # (3d,)
        for part, w_part, b_part in zip("qkv", w.chunk(3, dim=0), b.chunk(3)):
            sd[f"{p}attn.{part}.weight"], sd[f"{p}attn.{part}.bias"] = w_part, b_part
    return to_qkv_names(sd, modules(cfg), qkv_keys)


def weights_to_hf(qkv_sd: StateDict, cfg: ModelConfig) -> StateDict:
    sd = to_hf_names(qkv_sd, modules(cfg))
    for i in range(cfg.n_layers):
        p = f"transformer.h.{i}."
        w = torch.cat([sd.pop(f"{p}attn.{part}.weight") for part in "qkv"])  # (3d, d)
        b = torch.cat([sd.pop(f"{p}attn.{part}.bias") for part in "qkv"])  # (3d,)
        sd[p + "attn.c_attn.weight"], sd[p + "attn.c_attn.bias"] = w.t(), b  # Linear -> Conv1D
        for name in CONV1D:
            sd[p + name] = sd[p + name].t()
    return sd


DERIVED: tuple[str, ...] = ()  # HF keys computed, not stored, by GPT-2: none
