"""A qkv Transformer as a CTranslate2 model directory, built through CTranslate2's spec API.

    qkv Seq2Seq ──▶ ctranslate2.specs.TransformerSpec(TransformerEncoderSpec, TransformerDecoderSpec)
    qkv LanguageModel ──▶ ctranslate2.specs.TransformerDecoderModelSpec(TransformerDecoderSpec)

The weights are copied module by module, the way CTranslate2's own OpenNMT-py and fairseq
converters fill a spec (``converters/opennmt_py.py``, ``converters/fairseq.py``), rather than
through its Hugging Face Marian loader, which assumes pad is the last token and a zero start
embedding (qkv: pad 0, decoder start = ``start_id``, eos 3).

What maps: post-/pre-norm (CT2's ``pre_norm``), LayerNorm/RMSNorm and their epsilon, the final
norm of a pre-norm stack (``no_final_norm``), an embedding norm (``layernorm_embedding``), the √d
embedding multiplier (``scale_embeddings``), sinusoidal, learned and no positions (given to CT2 as
the exact table qkv adds, ``position_encodings.encodings``, so the interleaved/concatenated
layout needs no guessing), RoPE in a decoder-only LM (rotate-half: ``rotary_interleave=False``),
relu/gelu/gelu_tanh/silu and the gated SwiGLU/GEGLU (``ffn_glu``), biases on or off, tied
embeddings, an output bias, grouped-query heads, ``d_head``, tied Wq=Wk (written twice) and any
attention scale (folded into the query projection). Anything else is refused by
:func:`check_ct2_exportable` with the config field named, before anything is written.

``ct2_translate`` runs such a directory with options matching qkv's ``translate`` (its docstring
says where the two beam searches differ), ``ct2_generate`` greedy LM continuation, and
``CT2Engine`` serves it (``qkv serve --engine ctranslate2``).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from ..config import ModelConfig
from ..errors import InputError
from ..nn.attention import attention_scale

MANIFEST = "qkv_ct2.json"

# qkv activation -> (CTranslate2 activation name, gated FFN?)
ACTIVATION = {"relu": ("RELU", False), "gelu": ("GELU", False), "gelu_tanh": ("GELUTanh", False),
              "silu": ("SWISH", False), "swiglu": ("SWISH", True), "geglu": ("GELU", True)}
POSITIONS = {"seq2seq": ("sinusoidal", "learned", "none"), "lm": ("sinusoidal", "learned", "none", "rope")}


def _refusal(cfg: ModelConfig) -> tuple[str, object, str] | None:
    """The first ``(field, value, reason)`` CTranslate2 cannot express, or None."""
    checks = [
        ("arch", cfg.arch == "transformer", "CTranslate2 runs Transformers only"),
        ("family", cfg.family in POSITIONS, "only translators (seq2seq) and decoder-only LMs (lm) export"),
        ("position", cfg.position in POSITIONS.get(cfg.family, ()),
         f"CTranslate2 takes {', '.join(POSITIONS.get(cfg.family, ()))} positions for a {cfg.family} model "
         "(no T5 buckets, Shaw tables shared across layers, ALiBi, or RoPE in an encoder)"),
        ("attention", cfg.attention == "dot", "CTranslate2 has dot-product attention only"),
        ("norm", cfg.norm in ("layer", "rms"), "CTranslate2 has LayerNorm and RMSNorm only"),
        ("residual", cfg.residual, "CTranslate2 layers always add the residual"),
        ("causal_mask", cfg.causal_mask, "CTranslate2 decoders are always causal"),
        ("window", cfg.window is None, "qkv's attention window is not CTranslate2's sliding KV window"),
        ("xl_memory", cfg.xl_memory is None, "CTranslate2 has no segment memory"),
        ("final_norm", cfg.norm_placement == "pre" or not cfg.use_final_norm,
         "CTranslate2 has a final norm only in pre-norm stacks"),
    ]
    for name, ok, why in checks:
        if not ok:
            return name, getattr(cfg, name), why
    return None


def check_ct2_exportable(cfg: ModelConfig) -> None:
    """Raise :class:`InputError` naming the first config field CTranslate2 cannot express."""
    refused = _refusal(cfg)
    if refused is not None:
        name, value, why = refused
        raise InputError(f"cannot export to CTranslate2: {name}={value!r} ({why})")


def _np(t: Tensor) -> np.ndarray:
    return t.detach().float().cpu().numpy().copy()


def _set_linear(spec, weight: Tensor, bias: Tensor | None) -> None:
    spec.weight = _np(weight)  # (out, in), as torch stores it
    if bias is not None:
        spec.bias = _np(bias)


def _set_norm(spec, norm: nn.Module) -> None:
    spec.gamma = _np(norm.weight)
    if hasattr(spec, "beta"):  # RMSNorm specs have no beta
        spec.beta = _np(norm.bias)


def _query_factor(cfg: ModelConfig) -> float:
    """CT2 scales scores by 1/√d_head; any other qkv scale is folded into W_q (and b_q)."""
    return attention_scale(cfg) * math.sqrt(cfg.head_dim)


def _projections(attn: nn.Module, factor: float) -> list[tuple[Tensor, Tensor | None]]:
    """(weight, bias) of q, k, v; a tied Wq=Wk gives the query projection for k."""
    q, v = attn.q_proj, attn.v_proj
    k = attn.k_proj if attn.k_proj is not None else q
    q_bias = q.bias * factor if q.bias is not None else None
    return [(q.weight * factor, q_bias), (k.weight, k.bias), (v.weight, v.bias)]


def _fuse(parts: list[tuple[Tensor, Tensor | None]]) -> tuple[Tensor, Tensor | None]:
    weight = torch.cat([w for w, _ in parts])  # (Σ out, in)
    bias = torch.cat([b for _, b in parts]) if parts[0][1] is not None else None
    return weight, bias


def _set_attention(spec, attn: nn.Module, factor: float, cross: bool) -> None:
    """CT2 self-attention: linear[0] = fused qkv; cross: linear[0] = q, linear[1] = fused kv."""
    (qw, qb), k, v = _projections(attn, factor)
    if cross:
        _set_linear(spec.linear[0], qw, qb)
        _set_linear(spec.linear[1], *_fuse([k, v]))
    else:
        _set_linear(spec.linear[0], *_fuse([(qw, qb), k, v]))
    _set_linear(spec.linear[-1], attn.out_proj.weight, attn.out_proj.bias)


def _set_ffn(spec, ffn: nn.Module, norm: nn.Module) -> None:
    """MLP: linear_0 = up, linear_1 = down. GLU: act(linear_0 = gate) * (linear_0_noact = up)."""
    _set_norm(spec.layer_norm, norm)
    gated = hasattr(spec, "linear_0_noact")
    first = ffn.gate if gated else ffn.up
    _set_linear(spec.linear_0, first.weight, first.bias)
    if gated:
        _set_linear(spec.linear_0_noact, ffn.up.weight, ffn.up.bias)
    _set_linear(spec.linear_1, ffn.down.weight, ffn.down.bias)


def _set_layer(spec, layer: nn.Module, factor: float) -> None:
    _set_attention(spec.self_attention, layer.self_attn, factor, cross=False)
    _set_norm(spec.self_attention.layer_norm, layer.sub_attn.norm)
    if getattr(layer, "cross_attn", None) is not None:
        _set_attention(spec.attention, layer.cross_attn, factor, cross=True)
        _set_norm(spec.attention.layer_norm, layer.sub_cross.norm)
    _set_ffn(spec.ffn, layer.ffn, layer.sub_ffn.norm)


def position_table(stack: nn.Module, cfg: ModelConfig) -> Tensor:
    """The vectors qkv adds at positions ``0 .. max_len-1`` ``(max_len, d)``: its own module's
    output, so CT2 gets qkv's sinusoid layout exactly; zeros for ``position="none"``."""
    table = stack.position.absolute(torch.arange(cfg.max_len)[None])  # (1, max_len, d) or None
    return table[0] if table is not None else torch.zeros(cfg.max_len, cfg.d_model)


