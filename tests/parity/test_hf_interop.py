"""Parity with Hugging Face: ``qkv.interop.from_hf`` / ``to_hf`` for GPT-2, BERT and Marian.

Every model here is a tiny, randomly initialised ``transformers`` model built from its Config
class (no downloads). Its weights are perturbed away from HF's init (LayerNorm γ = 1, biases = 0)
so that a swapped or dropped tensor changes the logits. The reference is always the HF model's
own forward; qkv's numbers are never compared with qkv's.
"""

from __future__ import annotations

import pytest
import torch

transformers = pytest.importorskip("transformers")

from qkv import ModelConfig, build_model  # noqa: E402
from qkv.interop import from_hf, to_hf  # noqa: E402

V, D, PAD = 96, 32, 95


def tiny_gpt2(**changes):
    cfg = dict(vocab_size=V, n_embd=D, n_layer=2, n_head=4, n_inner=48, n_positions=32,
               bos_token_id=1, eos_token_id=1, embd_pdrop=0.1, resid_pdrop=0.2, attn_pdrop=0.05)
    return _randomised(transformers.GPT2LMHeadModel(transformers.GPT2Config(**{**cfg, **changes})))


def tiny_bert(**changes):
    cfg = dict(vocab_size=V, hidden_size=D, num_hidden_layers=2, num_attention_heads=4,
               intermediate_size=64, max_position_embeddings=32, type_vocab_size=2,
               hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.05)
    return _randomised(transformers.BertForMaskedLM(transformers.BertConfig(**{**cfg, **changes})))


def tiny_marian(**changes):
    cfg = dict(vocab_size=V, d_model=D, encoder_layers=2, decoder_layers=3, encoder_attention_heads=4,
               decoder_attention_heads=4, encoder_ffn_dim=64, decoder_ffn_dim=64,
               max_position_embeddings=64, activation_function="swish", scale_embedding=True,
               dropout=0.1, attention_dropout=0.05, activation_dropout=0.02, pad_token_id=PAD,
               eos_token_id=0, forced_eos_token_id=0, decoder_start_token_id=PAD)
    return _randomised(transformers.MarianMTModel(transformers.MarianConfig(**{**cfg, **changes})))


