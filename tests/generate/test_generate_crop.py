"""Generating past ``max_len`` crops the context as nanoGPT does: every token is predicted from
the last ``max_len`` tokens alone, at positions 0..max_len-1 — checked against nanoGPT's loop
(no cache, ``idx[:, -block_size:]``) for greedy, sampling and beam search, batched and alone."""

from __future__ import annotations

import warnings

import pytest
import torch

from qkv import build_model
from qkv.generate import GenerationError, beam_search, generate, top_k_filter
from tests.conftest import tiny

MAX_LEN = 8
N_NEW = 20


def tiny_lm(position="learned", **changes):
    # A large init_std makes the random model's next token depend on its context, so a
    # window that drops old tokens changes what it says.
    return build_model(tiny(family="lm", position=position, max_len=MAX_LEN, init_std=0.3, **changes)).eval()


@torch.no_grad()
def nanogpt_greedy(model, ids, n):
    """nanoGPT's loop: each new token from the last max_len tokens, recomputed without a cache."""
    for _ in range(n):
        logits = model(ids[:, -model.config.max_len :])[:, -1]  # (B, V)
        ids = torch.cat([ids, logits.argmax(-1, keepdim=True)], dim=1)
    return ids


@torch.no_grad()
def nanogpt_sample(model, ids, n, seed, temperature=1.0, top_k=None):
    generator = torch.Generator().manual_seed(seed)
    for _ in range(n):
        logits = model(ids[:, -model.config.max_len :])[:, -1].float() / temperature  # (B, V)
        if top_k is not None:
            logits = top_k_filter(logits, top_k)
        ids = torch.cat([ids, torch.multinomial(logits.softmax(-1), 1, generator=generator)], dim=1)
    return ids


@torch.no_grad()
def uncached_greedy(model, ids, n):
    """Greedy over the whole sequence, never cropped."""
    for _ in range(n):
        ids = torch.cat([ids, model(ids)[:, -1].argmax(-1, keepdim=True)], dim=1)
    return ids


class NanoGPTStepper:
    """The Stepper interface over nanoGPT's loop, so beam search can run on it unchanged."""

    def __init__(self, model, ids):
        self.model, self.ids = model, ids

    def logits(self):
        return self.model(self.ids[:, -self.model.config.max_len :])[:, -1]  # (B, V)

    def prefill(self):
        return self.logits()

    def step(self, tokens):
        self.ids = torch.cat([self.ids, tokens[:, None]], dim=1)
        return self.logits()

    def reorder(self, index, same_source=False):
        self.ids = self.ids.index_select(0, index)