def _set_stack(spec, stack: nn.Module, cfg: ModelConfig) -> None:
    """Embeddings, positions, embedding norm, layers and final norm of one CT2 stack spec."""
    embeddings = spec.embeddings[0] if isinstance(spec.embeddings, list) else spec.embeddings
    embeddings.weight = _np(stack.embed.weight)
    spec.scale_embeddings = bool(cfg.embed_scale)  # × √d_model (question 8)
    if hasattr(spec, "position_encodings"):  # absent for RoPE
        spec.position_encodings.encodings = _np(position_table(stack, cfg))
    if stack.embed_norm is not None:
        _set_norm(spec.layernorm_embedding, stack.embed_norm)
    if stack.final_norm is not None:
        _set_norm(spec.layer_norm, stack.final_norm)
    for layer_spec, layer in zip(spec.layer, stack.layers):
        _set_layer(layer_spec, layer, _query_factor(cfg))


def _shape_options(cfg: ModelConfig) -> dict:
    """The TransformerEncoderSpec / TransformerDecoderSpec keywords both stacks share."""
    from ctranslate2.specs import common_spec

    activation, glu = ACTIVATION[cfg.activation]
    return dict(
        pre_norm=cfg.norm_placement == "pre",
        no_final_norm=not cfg.use_final_norm,
        activation=getattr(common_spec.Activation, activation),
        layernorm_embedding=cfg.embed_norm,
        ffn_glu=glu,
        rms_norm=cfg.norm == "rms",
        num_heads_kv=cfg.kv_heads if cfg.kv_heads != cfg.n_heads else None,
        head_dim=cfg.head_dim if cfg.head_dim * cfg.n_heads != cfg.d_model else None,
    )


