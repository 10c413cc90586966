"""Which attention code runs: the scorers' ``fusable`` flag, the ``cross`` wiring, and the one
mask-to-float conversion (``masks.to_additive``)."""

from __future__ import annotations

import pytest
import torch
from torch.testing import assert_close

from qkv import build_model
from qkv.nn import attention, masks
from qkv.nn.attention import ATTENTION, LayerCache, MultiHeadAttention
from tests.conftest import padded_batch, tiny


@pytest.fixture
def calls(monkeypatch):
    """Count the calls to the fused and the reference attention while a model runs."""
    counts = {"fused": 0, "reference": 0}

    def spy(name, original):
        def wrapped(*args, **kwargs):
            counts[name] += 1
            return original(*args, **kwargs)
        return wrapped

    monkeypatch.setattr(attention, "fused_attention", spy("fused", attention.fused_attention))
    monkeypatch.setattr(attention, "reference_attention", spy("reference", attention.reference_attention))
    return counts


@pytest.mark.parametrize("scorer,position,path", [
    ("dot", "sinusoidal", "fused"), ("dot", "alibi", "fused"), ("dot", "rope", "fused"),
    ("additive", "sinusoidal", "reference"),  # SDPA only computes q·k: fusing would drop the scorer
    ("dot", "shaw", "reference"),  # the relative value term needs the weights
])
@pytest.mark.parametrize("family", ["lm", "encoder", "seq2seq"])
def test_the_scorer_and_position_choose_the_kernel(calls, family, scorer, position, path):
    model = build_model(tiny(family=family, attention=scorer, position=position)).eval()
    ids, mask = padded_batch()
    model(ids, ids, mask, mask) if family == "seq2seq" else model(ids, mask)
    other = "reference" if path == "fused" else "fused"
    if family == "seq2seq" and path == "reference" and position == "shaw":
        other = None  # cross-attention has no position terms, so it stays on the fused kernel
    assert calls[path] > 0, f"{scorer}/{position} should run the {path} attention"
    assert other is None or calls[other] == 0, f"{scorer}/{position} ran the {other} attention"


def test_fusable_is_true_exactly_for_a_plain_dot_product():
    assert {name: cls.fusable for name, cls in ATTENTION.items()} == {"dot": True, "additive": False}


def test_capture_forces_the_reference_path(calls):
    attn = MultiHeadAttention(tiny()).eval()
    attn.capture = True
    attn(torch.randn(2, 5, 32))
    assert calls == {"fused": 0, "reference": 1} and attn.weights.shape == (2, 4, 5, 5)


def test_self_attention_refuses_memory_and_cross_attention_needs_it():
    x, memory = torch.randn(2, 5, 32), torch.randn(2, 7, 32)
    with pytest.raises(ValueError, match="cross=True"):
        MultiHeadAttention(tiny())(x, memory)
    cross = MultiHeadAttention(tiny(), cross=True).eval()
    with pytest.raises(ValueError, match="needs memory"):
        cross(x)
    cache = LayerCache(max_len=8, static=True)
    first = cross(x, memory, cache=cache)
    assert_close(cross(x, cache=cache), first)  # keys/values now come from the cache
    assert not torch.allclose(MultiHeadAttention(tiny()).eval()(x), first)


def test_to_additive_keeps_the_one_polarity():
    mask = torch.tensor([[True, False, True]])
    assert torch.equal(masks.to_additive(mask, torch.float32), torch.tensor([[0.0, float("-inf"), 0.0]]))
    bias = torch.tensor([[[1.0, 2.0, 3.0]], [[4.0, 5.0, 6.0]]])  # (2, 1, 3): broadcasts over the mask
    out = masks.to_additive(mask, torch.float64, bias=bias)
    assert out.dtype == torch.float64 and out.shape == (2, 1, 3)
    assert torch.equal(out[:, 0, 1], torch.full((2,), float("-inf"), dtype=torch.float64))
    assert torch.equal(out[:, 0, [0, 2]], bias[:, 0, [0, 2]].double())
