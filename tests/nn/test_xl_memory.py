"""Transformer-XL segment memory: segment-by-segment equals one pass over the concatenated
segments with each query restricted to its own and the previous segment (the memory span)."""

from __future__ import annotations

import pytest
import torch

from qkv.config import ModelConfig
from qkv.models import build_model

L = 12  # segment length = memory length


def lm(position: str, memory: int | None = L) -> torch.nn.Module:
    torch.manual_seed(0)
    cfg = ModelConfig(family="lm", vocab_size=40, d_model=32, n_layers=3, n_heads=4, d_ff=64, max_len=L,
                      position=position, xl_memory=memory, dropout_embed=0.0, dropout_residual=0.0)
    return build_model(cfg).eval()


def memory_span(mask, T, S):
    """causal ∧ key in the query's own or the previous segment, written out here."""
    i, j = torch.arange(T)[:, None], torch.arange(S)[None, :]
    return ((j <= i) & (j >= (i // L - 1) * L))[None, None]


@pytest.mark.parametrize("position", ["rope", "alibi", "t5_bias"])
def test_segments_with_memory_equal_the_masked_full_pass(position):
    model = lm(position)
    ids = torch.randint(0, 40, (2, 3 * L))
    memory = model.new_cache(max_len=L)
    with torch.no_grad():
        segments = torch.cat([model(ids[:, s:s + L], cache=memory) for s in range(0, 3 * L, L)], dim=1)
        assert memory.self_attn[0].held == L and memory.length == 3 * L
        model.decoder.mask_hook = memory_span
        full = model(ids)  # positions 0 … 3L-1, past max_len: relative schemes only
    assert torch.allclose(segments, full, atol=1e-5)


def test_memory_changes_the_prediction_and_carries_no_gradient():
    model = lm("rope").train()
    ids = torch.randint(0, 40, (2, 2 * L))
    memory = model.new_cache(max_len=L)
    model(ids[:, :L], cache=memory)
    with_memory = model(ids[:, L:], cache=memory)
    assert all(not c.k.requires_grad and not c.v.requires_grad for c in memory.self_attn)
    with_memory.sum().backward()  # reaches the weights through this segment only: no error, no graph kept
    with torch.no_grad():
        alone = model.eval()(ids[:, L:])
        again = model(ids[:, L:], cache=_filled(model, ids[:, :L]))
    assert not torch.allclose(alone, again, atol=1e-3)


def _filled(model, first):
    memory = model.new_cache(max_len=L)
    model(first, cache=memory)
    return memory


def test_without_xl_memory_the_cache_keeps_everything():
    model = lm("rope", memory=None)
    cache = model.new_cache(max_len=2 * L)
    with torch.no_grad():
        model(torch.randint(0, 40, (1, L)), cache=cache)
    assert cache.self_attn[0].length == L and not hasattr(cache.self_attn[0], "held")


def test_generation_runs_past_max_len_on_the_memory_and_stays_flat():
    model = lm("rope")  # max_len = L = 12, memory of 12
    prompt = torch.randint(0, 40, (1, 5))
    out = model.generate(prompt, max_new_tokens=40, eos_id=None, allow_extrapolation=True)  # 45 > max_len
    assert out.shape == (1, 45)
    memory = model.new_cache(max_len=L)
    with torch.no_grad():  # the same tokens, one at a time on the memory: greedy picks each argmax
        logits = [model(out[:, :5], cache=memory)[:, -1]]
        for t in range(5, 44):
            logits.append(model(out[:, t:t + 1], cache=memory)[:, -1])
            assert memory.self_attn[0].held <= L
    assert torch.equal(torch.stack(logits, 1).argmax(-1), out[:, 5:])
