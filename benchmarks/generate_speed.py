"""Generation speed: qkv's KV-cached decoding vs Hugging Face ``generate``, same weights.

Question: is qkv's readable decoding fast? Claim under test (the generation issue): greedy
decoder-only decoding at batch 1 runs at ≥ 3× Hugging Face's tokens/s on this CPU, ≥ 2× at
batch 8, and beam 4 on the encoder-decoder at batch 8 ≥ 2× — with identical output tokens, so the
speed is not bought with different work.

    python -m benchmarks.generate_speed [--quick] [--threads 2] [--out FILE]

Shapes: decoder-only GPT-2 (d=256, 4 layers, 4 heads, FFN 1,024, vocab 8,000, 256 positions),
prompt of 16 tokens, 128 new tokens; encoder-decoder Marian (d=256, 3+3 layers, 4 heads,
FFN 1,024, vocab 8,000), source of 20 tokens, up to 64 new tokens. Weights: random HF models,
imported into qkv with ``qkv.interop.from_hf``. EOS is disabled in the greedy runs (every row
produces all 128 tokens); the beam run keeps EOS (id 2) on, so a hypothesis that emits it ends
as in real translation, and compares the token sequences both libraries return.
Timing: interleaved rounds (``benchmarks.common.time_interleaved``), median window.

The floor: each case also times the bare fp32 matrix products a decoding step cannot skip — every
weight matrix the step multiplies by (the decoder layers' projections and feed-forward, the output
head; not the cross-attention keys/values, computed once), one ``F.linear`` each at the step's
row count, for as many steps as the run takes — with no attention, cache, norms or Python
framework around them. At these sizes a step reads each weight once from memory (~21 MB for the
decoder-only shape), so this is close to the least time any implementation doing the same fp32
arithmetic needs. ``cap = hf time / floor time`` is the largest speed-up over Hugging Face that
such an implementation could show in that run.
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F
import transformers
from torch import nn

from benchmarks.common import emit, environment, paired_ratio, rounded, time_interleaved
from qkv.generate import generate
from qkv.interop import from_hf
from qkv.nn.attention import MultiHeadAttention

V, D, FF = 8000, 256, 1024


def gpt2() -> transformers.GPT2LMHeadModel:
    cfg = transformers.GPT2Config(vocab_size=V, n_embd=D, n_layer=4, n_head=4, n_inner=FF, n_positions=256,
                                  bos_token_id=1, eos_token_id=2, pad_token_id=0)
    return transformers.GPT2LMHeadModel(cfg).eval()


def marian() -> transformers.MarianMTModel:
    cfg = transformers.MarianConfig(vocab_size=V, d_model=D, encoder_layers=3, decoder_layers=3,
                                    encoder_attention_heads=4, decoder_attention_heads=4, encoder_ffn_dim=FF,
                                    decoder_ffn_dim=FF, max_position_embeddings=256, pad_token_id=V - 1,
                                    eos_token_id=2, decoder_start_token_id=V - 1, forced_eos_token_id=None,
                                    activation_function="relu", scale_embedding=True)
    return transformers.MarianMTModel(cfg).eval()


def step_matrices(model: nn.Module) -> list[torch.Tensor]:
    """Every weight a decoding step multiplies by: decoder projections, feed-forward, output head.

    Cross-attention keys/values are left out (computed once from the encoder output).
    """
    skip = set()
    for module in model.decoder.modules():
        if isinstance(module, MultiHeadAttention) and module.cross:
            skip |= {id(module.k_proj), id(module.v_proj)}
    mats = [m.weight for m in model.decoder.layers.modules() if isinstance(m, nn.Linear) and id(m) not in skip]
    return mats + [model.head.proj.weight]


def matmul_floor(model: nn.Module, rows: int, steps: int):
    """The bare products of ``steps`` decoding steps at ``rows`` rows (see the module docstring)."""
    mats = step_matrices(model)
    inputs = {w.shape[1]: torch.randn(rows, w.shape[1]) for w in mats}

    def run():
        for _ in range(steps):
            for w in mats:
                F.linear(inputs[w.shape[1]], w)

    return run


def hf_kwargs(**extra):
    return dict(do_sample=False, min_length=0, no_repeat_ngram_size=0, repetition_penalty=1.0,
                length_penalty=0.0, early_stopping=False, **extra)


def lm_case(batch: int, new: int, rounds: int) -> dict:
    torch.manual_seed(0)
    hf = gpt2()
    ours = from_hf(hf).eval()
    prompt = torch.randint(3, V, (batch, 16))
    mask = torch.ones_like(prompt)
    run_hf = lambda: hf.generate(prompt, attention_mask=mask, max_new_tokens=new, min_new_tokens=new,  # noqa: E731
                                 pad_token_id=0, eos_token_id=None, **hf_kwargs(num_beams=1))
    run_qkv = lambda: generate(ours, prompt, max_new_tokens=new, eos_id=None)  # noqa: E731
    with torch.inference_mode():
        same = torch.equal(run_hf(), run_qkv())
        floor = matmul_floor(ours, batch, new)
        t = time_interleaved({"hf": run_hf, "qkv": run_qkv, "floor": floor}, rounds=rounds, warmup=2)
    return _result(t, batch * new, same)


def beam_case(batch: int, new: int, rounds: int) -> dict:
    torch.manual_seed(0)
    hf = marian()
    ours = from_hf(hf).eval()
    src = torch.randint(3, V - 1, (batch, 20))
    mask = torch.ones_like(src)
    run_hf = lambda: hf.generate(src, attention_mask=mask, max_new_tokens=new, num_beams=4,  # noqa: E731
                                 pad_token_id=V - 1, eos_token_id=2, decoder_start_token_id=V - 1, **hf_kwargs())
    run_qkv = lambda: generate(ours, src, mask.bool(), max_new_tokens=new, beams=4, eos_id=2)  # noqa: E731
    with torch.inference_mode():
        expected, got = run_hf()[:, 1:], run_qkv()
        same = torch.equal(expected[:, : got.shape[1]], got)
        floor = matmul_floor(ours, batch * 4, got.shape[1])
        t = time_interleaved({"hf": run_hf, "qkv": run_qkv, "floor": floor}, rounds=rounds, warmup=1)
    return _result(t, batch * new, same)


def _result(t: dict, tokens: int, same: bool) -> dict:
    return {
        "hf_tokens_per_s": rounded(tokens / t["hf"]["median_s"]),
        "qkv_tokens_per_s": rounded(tokens / t["qkv"]["median_s"]),
        "speedup": rounded(t["hf"]["median_s"] / t["qkv"]["median_s"], 3),
        "paired_speedup": rounded(paired_ratio(t["hf"]["windows_s"], t["qkv"]["windows_s"]), 3),
        "identical_tokens": same,
        "floor_tokens_per_s": rounded(tokens / t["floor"]["median_s"]),
        "cap": rounded(t["hf"]["median_s"] / t["floor"]["median_s"], 3),
        "qkv_share_of_floor": rounded(t["floor"]["median_s"] / t["qkv"]["median_s"], 3),
    }


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    new, rounds = (16, 2) if args.quick else (128, 5)
    result = {
        "benchmark": "generate_speed",
        "environment": environment("cpu", args.threads),
        "greedy_lm_batch1": lm_case(1, new, rounds),
        "greedy_lm_batch8": lm_case(8, new, rounds),
        "beam4_seq2seq_batch8": beam_case(8, min(new, 64), rounds),
        "targets": {"greedy_lm_batch1": 3.0, "greedy_lm_batch8": 2.0, "beam4_seq2seq_batch8": 2.0},
    }
    emit(result, args.out)
    return result


if __name__ == "__main__":
    main()