def _randomised(model):
    """Perturb every trainable tensor (tied ones once) and Marian's output bias; eval mode."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "embed_positions" not in name:  # fixed sinusoids, not weights
                p.add_(torch.randn_like(p) * 0.1)
        if hasattr(model, "final_logits_bias"):
            model.final_logits_bias.normal_(0.0, 0.1)
    return model.eval()


def _right_padded(lengths, T, low=3, pad=PAD):
    """Random ids ``(B, T)`` with right padding, and the bool mask (True = real token)."""
    ids = torch.randint(low, V - 1, (len(lengths), T))
    mask = torch.arange(T)[None, :] < torch.tensor(lengths)[:, None]
    return ids.masked_fill(~mask, pad), mask


# ---------------------------------------------------------------------------------------------
# the three families: logits of hf, from_hf(hf) and to_hf(from_hf(hf)) on the same inputs


def _gpt2_batch(padded):
    """(HF kwargs, qkv args, mask of the positions to compare)."""
    ids, mask = _right_padded([10, 7, 4] if padded else [10, 10, 10], 10, pad=1)
    return dict(input_ids=ids, attention_mask=mask.long()), (ids, mask if padded else None), mask


def _bert_batch(padded):
    ids, mask = _right_padded([12, 8, 5] if padded else [12, 12, 12], 12, pad=0)
    segments = ((torch.arange(12)[None, :] >= 4) & mask).long()  # A A A A B B ... then pad
    hf_in = dict(input_ids=ids, attention_mask=mask.long(), token_type_ids=segments)
    return hf_in, (ids, mask if padded else None, segments), mask


def _marian_batch(padded):
    src, src_mask = _right_padded([9, 6, 3] if padded else [9, 9, 9], 9)
    tgt, tgt_mask = _right_padded([7, 5, 2] if padded else [7, 7, 7], 7)
    tgt[:, 0] = PAD  # decoder_start_token_id
    hf_in = dict(input_ids=src, attention_mask=src_mask.long(), decoder_input_ids=tgt,
                 decoder_attention_mask=tgt_mask.long())
    return hf_in, (src, tgt, src_mask, tgt_mask) if padded else (src, tgt), tgt_mask


CASES = {
    "gpt2": (tiny_gpt2, _gpt2_batch),
    "gpt2_untied_relu": (lambda: tiny_gpt2(tie_word_embeddings=False, activation_function="relu"),
                         _gpt2_batch),
    "bert": (tiny_bert, _bert_batch),
    "bert_untied_gelu_new": (lambda: tiny_bert(tie_word_embeddings=False, hidden_act="gelu_new"),
                             _bert_batch),
    "marian": (tiny_marian, _marian_batch),
    "marian_unscaled_gelu": (lambda: tiny_marian(scale_embedding=False, activation_function="gelu"),
                             _marian_batch),
}


@pytest.mark.parametrize("padded", [False, True], ids=["full", "padded"])
@pytest.mark.parametrize("case", list(CASES))
@torch.no_grad()
def test_from_hf_and_back_match_hf_logits(case, padded):
    make, batch = CASES[case]
    hf = make()
    hf_in, qkv_in, real = batch(padded)
    want = hf(**hf_in).logits[real]  # (N real positions, V)
    model = from_hf(hf)
    assert not model.training
    torch.testing.assert_close(model(*qkv_in)[real], want)
    back = to_hf(model)
    assert type(back) is type(hf) and not back.training
    torch.testing.assert_close(back(**hf_in).logits[real], want)


NATIVE = {  # qkv models that never came from HF, each with switches from_hf would not pick
    "lm": (dict(family="lm", position="learned", norm_placement="pre", embed_scale=False,
                activation="gelu", attention_scale="none"), _gpt2_batch),
    "encoder": (dict(family="encoder", position="learned", embed_norm=True, embed_scale=False,
                     type_vocab_size=2, activation="gelu", norm_eps=1e-12, output_bias=False), _bert_batch),
    "seq2seq": (dict(family="seq2seq", sinusoidal_layout="concat", tie_embeddings=False,
                     n_decoder_layers=1, output_bias=False), _marian_batch),
}


@pytest.mark.parametrize("family", list(NATIVE))
@torch.no_grad()
def test_to_hf_of_a_native_qkv_model(family):
    changes, batch = NATIVE[family]
    model = _tiny_qkv(n_layers=2, **changes)
    for p in model.parameters():
        p.add_(torch.randn_like(p) * 0.1)
    model.eval()
    hf = to_hf(model)
    hf_in, qkv_in, real = batch(True)
    torch.testing.assert_close(model(*qkv_in)[real], hf(**hf_in).logits[real])


@pytest.mark.parametrize("case", list(CASES))
def test_round_trip_keeps_the_config(case):
    model = from_hf(CASES[case][0]())
    assert from_hf(to_hf(model)).config == model.config


# ---------------------------------------------------------------------------------------------
# config mapping: the switches the brief names, read against HF's own config values


def test_gpt2_config_mapping():
    hf = tiny_gpt2()
    c, h = from_hf(hf).config, hf.config
    assert (c.family, c.position, c.norm_placement, c.activation) == ("lm", "learned", "pre", "gelu_tanh")
    assert c.use_final_norm and not c.embed_scale and c.tie_embeddings and c.d_ff == h.n_inner
    assert (c.dropout_embed, c.dropout_residual, c.dropout_attention) == (
        h.embd_pdrop, h.resid_pdrop, h.attn_pdrop)
    assert c.dropout_activation == 0.0 and c.eos_id == h.eos_token_id and c.norm_eps == h.layer_norm_epsilon


def test_bert_config_mapping():
    hf = tiny_bert()
    c, h = from_hf(hf).config, hf.config
    assert (c.family, c.head, c.position, c.norm_placement, c.activation) == (
        "encoder", "mlm", "learned", "post", "gelu")
    assert c.embed_norm and not c.use_final_norm and c.output_bias and c.type_vocab_size == h.type_vocab_size
    assert c.norm_eps == h.layer_norm_eps == 1e-12 and c.pad_id == h.pad_token_id
    assert c.dropout_embed == c.dropout_residual == h.hidden_dropout_prob
    assert c.dropout_attention == h.attention_probs_dropout_prob and c.dropout_activation == 0.0


def test_marian_config_mapping():
    hf = tiny_marian()
    c, h = from_hf(hf).config, hf.config
    assert (c.family, c.position, c.sinusoidal_layout, c.norm_placement) == (
        "seq2seq", "sinusoidal", "concat", "post")
    assert (c.activation, c.embed_scale, c.output_bias, c.tie_embeddings) == ("silu", True, True, True)
    assert (c.n_layers, c.decoder_layers) == (h.encoder_layers, h.decoder_layers)
    assert (c.pad_id, c.eos_id, c.start_id) == (h.pad_token_id, h.eos_token_id, h.decoder_start_token_id)
    assert (c.dropout_embed, c.dropout_residual, c.dropout_attention, c.dropout_activation) == (
        h.dropout, h.dropout, h.attention_dropout, h.activation_dropout)


def test_weights_are_copied_not_shared():
    hf = tiny_gpt2()
    model = from_hf(hf)
    with torch.no_grad():
        hf.transformer.wte.weight.zero_()
    assert model.decoder.embed.weight.abs().sum() > 0


# ---------------------------------------------------------------------------------------------
# what cannot be expressed fails loudly, naming the setting


def _tiny_qkv(**changes):
    base = dict(vocab_size=V, d_model=D, n_layers=1, n_heads=4, d_ff=64, max_len=32)
    return build_model(ModelConfig(**{**base, **changes}))


@pytest.mark.parametrize("changes, setting", [
    (dict(family="lm", position="rope", norm_placement="pre"), "position='rope'"),
    (dict(family="lm", position="learned", norm_placement="post"), "norm_placement='post'"),
    (dict(family="lm", position="learned", norm_placement="pre", activation="swiglu"), "activation='swiglu'"),
    (dict(family="lm", position="learned", norm_placement="pre", n_kv_heads=2), "n_kv_heads=2"),
    (dict(family="lm", position="learned", norm_placement="pre", embed_scale=True), "embed_scale=True"),
    (dict(family="lm", position="learned", norm_placement="pre", embed_scale=False, norm="rms"),
     "norm='rms'"),
    (dict(family="encoder", position="learned", embed_norm=True, embed_scale=False, type_vocab_size=2,
          head="classify"), "head='classify'"),
    (dict(family="encoder", position="learned", embed_norm=True, embed_scale=False, type_vocab_size=2,
          dropout_embed=0.0, dropout_residual=0.1), "dropout_embed=0.0"),
    (dict(family="encoder", position="learned", embed_norm=True, embed_scale=False), "type_vocab_size=0"),
    (dict(family="seq2seq", sinusoidal_layout="concat", norm_placement="pre"), "norm_placement='pre'"),
    (dict(arch="lstm", family="seq2seq"), "arch='lstm'"),
])
def test_to_hf_rejects_what_the_architecture_cannot_express(changes, setting):
    with pytest.raises(ValueError, match=setting.replace("(", r"\(")):
        to_hf(_tiny_qkv(**changes))


@pytest.mark.parametrize("make, setting", [
    (lambda: tiny_gpt2(scale_attn_by_inverse_layer_idx=True), "scale_attn_by_inverse_layer_idx"),
    (lambda: tiny_gpt2(activation_function="gelu_fast"), "activation_function='gelu_fast'"),
    (lambda: tiny_bert(is_decoder=True), "is_decoder"),
    (lambda: tiny_marian(decoder_ffn_dim=32), "decoder_ffn_dim"),
    (lambda: tiny_marian(share_encoder_decoder_embeddings=False), "share_encoder_decoder_embeddings"),
])
def test_from_hf_rejects_settings_qkv_lacks(make, setting):
    with pytest.raises(ValueError, match=setting):
        from_hf(make())


def test_from_hf_rejects_other_model_classes():
    model = transformers.BertModel(transformers.BertConfig(
        vocab_size=V, hidden_size=D, num_hidden_layers=1, num_attention_heads=4, intermediate_size=64))
    with pytest.raises(TypeError, match="BertModel"):
        from_hf(model)
