"""Block-local (sliding-window) attention: equal to full attention under the window mask, for
training and for decoding with a rolling cache whose size stays at the window."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from qkv.config import ModelConfig
from qkv.models import build_model
from qkv.nn import masks
from qkv.nn.attention import RollingLayerCache
from qkv.nn.local_attention import band_attention, band_mask, block_local_attention, previous_block_mask


def masked_reference(q, k, v, window, scale):
    T = q.shape[2]
    i, j = torch.arange(T)[:, None], torch.arange(T)[None, :]
    allowed = (j <= i) & (i - j < window)  # (T, T): written out here, not taken from qkv
    scores = (q @ k.transpose(-1, -2)) * scale
    return scores.masked_fill(~allowed, float("-inf")).softmax(-1) @ v


def padded_band(q, k, v, window, scale):  # the (w, 2w) band call, padded to whole blocks as the dispatcher does
    T, w = q.shape[2], min(window, q.shape[2])
    pad = -T % w
    return band_attention(*(F.pad(t, (0, 0, 0, pad)) for t in (q, k, v)), w, scale)[:, :, :T]


@pytest.mark.parametrize("path", [block_local_attention, padded_band], ids=["two_halves", "band"])
@pytest.mark.parametrize("T, window", [(64, 16), (50, 16), (10, 16), (33, 1), (40, 40), (96, 32)])
def test_blocks_equal_full_attention_under_the_window_mask(T, window, path):
    torch.manual_seed(T)
    q, k, v = (torch.randn(2, 3, T, 8, requires_grad=True) for _ in range(3))
    got = path(q, k, v, window, scale=8 ** -0.5)
    ref = masked_reference(q, k, v, window, scale=8 ** -0.5)
    assert got.shape == ref.shape and torch.allclose(got, ref, atol=1e-5)
    g_got = torch.autograd.grad(got.square().sum(), (q, k, v))
    g_ref = torch.autograd.grad(ref.square().sum(), (q, k, v))
    assert all(torch.allclose(a, b, atol=1e-4) for a, b in zip(g_got, g_ref))


def test_the_two_halves_path_in_bf16_stays_near_the_fp32_reference():
    torch.manual_seed(0)
    q, k, v = (torch.randn(1, 2, 64, 16) for _ in range(3))
    got = block_local_attention(*(t.bfloat16() for t in (q, k, v)), 16, scale=0.25)
    assert got.dtype == torch.bfloat16
    assert torch.allclose(got.float(), masked_reference(q, k, v, 16, scale=0.25), atol=3e-2)


def test_the_previous_block_mask_hides_the_keys_a_query_sees_in_its_own_block():
    assert torch.isinf(previous_block_mask(3, torch.float32)).tolist() == [[True, False, False],
                                                                           [True, True, False],
                                                                           [True, True, True]]


def test_the_band_mask_lets_each_query_see_itself_and_the_window_before_it():
    assert band_mask(3).tolist() == [[False, True, True, True, False, False],  # keys: previous ‖ own block
                                     [False, False, True, True, True, False],
                                     [False, False, False, True, True, True]]


def lm(position: str, window: int | None = 8, **changes) -> torch.nn.Module:
    torch.manual_seed(0)
    cfg = ModelConfig(family="lm", vocab_size=50, d_model=32, n_layers=2, n_heads=4, d_ff=64, max_len=128,
                      position=position, window=window, dropout_embed=0.0, dropout_residual=0.0, **changes)
    return build_model(cfg).eval()


def test_a_windowed_lm_takes_the_block_path_and_a_window_changes_the_output():
    model = lm("rope")
    mask = model.decoder.attention_mask(40, 40, None, torch.device("cpu"))
    assert isinstance(mask, masks.LocalWindow) and mask.window == 8
    ids = torch.randint(0, 50, (2, 40))
    unwindowed = lm("rope", window=None)
    with torch.no_grad():
        assert not torch.allclose(model(ids)[:, 20:], unwindowed(ids)[:, 20:], atol=1e-3)
        assert torch.allclose(model(ids)[:, :8], unwindowed(ids)[:, :8], atol=1e-5)  # within the window: same


@pytest.mark.parametrize("position", ["rope", "sinusoidal", "learned", "alibi", "t5_bias", "none"])
def test_block_path_equals_the_reference_path(position):
    model = lm(position)
    ids = torch.randint(0, 50, (2, 37))
    with torch.no_grad():
        fused = model(ids)
        for layer in model.decoder.layers:
            layer.self_attn.capture = True  # the reference path, with the mask materialised
        reference = model(ids)
    assert torch.allclose(fused, reference, atol=1e-5)


@pytest.mark.parametrize("position", ["rope", "sinusoidal", "alibi", "t5_bias"])
def test_rolling_cache_decoding_equals_the_full_pass_and_stays_at_the_window(position):
    model = lm(position)
    ids = torch.randint(0, 50, (2, 60))
    with torch.no_grad():
        full = model(ids)  # (B, T, V)
        cache = model.new_cache(max_len=60)
        steps = [model(ids[:, :5], cache=cache)]  # a prefill, then one token at a time
        for t in range(5, 60):
            steps.append(model(ids[:, t:t + 1], cache=cache))
            assert cache.self_attn[0].held == min(t + 1, 7)  # window - 1 keys, however long the text
    assert all(isinstance(c, RollingLayerCache) for c in cache.self_attn)
    assert cache.length == 60
    assert torch.allclose(torch.cat(steps, dim=1), full, atol=1e-4)


def test_beam_search_with_a_rolling_cache_matches_the_windowed_model():
    model = lm("rope")
    prompt = torch.randint(0, 50, (1, 6))
    out = model.generate(prompt, max_new_tokens=30, beams=3, eos_id=None)
    greedy = model.generate(prompt, max_new_tokens=30, eos_id=None)
    with torch.no_grad():  # the greedy tokens are the argmax of the full windowed pass
        logits = model(greedy[:, :-1])
    assert torch.equal(logits[:, 5:].argmax(-1), greedy[:, 6:])
    assert out.shape == (1, 36)
