"""Decoding without a cache (``use_cache=False``): the same tokens, the full prefix every step."""

from __future__ import annotations

import pytest
import torch

from qkv import build_model
from qkv.generate import GenerationError, generate
from tests.conftest import tiny

N_NEW = 10
DECODINGS = {
    "greedy": {},
    "beam": {"beams": 3},
    "beam_alpha": {"beams": 3, "length_alpha": 0.6},
    "sample": {"do_sample": True, "top_k": 10, "seed": 3},
}


def model(family: str, arch: str = "transformer", **changes):
    torch.manual_seed(0)
    return build_model(tiny(family=family, arch=arch, **changes)).eval()


@pytest.mark.parametrize("arch", ["transformer", "lstm"])
@pytest.mark.parametrize("family", ["lm", "seq2seq"])
@pytest.mark.parametrize("decoding", list(DECODINGS))
def test_no_cache_gives_the_cached_tokens(family, arch, decoding):
    m = model(family, arch)
    ids = torch.randint(4, 50, (3, 6), generator=torch.Generator().manual_seed(1))  # (B, S)
    settings = dict(max_new_tokens=N_NEW, eos_id=None, **DECODINGS[decoding])
    cached = generate(m, ids, **settings)
    uncached = generate(m, ids, use_cache=False, **settings)
    assert torch.equal(cached, uncached)


@pytest.mark.parametrize("beams", [1, 3])
def test_no_cache_gives_the_cached_tokens_with_left_padding_and_eos(beams):
    m = model("lm", position="rope")
    ids = torch.tensor([[0, 0, 5, 6, 7], [8, 9, 10, 11, 12], [0, 0, 0, 13, 14]])
    mask = ids != 0
    cached = generate(m, ids, mask, max_new_tokens=N_NEW, beams=beams, eos_id=9)
    assert torch.equal(generate(m, ids, mask, max_new_tokens=N_NEW, beams=beams, eos_id=9, use_cache=False), cached)


def test_no_cache_gives_the_cached_tokens_when_the_context_is_cropped():
    m = model("lm", position="learned", max_len=12)
    ids = torch.randint(4, 50, (2, 5), generator=torch.Generator().manual_seed(2))
    with pytest.warns(Warning):
        cached = generate(m, ids, max_new_tokens=20, beams=2, eos_id=None)
    with pytest.warns(Warning):
        assert torch.equal(generate(m, ids, max_new_tokens=20, beams=2, eos_id=None, use_cache=False), cached)


def decoder_input_lengths(m, **settings) -> list[int]:
    """The number of positions the decoder is fed at each call during one ``generate``."""
    seen: list[int] = []
    decoder = m.decoder if hasattr(m, "decoder") else m.lstm  # the LSTM LM's recurrence is `lstm`
    hook = decoder.register_forward_pre_hook(lambda module, args: seen.append(args[0].shape[1]))
    try:
        m.generate(torch.randint(4, 50, (2, 4)), max_new_tokens=6, eos_id=None, **settings)
    finally:
        hook.remove()
    return seen


@pytest.mark.parametrize("arch", ["transformer", "lstm"])
@pytest.mark.parametrize("family", ["lm", "seq2seq"])
def test_without_a_cache_every_step_reruns_the_whole_prefix(family, arch):
    m = model(family, arch)
    first = 4 if family == "lm" else 1  # the prompt, or the decoder's start token
    assert decoder_input_lengths(m) == [first] + [1] * 5
    assert decoder_input_lengths(m, use_cache=False) == [first + i for i in range(6)]
    assert decoder_input_lengths(m, use_cache=False, beams=2) == [first + i for i in range(6)]


@pytest.mark.parametrize("family", ["lm", "seq2seq"])
def test_without_a_cache_none_is_built(family, monkeypatch):
    m = model(family)

    def refuse(max_len):
        raise AssertionError("new_cache called with use_cache=False")

    monkeypatch.setattr(m, "new_cache", refuse)
    generate(m, torch.randint(4, 50, (2, 4)), max_new_tokens=5, beams=2, eos_id=None, use_cache=False)
    with pytest.raises(AssertionError, match="new_cache called"):
        generate(m, torch.randint(4, 50, (2, 4)), max_new_tokens=5, eos_id=None)


def test_use_cache_must_be_a_bool():
    with pytest.raises(GenerationError, match="use_cache"):
        generate(model("lm"), torch.tensor([[5, 6]]), max_new_tokens=2, use_cache="no")
