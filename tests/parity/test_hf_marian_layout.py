"""A qkv seq2seq model with qkv's default interleaved sinusoids exports to Marian, whose sinusoids
are concatenated (all sines, then all cosines): ``to_hf`` renumbers the hidden features.

The reference is Hugging Face's own ``MarianMTModel`` forward on the exported weights.
"""

from __future__ import annotations

import pytest
import torch

transformers = pytest.importorskip("transformers")

from qkv import ModelConfig, build_model  # noqa: E402
from qkv.interop import from_hf, to_hf  # noqa: E402
from qkv.interop.hf_marian import concat_order  # noqa: E402
from qkv.nn.position import Sinusoidal  # noqa: E402

V, D, PAD = 96, 32, 95


def _interleaved_seq2seq(**changes) -> torch.nn.Module:
    torch.manual_seed(0)
    cfg = ModelConfig(family="seq2seq", vocab_size=V, d_model=D, n_layers=2, n_decoder_layers=2, n_heads=4,
                      d_ff=48, max_len=32, pad_id=PAD, **changes)
    assert cfg.sinusoidal_layout == "interleave"  # qkv's default, the layout under test
    model = build_model(cfg)
    with torch.no_grad():  # move LayerNorm γ, β and the biases off 1 and 0, so a wrong axis shows
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    return model.eval()


def _batch():
    src = torch.randint(3, V - 1, (3, 9))
    src_mask = torch.arange(9)[None] < torch.tensor([9, 6, 3])[:, None]
    tgt = torch.randint(3, V - 1, (3, 7))
    tgt[:, 0] = PAD
    return src.masked_fill(~src_mask, PAD), src_mask, tgt


def test_concat_order_maps_interleaved_to_concatenated_sinusoids():
    cfg = dict(family="seq2seq", vocab_size=V, d_model=D, n_heads=4, max_len=32)
    pos = torch.arange(20)[None]
    interleaved = Sinusoidal(ModelConfig(**cfg), causal=False).absolute(pos)  # (1, 20, D)
    concat = Sinusoidal(ModelConfig(**cfg, sinusoidal_layout="concat"), causal=False).absolute(pos)
    torch.testing.assert_close(interleaved[..., concat_order(D)], concat)


@pytest.mark.parametrize("changes", [{}, dict(tie_embeddings=False, output_bias=True)], ids=["tied", "untied"])
@torch.no_grad()
def test_interleaved_seq2seq_exports_to_marian_with_equal_logits(changes):
    model = _interleaved_seq2seq(**changes)
    src, src_mask, tgt = _batch()
    hf = to_hf(model)
    assert isinstance(hf, transformers.MarianMTModel)
    want = hf(input_ids=src, attention_mask=src_mask.long(), decoder_input_ids=tgt).logits  # (B, T, V)
    torch.testing.assert_close(model(src, tgt, src_mask), want)


@torch.no_grad()
def test_interleaved_seq2seq_round_trips_through_marian():
    model = _interleaved_seq2seq()
    src, src_mask, tgt = _batch()
    back = from_hf(to_hf(model))
    assert back.config.sinusoidal_layout == "concat"  # Marian holds only the concatenated layout
    torch.testing.assert_close(back(src, tgt, src_mask), model(src, tgt, src_mask))


@torch.no_grad()
def test_interleaved_seq2seq_greedy_matches_marian_generate():
    model = _interleaved_seq2seq()
    src, src_mask, _ = _batch()
    hf = to_hf(model)
    want = hf.generate(input_ids=src, attention_mask=src_mask.long(), max_new_tokens=8, num_beams=1,
                       do_sample=False, min_length=0, forced_eos_token_id=None)[:, 1:]  # drop the start token
    got = model.generate(src, src_mask, max_new_tokens=8)
    assert got.tolist() == want.tolist()