def quiet_generate(*args, **kwargs):
    """generate, with the crop notice (tested on its own below) kept out of the test output."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return generate(*args, **kwargs)


@pytest.mark.parametrize("prompt_len", [3, MAX_LEN, 12])  # crop during generation, at once, of the prompt
def test_greedy_past_max_len_equals_nanogpt_loop(prompt_len):
    lm = tiny_lm()
    ids = torch.randint(4, 50, (2, prompt_len))
    out = quiet_generate(lm, ids, max_new_tokens=N_NEW, eos_id=None)
    assert out.shape == (2, prompt_len + N_NEW)
    assert torch.equal(out, nanogpt_greedy(lm, ids, N_NEW))


@pytest.mark.parametrize("position", ["sinusoidal", "rope", "alibi", "t5_bias", "shaw", "none"])
def test_every_position_kind_crops_without_allow_extrapolation(position):
    lm = tiny_lm(position)
    ids = torch.randint(4, 50, (1, 5))
    assert torch.equal(quiet_generate(lm, ids, max_new_tokens=N_NEW, eos_id=None), nanogpt_greedy(lm, ids, N_NEW))


def test_sampling_past_max_len_equals_nanogpt_loop():
    lm = tiny_lm()
    ids = torch.randint(4, 50, (2, 5))
    for seed, top_k, temperature in [(0, None, 1.0), (7, 5, 0.7)]:
        out = quiet_generate(lm, ids, max_new_tokens=N_NEW, do_sample=True, seed=seed, top_k=top_k,
                             temperature=temperature, eos_id=None)
        assert torch.equal(out, nanogpt_sample(lm, ids, N_NEW, seed, temperature, top_k))


def test_beam_search_past_max_len_equals_beam_search_over_nanogpt_loop():
    lm = tiny_lm()
    ids = torch.randint(4, 50, (2, 6))
    with torch.no_grad():
        expected, _ = beam_search(NanoGPTStepper(lm, ids), N_NEW, None, lm.config.pad_id, beams=3)
    out = quiet_generate(lm, ids, max_new_tokens=N_NEW, beams=3, eos_id=None)
    assert torch.equal(out[:, ids.shape[1] :], expected)


def test_crop_warns_once_naming_the_limit():
    lm = tiny_lm()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        generate(lm, torch.randint(4, 50, (1, 5)), max_new_tokens=N_NEW, eos_id=None)
    assert len(caught) == 1
    message = str(caught[0].message)
    assert "needs 25 positions, over max_len=8" in message and "last 8 tokens" in message
    assert caught[0].filename == __file__  # stacklevel points at the caller
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        generate(lm, torch.randint(4, 50, (1, 5)), max_new_tokens=MAX_LEN - 5, eos_id=None)
    assert caught == []  # within max_len: no crop, no notice


@pytest.mark.parametrize("beams", [1, 3])
def test_left_padded_batch_equals_each_prompt_alone(beams):
    lm = tiny_lm()
    rows = [list(range(10, 22)), [30, 31, 32]]  # longer than max_len, and short
    ids = torch.tensor([rows[0], [0] * 9 + rows[1]])
    mask = torch.tensor([[True] * 12, [False] * 9 + [True] * 3])
    batch = quiet_generate(lm, ids, mask, max_new_tokens=N_NEW, beams=beams, eos_id=None)
    for i, row in enumerate(rows):
        alone = quiet_generate(lm, torch.tensor([row]), max_new_tokens=N_NEW, beams=beams, eos_id=None)
        assert batch[i, -N_NEW:].tolist() == alone[0, -N_NEW:].tolist()
        if beams == 1:
            assert alone.tolist() == nanogpt_greedy(lm, torch.tensor([row]), N_NEW).tolist()


def test_allow_extrapolation_runs_rope_past_max_len_uncropped():
    lm = tiny_lm("rope")
    ids = torch.randint(4, 50, (2, 5))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = generate(lm, ids, max_new_tokens=N_NEW, eos_id=None, allow_extrapolation=True)
    assert caught == []
    assert torch.equal(out, uncached_greedy(lm, ids, N_NEW))
    assert not torch.equal(out, nanogpt_greedy(lm, ids, N_NEW))  # the crop would have changed the tokens


def test_learned_positions_crop_even_with_allow_extrapolation():
    lm = tiny_lm()
    ids = torch.randint(4, 50, (1, 5))
    with pytest.warns(UserWarning, match="cropped to the last 8 tokens"):
        out = generate(lm, ids, max_new_tokens=N_NEW, eos_id=None, allow_extrapolation=True)
    assert torch.equal(out, nanogpt_greedy(lm, ids, N_NEW))


def test_seq2seq_past_max_len_is_still_refused():
    s2s = build_model(tiny(family="seq2seq", position="learned", max_len=MAX_LEN)).eval()
    with pytest.raises(GenerationError, match="max_len=8"):
        generate(s2s, torch.randint(4, 50, (1, 12)), max_new_tokens=4)
    with pytest.raises(GenerationError, match="max_new_tokens=20"):
        generate(s2s, torch.randint(4, 50, (1, 4)), max_new_tokens=N_NEW)


def test_lstm_has_no_positional_limit():
    lstm = build_model(tiny(family="lm", arch="lstm", max_len=MAX_LEN)).eval()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = generate(lstm, torch.randint(4, 50, (1, 12)), max_new_tokens=N_NEW, eos_id=None)
    assert caught == [] and out.shape == (1, 12 + N_NEW)