def _decoder_spec(cfg: ModelConfig, layers: int, cross: bool):
    from ctranslate2.specs import TransformerDecoderSpec

    rotary = dict(rotary_dim=0, rotary_interleave=False, rotary_base=cfg.rope_base) if cfg.position == "rope" else {}
    return TransformerDecoderSpec(layers, cfg.n_heads, with_encoder_attention=cross, **rotary, **_shape_options(cfg))


def _seq2seq_spec(model: nn.Module, vocab: list[str]):
    from ctranslate2.specs import TransformerEncoderSpec, TransformerSpec

    cfg = model.config
    spec = TransformerSpec(TransformerEncoderSpec(cfg.n_layers, cfg.n_heads, **_shape_options(cfg)),
                           _decoder_spec(cfg, cfg.decoder_layers, cross=True))
    _set_stack(spec.encoder, model.encoder, cfg)
    _set_stack(spec.decoder, model.decoder, cfg)
    spec.register_source_vocabulary(vocab)
    spec.register_target_vocabulary(vocab)
    # qkv's sources are the sentence then EOS, no BOS (encode_sources in qkv.tasks.translation).
    spec.config.add_source_bos, spec.config.add_source_eos = False, True
    spec.config.decoder_start_token = vocab[cfg.start_id]
    return spec


def _lm_spec(model: nn.Module, vocab: list[str]):
    from ctranslate2.specs import TransformerDecoderModelSpec

    cfg = model.config
    spec = TransformerDecoderModelSpec(_decoder_spec(cfg, cfg.n_layers, cross=False))
    _set_stack(spec.decoder, model.decoder, cfg)
    spec.register_vocabulary(vocab)
    return spec


def _set_output(decoder_spec, head: nn.Module) -> None:
    _set_linear(decoder_spec.projection, head.proj.weight, head.bias)


def vocabulary(tokenizer, cfg: ModelConfig) -> list[str]:
    """Token strings by id from the qkv tokenizer (fast or readable); sizes must agree."""
    size = tokenizer.vocab_size
    if size != cfg.vocab_size:
        raise InputError(f"the tokenizer has {size} tokens but the model's vocab_size={cfg.vocab_size}; "
                         "export the tokenizer the model was trained with")
    hf = getattr(tokenizer, "hf", None)
    if hf is not None:
        return [hf.id_to_token(i) for i in range(size)]
    return [tokenizer.id_to_token[i] for i in range(size)]


def _unk_token(tokenizer, vocab: list[str]) -> str:
    """The tokenizer's unknown token; a byte-level BPE has none, so any real token stands in
    (it can never be produced by encoding, and CT2 needs one from its vocabulary)."""
    unk = getattr(tokenizer, "unk_id", None)
    return vocab[unk] if unk is not None else vocab[-1]


def build_ct2_spec(model: nn.Module, tokenizer):
    """The filled CTranslate2 spec of a qkv seq2seq or lm Transformer (validated, not saved)."""
    cfg = model.config
    check_ct2_exportable(cfg)
    vocab = vocabulary(tokenizer, cfg)
    spec = (_seq2seq_spec if cfg.family == "seq2seq" else _lm_spec)(model, vocab)
    _set_output(spec.decoder, model.head)
    spec.config.bos_token, spec.config.eos_token = vocab[cfg.bos_id], vocab[cfg.eos_id]
    spec.config.unk_token = _unk_token(tokenizer, vocab)
    spec.config.layer_norm_epsilon = cfg.norm_eps
    spec.validate()
    return spec


