"""Every decoding setting out of range is refused with a GenerationError naming it, and the
edge values just inside each range still decode."""

from __future__ import annotations

import math

import pytest
import torch

from qkv import build_model
from qkv.errors import QkvError
from qkv.generate import MAX_NEW_TOKENS_LIMIT, GenerationError, generate, top_k_filter
from tests.conftest import tiny


@pytest.fixture(scope="module")
def lm():
    torch.manual_seed(0)
    return build_model(tiny(family="lm", max_len=32)).eval()


PROMPT = torch.tensor([[5, 6, 7]])

BAD = [
    # (setting, bad value, other settings the case needs)
    ("temperature", 0, dict(do_sample=True)),
    ("temperature", 0.0, dict(do_sample=True)),
    ("temperature", -1.0, dict(do_sample=True)),
    ("temperature", math.inf, dict(do_sample=True)),
    ("temperature", math.nan, dict(do_sample=True)),
    ("temperature", "hot", dict(do_sample=True)),
    ("top_k", 0, {}),
    ("top_k", -3, {}),
    ("top_k", 2.5, {}),
    ("top_k", True, {}),
    ("top_p", 0, {}),
    ("top_p", 0.0, {}),
    ("top_p", -0.1, {}),
    ("top_p", 1.5, {}),
    ("top_p", math.nan, {}),
    ("repetition_penalty", 0, dict(do_sample=True)),
    ("repetition_penalty", -1.2, dict(do_sample=True)),
    ("repetition_penalty", math.inf, {}),
    ("beams", 0, {}),
    ("beams", -2, {}),
    ("beams", 2.0, {}),
    ("length_alpha", -0.5, {}),
    ("length_alpha", math.nan, {}),
    ("max_new_tokens", 0, {}),
    ("max_new_tokens", MAX_NEW_TOKENS_LIMIT + 1, {}),
    ("max_new_tokens", 3.0, {}),
    ("eos_id", 50, {}),
    ("eos_id", -2, {}),
    ("eos_id", 1.5, {}),
    ("seed", -1, dict(do_sample=True)),
    ("seed", 0.5, dict(do_sample=True)),
    ("do_sample", "yes", {}),
    ("early_stopping", 1, {}),
    ("allow_extrapolation", None, {}),
]


@pytest.mark.parametrize("setting, value, extra", BAD, ids=[f"{s}={v!r}" for s, v, _ in BAD])
def test_bad_setting_is_refused_with_its_name(lm, setting, value, extra):
    with pytest.raises(GenerationError) as err:
        generate(lm, PROMPT, **{"max_new_tokens": 4, **extra, setting: value})
    message = str(err.value)
    assert f"{setting}={value!r}" in message and "\n" not in message
    assert isinstance(err.value, QkvError) and isinstance(err.value, ValueError)


def test_temperature_zero_points_to_greedy(lm):
    with pytest.raises(GenerationError, match=r"use greedy decoding \(do_sample=False\) for temperature 0"):
        generate(lm, PROMPT, do_sample=True, temperature=0)


def test_temperature_is_ignored_without_sampling(lm):
    """Greedy never divides by the temperature, so a CLI default of 0 or below does no harm."""
    greedy = generate(lm, PROMPT, max_new_tokens=8, eos_id=None)
    assert torch.equal(generate(lm, PROMPT, max_new_tokens=8, temperature=0, eos_id=None), greedy)


def test_beam_sampling_is_refused(lm):
    with pytest.raises(GenerationError, match="do_sample=True with beams=3"):
        generate(lm, PROMPT, do_sample=True, beams=3)


def _sampled(lm, **kwargs):
    return generate(lm, PROMPT.repeat(3, 1), max_new_tokens=10, do_sample=True, seed=3, eos_id=None, **kwargs)


def test_top_k_one_and_tiny_top_p_equal_greedy(lm):
    greedy = generate(lm, PROMPT.repeat(3, 1), max_new_tokens=10, eos_id=None)
    assert torch.equal(_sampled(lm, top_k=1), greedy)
    assert torch.equal(_sampled(lm, top_p=1e-9), greedy)  # the nucleus always keeps the top token


def test_top_p_one_and_huge_top_k_keep_every_token(lm):
    plain = _sampled(lm)
    assert torch.equal(_sampled(lm, top_p=1.0), plain)
    assert torch.equal(_sampled(lm, top_k=10_000), plain)  # more than the vocabulary: no filter
    logits = torch.randn(2, 7)
    assert torch.equal(top_k_filter(logits, 10_000), logits)


def test_valid_edge_values_decode(lm):
    edges = [dict(do_sample=True, temperature=1e-3, seed=0), dict(do_sample=True, repetition_penalty=1e-3),
             dict(do_sample=True, seed=2**64 - 1), dict(beams=1, length_alpha=0.0), dict(eos_id=None),
             dict(eos_id=49), dict(eos_id=-1), dict(max_new_tokens=1), dict(top_k=None, top_p=None)]
    for kwargs in edges:
        out = generate(lm, PROMPT, **{"max_new_tokens": 4, **kwargs})
        assert out.shape[0] == 1 and PROMPT.shape[1] < out.shape[1] <= PROMPT.shape[1] + 4, kwargs


def test_input_dtypes_and_right_padded_prompts_are_refused(lm):
    with pytest.raises(GenerationError, match="integer token ids"):
        generate(lm, PROMPT.float())
    with pytest.raises(GenerationError, match="bool tensor"):
        generate(lm, PROMPT, torch.ones_like(PROMPT))
    with pytest.raises(GenerationError, match="LEFT"):
        generate(lm, torch.tensor([[5, 6, 0]]), torch.tensor([[True, True, False]]))
