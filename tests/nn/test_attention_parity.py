"""Our attention, encoder layer and decoder layer against PyTorch's, with copied weights."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.testing import assert_close

from qkv.nn import masks
from qkv.nn.attention import MultiHeadAttention
from qkv.nn.block import build_decoder_layer, build_encoder_layer
from qkv.nn.position import PositionTerms
from tests.conftest import padded_batch, tiny

D, H = 32, 4


def copy_mha(ours: MultiHeadAttention, theirs: nn.MultiheadAttention) -> None:
    """torch packs Wq, Wk, Wv into one (3d, d) in_proj; ours keeps three Linear layers."""
    wq, wk, wv = theirs.in_proj_weight.detach().chunk(3)
    bq, bk, bv = theirs.in_proj_bias.detach().chunk(3)
    with torch.no_grad():
        for lin, w, b in ((ours.q_proj, wq, bq), (ours.k_proj, wk, bk), (ours.v_proj, wv, bv)):
            lin.weight.copy_(w)
            lin.bias.copy_(b)
        ours.out_proj.weight.copy_(theirs.out_proj.weight)
        ours.out_proj.bias.copy_(theirs.out_proj.bias)


def torch_mha() -> nn.MultiheadAttention:
    m = nn.MultiheadAttention(D, H, batch_first=True).eval()
    nn.init.normal_(m.in_proj_bias)
    nn.init.normal_(m.out_proj.bias)
    return m


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("capture", [False, True])  # fused path and reference path
def test_self_attention_matches_torch(causal, capture):
    theirs = torch_mha()
    ours = MultiHeadAttention(tiny(d_model=D, n_heads=H)).eval()
    copy_mha(ours, theirs)
    ours.capture = capture
    x = torch.randn(3, 9, D)
    _, token_mask = padded_batch()
    mask = masks.padding_mask(token_mask)
    attn_mask = None
    if causal:
        mask = mask & masks.causal_mask(9, 9)
        attn_mask = ~masks.causal_mask(9, 9)  # torch: True = NOT allowed (the one conversion)
    expected, _ = theirs(x, x, x, key_padding_mask=~token_mask, attn_mask=attn_mask, need_weights=False)
    got = ours(x, mask=mask)
    assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_cross_attention_and_weights_match_torch():
    theirs = torch_mha()
    ours = MultiHeadAttention(tiny(d_model=D, n_heads=H), cross=True).eval()
    copy_mha(ours, theirs)
    ours.capture = True
    x, memory = torch.randn(3, 5, D), torch.randn(3, 9, D)
    _, token_mask = padded_batch()
    expected, expected_w = theirs(x, memory, memory, key_padding_mask=~token_mask, average_attn_weights=False)
    got = ours(x, memory, mask=masks.padding_mask(token_mask))
    assert_close(got, expected, rtol=1e-5, atol=1e-5)
    assert_close(ours.weights, expected_w, rtol=1e-5, atol=1e-6)


def copy_norm(ours, theirs) -> None:
    with torch.no_grad():
        ours.weight.copy_(theirs.weight)
        ours.bias.copy_(theirs.bias)


def copy_ffn(ours, theirs) -> None:
    with torch.no_grad():
        for a, b in ((ours.up, theirs.linear1), (ours.down, theirs.linear2)):
            a.weight.copy_(b.weight)
            a.bias.copy_(b.bias)


def randomise(module: nn.Module) -> None:
    """Move norms and biases off their 1/0 defaults so a wrong wiring cannot pass by luck."""
    with torch.no_grad():
        for name, p in module.named_parameters():
            if "norm" in name or "bias" in name:
                p.add_(0.1 * torch.randn_like(p))


@pytest.mark.parametrize("norm_first", [False, True])
def test_encoder_layer_matches_torch(norm_first):
    theirs = nn.TransformerEncoderLayer(D, H, 64, dropout=0.0, batch_first=True, norm_first=norm_first).eval()
    randomise(theirs)
    cfg = tiny(d_model=D, n_heads=H, d_ff=64, norm_placement="pre" if norm_first else "post")
    ours = build_encoder_layer(cfg).eval()
    copy_mha(ours.self_attn, theirs.self_attn)
    copy_ffn(ours.ffn, theirs)
    copy_norm(ours.sub_attn.norm, theirs.norm1)
    copy_norm(ours.sub_ffn.norm, theirs.norm2)
    x = torch.randn(3, 9, D)
    _, token_mask = padded_batch()
    expected = theirs(x, src_key_padding_mask=~token_mask)
    got = ours(x, masks.padding_mask(token_mask), PositionTerms(), token_mask)
    assert_close(got[token_mask], expected[token_mask], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("norm_first", [False, True])
def test_decoder_layer_matches_torch(norm_first):
    theirs = nn.TransformerDecoderLayer(D, H, 64, dropout=0.0, batch_first=True, norm_first=norm_first).eval()
    randomise(theirs)
    cfg = tiny(d_model=D, n_heads=H, d_ff=64, norm_placement="pre" if norm_first else "post")
    ours = build_decoder_layer(cfg, cross=True).eval()
    copy_mha(ours.self_attn, theirs.self_attn)
    copy_mha(ours.cross_attn, theirs.multihead_attn)
    copy_ffn(ours.ffn, theirs)
    for mine, their in ((ours.sub_attn, theirs.norm1), (ours.sub_cross, theirs.norm2), (ours.sub_ffn, theirs.norm3)):
        copy_norm(mine.norm, their)
    x, memory = torch.randn(3, 7, D), torch.randn(3, 9, D)
    _, mem_mask = padded_batch()
    _, tgt_mask = padded_batch(T=7, lengths=(7, 7, 4))
    expected = theirs(
        x, memory, tgt_mask=~masks.causal_mask(7, 7), tgt_key_padding_mask=~tgt_mask,
        memory_key_padding_mask=~mem_mask,
    )
    self_mask = masks.padding_mask(tgt_mask) & masks.causal_mask(7, 7)
    got = ours(x, self_mask, PositionTerms(), tgt_mask, memory=memory, memory_mask=masks.padding_mask(mem_mask))
    assert_close(got[tgt_mask], expected[tgt_mask], rtol=1e-5, atol=1e-5)