@torch.no_grad()
def export_ctranslate2(model: nn.Module, tokenizer, out_dir: str | Path, int8: bool = False) -> Path:
    """Write a CTranslate2 model directory for ``model`` (seq2seq or lm) and return it.

    ``int8=True`` stores int8 weights (CT2's ``quantization="int8"``). Next to CT2's files goes
    ``qkv_ct2.json`` with what :func:`ct2_translate` needs (family, max_len, special ids).
    Refuses (:class:`InputError`) before writing anything if CTranslate2 cannot express the config.
    """
    from .onnx_export import check_out_dir

    spec = build_ct2_spec(model.eval(), tokenizer)
    out = check_out_dir(out_dir)
    spec.optimize(quantization="int8" if int8 else None)
    spec.save(str(out))
    cfg = model.config
    manifest = {"family": cfg.family, "max_len": cfg.max_len, "pad_id": cfg.pad_id, "bos_id": cfg.bos_id,
                "eos_id": cfg.eos_id, "start_id": cfg.start_id, "int8": int8, "model": cfg.to_dict()}
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return out


# ---------------------------------------------------------------------------------------------
# running an exported directory


def read_manifest(ct2_dir: str | Path) -> dict:
    path = Path(ct2_dir) / MANIFEST
    if not path.is_file():
        raise InputError(f"{ct2_dir} has no {MANIFEST}; pass a folder written by `qkv export --to ctranslate2`")
    return json.loads(path.read_text())


def _token_ids(tokenizer, tokens: list[str]) -> list[int]:
    hf = getattr(tokenizer, "hf", None)
    return [hf.token_to_id(t) if hf is not None else tokenizer.vocab[t] for t in tokens]


def _token_strings(tokenizer, ids: list[int]) -> list[str]:
    hf = getattr(tokenizer, "hf", None)
    return [hf.id_to_token(i) if hf is not None else tokenizer.id_to_token[i] for i in ids]


def ct2_translate(ct2_dir: str | Path, tokenizer, sentences: list[str], beams: int = 4,
                  max_new_tokens: int | None = None, length_alpha: float = 0.6, *, batch_size: int = 64,
                  truncate: bool = False, threads: int = 1) -> list[str]:
    """Translate with ``ctranslate2.Translator``, set up as ``qkv.tasks.translation.translate``.

    Same sources (qkv's ``encode_sources``; CT2 appends EOS itself, ``add_source_eos``), same
    length-sorted batches of ``batch_size`` and per-batch limit ``min(max_len - 1, 1.5·T + 10)``
    new tokens, EOS counting as one of them (``max_decoding_length``); EOS may come first
    (``min_decoding_length=0``); no repetition, coverage or n-gram penalty; decoded by the qkv
    tokenizer. Greedy (``beams=1``) is the same search.

    Where beam search differs: qkv ranks finished hypotheses by ``log P / ((5 + |Y|) / 6) ** α``
    (GNMT) and stops a source when its worst of ``beams`` finished hypotheses beats the best
    running one; CTranslate2 4.x divides by ``|Y| ** α`` and stops once ``beams`` hypotheses have
    finished (``patience=1``). With ``length_alpha=0`` the scores agree and only the stopping
    rule differs; the tests measure how often the outputs agree.
    """
    import ctranslate2

    from ..tasks.translation import encode_sources

    info = read_manifest(ct2_dir)
    encoded = encode_sources(tokenizer, sentences, info["max_len"], info["eos_id"], truncate=truncate)
    translator = ctranslate2.Translator(str(ct2_dir), device="cpu", inter_threads=1, intra_threads=threads)
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
    out: list[str] = [""] * len(sentences)
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        longest = max(len(encoded[i]) for i in chunk)  # with EOS, as qkv's padded batch
        limit = max_new_tokens or min(info["max_len"] - 1, int(longest * 1.5) + 10)
        source = [_token_strings(tokenizer, encoded[i][:-1]) for i in chunk]  # CT2 adds the EOS
        results = translator.translate_batch(
            source, beam_size=beams, length_penalty=length_alpha, max_decoding_length=limit,
            min_decoding_length=0, max_input_length=0, repetition_penalty=1.0, no_repeat_ngram_size=0)
        for i, result in zip(chunk, results):
            out[i] = tokenizer.decode(_token_ids(tokenizer, result.hypotheses[0])).strip()
    return out


