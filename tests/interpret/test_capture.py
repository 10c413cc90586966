"""Attention capture: the recorded weights are the attention the model computed, only the chosen
modules leave the fused path, and nothing is left behind afterwards."""

from __future__ import annotations

import pytest
import torch

import qkv.nn.attention as attention_module
from qkv.config import ModelConfig
from qkv.errors import InputError
from qkv.interpret import capture, rollout
from qkv.models import build_model


def model(family: str = "lm", **changes) -> torch.nn.Module:
    torch.manual_seed(0)
    base = dict(family=family, vocab_size=30, d_model=16, n_layers=2, n_heads=2, d_ff=32, max_len=24,
                dropout_embed=0.0, dropout_residual=0.0)
    return build_model(ModelConfig(**{**base, **changes})).eval()


def test_captured_weights_are_softmax_of_the_modules_own_scores():
    lm = model()
    ids = torch.randint(4, 30, (2, 9))
    inputs = []
    attn = lm.decoder.layers[0].self_attn
    handle = attn.register_forward_pre_hook(lambda m, args: inputs.append(args[0]))
    with torch.no_grad(), capture(lm, layers=[0], kinds=["self"]) as cap:
        lm(ids)
    handle.remove()
    q, k, _ = attn._project_self(inputs[0])  # (B, H, T, D)
    scores = q @ k.transpose(-1, -2) / q.shape[-1] ** 0.5
    causal = torch.ones(9, 9, dtype=torch.bool).tril()
    expected = scores.masked_fill(~causal, float("-inf")).softmax(-1)  # written out here
    assert torch.allclose(cap.weights("decoder", 0)[0], expected, atol=1e-6)


def test_outputs_do_not_change_and_only_the_chosen_modules_leave_the_fused_path(monkeypatch):
    lm = model()
    ids = torch.randint(4, 30, (2, 9))
    with torch.no_grad():
        plain = lm(ids)
    calls = []
    real = attention_module.reference_attention
    monkeypatch.setattr(attention_module, "reference_attention", lambda *a, **kw: calls.append(1) or real(*a, **kw))
    with torch.no_grad():
        lm(ids)
        assert calls == []  # outside capture: every layer fused
        with capture(lm, layers=[1]) as cap:
            captured = lm(ids)
        assert calls == [1]  # only layer 1 took the reference path
        lm(ids)
        assert calls == [1]  # and afterwards nothing is left behind
    assert torch.allclose(plain, captured, atol=1e-5)
    assert cap.layers("decoder") == [1]
    assert all(not m._forward_hooks and m.capture is False for m in lm.modules() if hasattr(m, "capture"))


def test_translator_cross_attention_gives_padded_source_tokens_no_weight():
    mt = model("seq2seq")
    src = torch.randint(4, 30, (2, 7))
    src_mask = torch.ones(2, 7, dtype=torch.bool)
    src_mask[1, 4:] = False
    tgt = torch.randint(4, 30, (2, 5))
    with torch.no_grad(), capture(mt, kinds=["cross"]) as cap:
        mt(src, tgt, src_mask=src_mask)
    cross = cap.weights("decoder", 1, "cross")[0]  # (B, H, T, S)
    assert cross.shape == (2, 2, 5, 7)
    assert torch.all(cross[1, :, :, 4:] == 0) and torch.allclose(cross.sum(-1), torch.ones(2, 2, 5))
    with pytest.raises(InputError, match="nothing captured for encoder layer 0 self"):
        cap.weights("encoder", 0, "self")


def test_generation_records_one_step_at_a_time():
    lm = model()
    prompt = torch.randint(4, 30, (1, 4))
    with capture(lm, layers=[0], kinds=["self"]) as cap:
        lm.generate(prompt, max_new_tokens=5, eos_id=None)
    steps = cap.weights("decoder", 0)
    assert steps[0].shape == (1, 2, 4, 4)  # the prefill
    assert [s.shape[-2:] for s in steps[1:]] == [(1, 5), (1, 6), (1, 7), (1, 8)]


def test_scores_and_residual_stream_when_asked():
    enc = model("encoder", head="mlm")
    ids = torch.randint(4, 30, (2, 6))
    with torch.no_grad(), capture(enc, scores=True, residual=True) as cap:
        enc(ids)
    w, s = cap.weights("encoder", 1)[0], cap.scores("encoder", 1)[0]
    assert torch.allclose(s.softmax(-1), w, atol=1e-6)
    assert cap.residual("encoder", 0)[0].shape == (2, 6, 16)


def test_bad_choices_are_one_line_errors():
    with pytest.raises(InputError, match="kinds \\['diagonal'\\]"):
        with capture(model(), kinds=["diagonal"]):
            pass
    with pytest.raises(InputError, match="no attention module matches"):
        with capture(model(), layers=[7]):
            pass


def test_rollout_multiplies_residual_mixed_layers():
    w1 = torch.tensor([[[[1.0, 0.0], [1.0, 0.0]]]])  # (B=1, H=1, 2, 2): everyone reads token 0
    a1 = torch.tensor([[1.0, 0.0], [0.5, 0.5]])  # ½W + ½I, rows renormalised
    assert torch.allclose(rollout([w1])[0], a1)
    assert torch.allclose(rollout([w1, w1])[0], a1 @ a1)
    assert torch.allclose(rollout([w1, w1]).sum(-1), torch.ones(1, 2))
