"""Decoding step by step with the KV cache equals recomputing the whole prefix (question 17)."""

from __future__ import annotations

import pytest
import torch
from torch.testing import assert_close

from qkv import build_model
from qkv.nn.position import POSITION
from tests.conftest import tiny

ALL_POSITIONS = sorted(POSITION)


def stepwise(model, ids, call):
    """Feed ids one token at a time through a cache; return the logits of every step."""
    cache = model.new_cache(max_len=ids.shape[1])
    return torch.cat([call(ids[:, t : t + 1], cache) for t in range(ids.shape[1])], dim=1)


@pytest.mark.parametrize("position", ALL_POSITIONS)
@pytest.mark.parametrize("extra", [{}, {"n_kv_heads": 2}, {"window": 3}, {"attention": "additive"}])
def test_lm_cache_equals_full(position, extra):
    model = build_model(tiny(family="lm", position=position, **extra)).eval()
    ids = torch.randint(0, 50, (2, 10))
    full = model(ids)
    cached = stepwise(model, ids, lambda x, cache: model(x, cache=cache))
    assert_close(cached, full, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("position", ALL_POSITIONS)
def test_seq2seq_cache_equals_full(position):
    model = build_model(tiny(family="seq2seq", position=position)).eval()
    src, tgt = torch.randint(4, 50, (2, 7)), torch.randint(4, 50, (2, 6))
    src_mask = torch.tensor([[True] * 7, [True] * 4 + [False] * 3])
    memory = model.encode(src, src_mask)
    full = model.decode(tgt, memory, src_mask)
    cached = stepwise(model, tgt, lambda x, cache: model.decode(x, memory, src_mask, cache=cache))
    assert_close(cached, full, rtol=1e-4, atol=1e-5)


def test_lm_cache_with_left_padded_prompt_and_chunked_prefill():
    """A prompt fed in one chunk, then single tokens, with left padding, equals the full pass."""
    model = build_model(tiny(family="lm", position="rope")).eval()
    ids = torch.randint(4, 50, (2, 10))
    mask = torch.ones(2, 10, dtype=torch.bool)
    mask[1, :3] = False  # row 1 is left-padded by 3
    full = model(ids, mask)
    cache = model.new_cache(max_len=10)
    first = model(ids[:, :6], mask[:, :6], cache=cache)
    rest = [model(ids[:, t : t + 1], mask[:, : t + 1], cache=cache) for t in range(6, 10)]
    cached = torch.cat([first] + rest, dim=1)
    assert_close(cached[mask], full[mask], rtol=1e-4, atol=1e-5)


def test_cache_overflow_is_a_clear_error():
    model = build_model(tiny(family="lm")).eval()
    cache = model.new_cache(max_len=4)
    model(torch.randint(0, 50, (1, 4)), cache=cache)
    with pytest.raises(ValueError, match="KV cache holds 4 positions"):
        model(torch.randint(0, 50, (1, 1)), cache=cache)


def test_stacked_qkv_weight_follows_in_place_updates_and_loads():
    """Generation keeps the stacked q/k/v weight between steps; any change to the weights must show."""
    model = build_model(tiny(family="lm")).eval()
    fresh = build_model(tiny(family="lm")).eval()
    ids = torch.randint(0, 50, (2, 6))
    with torch.no_grad():
        model(ids)  # builds the stacked copies
        model.load_state_dict(fresh.state_dict())  # in-place copy into the same storage
        assert_close(model(ids), fresh(ids))
        for p in model.parameters():
            p.mul_(1.5)  # an optimiser-style in-place update
        for p in fresh.parameters():
            p.mul_(1.5)
        assert_close(model(ids), fresh(ids))
    with torch.inference_mode():
        assert_close(model(ids), fresh(ids))


def test_model_built_under_inference_mode_generates():
    """Inference-mode parameters carry no version counter; the stacked-weight cache must cope."""
    with torch.inference_mode():
        model = build_model(tiny(family="lm")).eval()
        ids = torch.randint(0, 50, (1, 5))
        out = model.generate(ids, max_new_tokens=4, eos_id=None)
    reference = build_model(tiny(family="lm")).eval()
    reference.load_state_dict({k: v.clone() for k, v in model.state_dict().items()})
    with torch.no_grad():
        assert torch.equal(out, reference.generate(ids, max_new_tokens=4, eos_id=None))
