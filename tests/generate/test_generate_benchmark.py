"""The generation benchmark's floor times the products a decoding step really does, and the
script runs end to end with identical tokens to Hugging Face."""

from __future__ import annotations

import torch
import transformers

from benchmarks import generate_speed
from qkv.interop import from_hf


def _tiny_gpt2():
    cfg = transformers.GPT2Config(vocab_size=97, n_embd=32, n_layer=2, n_head=4, n_inner=64, n_positions=64,
                                  bos_token_id=1, eos_token_id=2, pad_token_id=0)
    return transformers.GPT2LMHeadModel(cfg).eval()


def _tiny_marian():
    cfg = transformers.MarianConfig(vocab_size=97, d_model=32, encoder_layers=2, decoder_layers=2,
                                    encoder_attention_heads=4, decoder_attention_heads=4, encoder_ffn_dim=64,
                                    decoder_ffn_dim=64, max_position_embeddings=64, pad_token_id=96,
                                    decoder_start_token_id=96, eos_token_id=2)
    return transformers.MarianMTModel(cfg).eval()


def _numel(tensors) -> int:
    return sum(t.numel() for t in tensors)


def test_floor_matrices_are_the_weights_one_step_multiplies_by():
    torch.manual_seed(0)
    hf = _tiny_gpt2()
    # GPT-2 step: every Conv1D of every block (qkv, attention out, FFN in/out) and the LM head.
    expected = _numel(m.weight for m in hf.transformer.h.modules() if type(m).__name__ == "Conv1D")
    expected += hf.lm_head.weight.numel()
    assert _numel(generate_speed.step_matrices(from_hf(hf))) == expected

    hf = _tiny_marian()
    # Marian decoder step: self-attention q/k/v/out, cross-attention q/out (its k/v come from the
    # encoder once), FFN, LM head — and nothing from the encoder.
    layers = hf.model.decoder.layers
    expected = _numel(m.weight for n, m in layers.named_modules() if isinstance(m, torch.nn.Linear)
                      and not n.endswith(("encoder_attn.k_proj", "encoder_attn.v_proj")))
    expected += hf.lm_head.weight.numel()
    assert _numel(generate_speed.step_matrices(from_hf(hf))) == expected


def test_benchmark_runs_and_matches_hf_tokens(tmp_path):
    torch.set_num_threads(1)
    result = generate_speed.main(["--quick", "--threads", "1", "--out", str(tmp_path / "g.json")])
    for case in ("greedy_lm_batch1", "greedy_lm_batch8", "beam4_seq2seq_batch8"):
        row = result[case]
        assert row["identical_tokens"] is True, case
        assert row["cap"] > 0 and row["floor_tokens_per_s"] > 0 and row["qkv_tokens_per_s"] > 0