def ct2_generate(ct2_dir: str | Path, tokenizer, prompts: list[list[int]], max_new_tokens: int = 64, *,
                 threads: int = 1) -> list[list[int]]:
    """Greedy continuation ids of each prompt with ``ctranslate2.Generator`` (EOS kept, as qkv's
    ``generate`` keeps it; nothing after it). ``prompts``: token ids, unpadded."""
    import ctranslate2

    read_manifest(ct2_dir)  # refuses a folder that is not a qkv export
    generator = ctranslate2.Generator(str(ct2_dir), device="cpu", inter_threads=1, intra_threads=threads)
    tokens = [_token_strings(tokenizer, p) for p in prompts]
    results = generator.generate_batch(tokens, max_length=max_new_tokens, sampling_topk=1, beam_size=1,
                                       min_length=0, include_prompt_in_result=False, return_end_token=True)
    return [_token_ids(tokenizer, r.sequences[0]) for r in results]


class CT2Engine:
    """An exported directory behind ``qkv serve``'s ``Engine`` protocol (``--engine ctranslate2``).

    Translation runs ``translate_batch`` with the options of :func:`ct2_translate` (same caveat
    on beam search); generation runs ``generate_batch``, greedy or sampled (CT2's own random
    stream: a ``seed`` gives repeatable, not qkv-identical, samples).
    """

    name = "ctranslate2"

    def __init__(self, ct2_dir: str | Path, threads: int = 1) -> None:
        import ctranslate2

        from ..tokenize import fast

        info = read_manifest(ct2_dir)
        if "model" not in info:
            raise InputError(f"{ct2_dir}/{MANIFEST} has no model config; export it again with this qkv")
        tok_path = Path(ct2_dir) / "tokenizer.json"
        if not tok_path.is_file():
            raise InputError(f"{ct2_dir} has no tokenizer.json; export with `qkv export --to ctranslate2`")
        self.config, self.tokenizer = ModelConfig.from_dict(info["model"]), fast.load(tok_path)
        engine = ctranslate2.Translator if self.config.family == "seq2seq" else ctranslate2.Generator
        self.ct2 = engine(str(ct2_dir), device="cpu", inter_threads=1, intra_threads=threads)

    def run(self, rows: list[list[int]], settings: dict) -> list[list[int]]:
        """New token ids for each row (source ids with EOS, or prompt ids), without EOS."""
        if self.config.family == "seq2seq":
            source = [_token_strings(self.tokenizer, r[:-1] if r[-1:] == [self.config.eos_id] else r) for r in rows]
            results = self.ct2.translate_batch(
                source, beam_size=settings.get("beams", 1), length_penalty=settings.get("length_alpha", 0.0),
                max_decoding_length=settings["max_new_tokens"], min_decoding_length=0, max_input_length=0)
            return [_token_ids(self.tokenizer, r.hypotheses[0]) for r in results]
        return self._generate(rows, settings)

    def _generate(self, rows: list[list[int]], settings: dict) -> list[list[int]]:
        import ctranslate2

        sampled = settings.get("do_sample", False)
        if sampled and settings.get("seed") is not None:
            ctranslate2.set_random_seed(settings["seed"])
        results = self.ct2.generate_batch(
            [_token_strings(self.tokenizer, r) for r in rows], max_length=settings["max_new_tokens"], min_length=0,
            sampling_topk=(settings.get("top_k") or 0) if sampled else 1,
            sampling_topp=(settings.get("top_p") or 1.0) if sampled else 1.0,
            sampling_temperature=settings.get("temperature", 1.0) if sampled else 1.0,
            repetition_penalty=settings.get("repetition_penalty", 1.0), include_prompt_in_result=False)
        return [_token_ids(self.tokenizer, r.sequences[0]) for r in results]


__all__ = ["export_ctranslate2", "build_ct2_spec", "check_ct2_exportable", "ct2_translate", "ct2_generate",
           "position_table", "vocabulary", "read_manifest", "MANIFEST",
           "CT2Engine"]
