"""Decoding: cache equality, batching, beam vs greedy, length penalty, sampling, bad input."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from qkv import build_model
from qkv.config import ModelConfig
from qkv.generate import GenerationError, Stepper, beam_search, generate, length_penalty, top_k_filter, top_p_filter
from tests.conftest import tiny


def naive_greedy_lm(model, ids, n):
    """Greedy decoding by recomputing the whole sequence at every step (no cache)."""
    for _ in range(n):
        ids = torch.cat([ids, model(ids)[:, -1].argmax(-1, keepdim=True)], dim=1)
    return ids


def naive_greedy_seq2seq(model, src, n):
    tgt = torch.full((src.shape[0], 1), model.config.start_id)
    for _ in range(n):
        tgt = torch.cat([tgt, model(src, tgt)[:, -1].argmax(-1, keepdim=True)], dim=1)
    return tgt[:, 1:]


@pytest.mark.parametrize("position", ["sinusoidal", "learned", "rope", "alibi", "t5_bias", "shaw"])
def test_cached_greedy_equals_uncached(position):
    lm = build_model(tiny(family="lm", position=position)).eval()
    ids = torch.randint(4, 50, (2, 5))
    assert torch.equal(generate(lm, ids, max_new_tokens=12, eos_id=None), naive_greedy_lm(lm, ids, 12))
    s2s = build_model(tiny(family="seq2seq", position=position)).eval()
    assert torch.equal(generate(s2s, ids, max_new_tokens=12, eos_id=None), naive_greedy_seq2seq(s2s, ids, 12))


def left_pad(rows, pad=0):
    T = max(len(r) for r in rows)
    ids = torch.tensor([[pad] * (T - len(r)) + r for r in rows])
    mask = torch.tensor([[False] * (T - len(r)) + [True] * len(r) for r in rows])
    return ids, mask


def right_pad(rows, pad=0):
    T = max(len(r) for r in rows)
    ids = torch.tensor([r + [pad] * (T - len(r)) for r in rows])
    mask = torch.tensor([[True] * len(r) + [False] * (T - len(r)) for r in rows])
    return ids, mask


@pytest.mark.parametrize("beams", [1, 3])
def test_batch_equals_each_item_alone(beams):
    rows = [[5, 6, 7, 8, 9], [10, 11], [12, 13, 14]]
    lm = build_model(tiny(family="lm", position="learned")).eval()
    ids, mask = left_pad(rows)
    batch = generate(lm, ids, mask, max_new_tokens=8, beams=beams, eos_id=None)
    for i, r in enumerate(rows):
        alone = generate(lm, torch.tensor([r]), max_new_tokens=8, beams=beams, eos_id=None)
        assert batch[i, -8:].tolist() == alone[0, -8:].tolist()
    s2s = build_model(tiny(family="seq2seq")).eval()
    ids, mask = right_pad(rows)
    batch = generate(s2s, ids, mask, max_new_tokens=8, beams=beams, eos_id=None)
    for i, r in enumerate(rows):
        assert batch[i].tolist() == generate(s2s, torch.tensor([r]), max_new_tokens=8, beams=beams, eos_id=None)[0].tolist()


def test_beam_one_equals_greedy():
    s2s = build_model(tiny(family="seq2seq")).eval()
    src = torch.randint(4, 50, (3, 6))
    greedy = generate(s2s, src, max_new_tokens=10, eos_id=7)
    beam = generate(s2s, src, max_new_tokens=10, eos_id=7, beams=1)
    stepper = Stepper(s2s, src, None, 10)
    via_beam, _ = beam_search(stepper, 10, 7, 0, beams=1)
    assert torch.equal(greedy, beam)
    assert greedy[:, : via_beam.shape[1]].tolist() == via_beam.tolist()


class TableLM(nn.Module):
    """A decoder-only 'model' whose next-token distribution depends on the last token only."""

    def __init__(self, table: dict[int, dict[int, float]], vocab: int = 6) -> None:
        super().__init__()
        self.config = ModelConfig(family="lm", vocab_size=vocab, d_model=8, n_heads=2, eos_id=5, pad_id=0, bos_id=1)
        logp = torch.full((vocab, vocab), -1e9)
        for prev, nxt in table.items():
            for tok, p in nxt.items():
                logp[prev, tok] = math.log(p)
        self.register_buffer("logp", logp)

    def new_cache(self, max_len):
        class Cache:
            length = 0

            def reorder(self, index, cross=True):
                """The table has no per-row state to reorder."""

        return Cache()

    def forward(self, ids, mask=None, cache=None):
        return self.logp[ids]  # (B, T, V)


# From token 1: greedy takes 2 (p=.6) then must pick among two 0.5 continuations (total .3);
# the better sequence is 3 (p=.4) then EOS (p=1.0), total .4.
MYOPIC = {1: {2: 0.6, 3: 0.4}, 2: {4: 0.5, 5: 0.5}, 3: {5: 1.0}, 4: {5: 1.0}}


def test_beam_finds_what_greedy_misses():
    model = TableLM(MYOPIC).eval()
    start = torch.tensor([[1]])
    greedy = generate(model, start, max_new_tokens=3)[0, 1:].tolist()
    beam = generate(model, start, max_new_tokens=3, beams=2)[0, 1:].tolist()
    assert greedy[0] == 2 and beam[:2] == [3, 5]


def test_length_penalty_scores_follow_gnmt_formula():
    """Returned scores equal log P(Y) / ((5+|Y|)/6)^α, with log P from the table itself."""
    model = TableLM(MYOPIC).eval()
    for alpha in (0.0, 0.6, 2.0):
        _, nbest = beam_search(Stepper(model, torch.tensor([[1]]), None, 4), 4, 5, 0, beams=2, alpha=alpha, n_best=2)
        for score, tokens in nbest[0]:
            prev, logp = 1, 0.0
            for tok in tokens:
                logp += math.log(MYOPIC[prev][tok])
                prev = tok
            assert score == pytest.approx(logp / ((5 + len(tokens)) / 6) ** alpha, rel=1e-5)
    assert length_penalty(1, 0.0) == 1.0


def test_large_alpha_prefers_longer_hypotheses():
    # 1 -> EOS directly (p=.55) or 1 -> 2 -> 4 -> EOS (p=.45 * 1 * 1)
    table = {1: {5: 0.55, 2: 0.45}, 2: {4: 1.0}, 4: {5: 1.0}}
    model = TableLM(table).eval()
    start = torch.tensor([[1]])
    short = generate(model, start, max_new_tokens=5, beams=2, length_alpha=0.0)[0, 1:].tolist()
    long = generate(model, start, max_new_tokens=5, beams=2, length_alpha=3.0)[0, 1:].tolist()
    assert short[0] == 5 and long[:3] == [2, 4, 5]


def test_sampling_is_seeded_and_respects_filters():
    lm = build_model(tiny(family="lm")).eval()
    ids = torch.randint(4, 50, (4, 3))
    a = generate(lm, ids, max_new_tokens=20, do_sample=True, seed=7, top_k=5, eos_id=None)
    b = generate(lm, ids, max_new_tokens=20, do_sample=True, seed=7, top_k=5, eos_id=None)
    c = generate(lm, ids, max_new_tokens=20, do_sample=True, seed=8, top_k=5, eos_id=None)
    assert torch.equal(a, b) and not torch.equal(a, c)
    logits = torch.randn(2, 50)
    allowed_k = logits.topk(5).indices
    probs = logits.softmax(-1)
    order = probs.argsort(-1, descending=True)
    for _ in range(3):
        k_draw = torch.multinomial(top_k_filter(logits, 5).softmax(-1), 500, replacement=True)
        assert all(set(k_draw[r].tolist()) <= set(allowed_k[r].tolist()) for r in range(2))
        p_draw = torch.multinomial(top_p_filter(logits, 0.5).softmax(-1), 500, replacement=True)
        for r in range(2):  # the nucleus: most likely tokens until their mass first reaches 0.5
            mass = probs[r][order[r]].cumsum(0)
            n = int((mass < 0.5).sum()) + 1
            assert set(p_draw[r].tolist()) <= set(order[r][:n].tolist())


@pytest.mark.parametrize(
    "kwargs, words",
    [
        (dict(max_new_tokens=0), ["max_new_tokens=0"]),
        (dict(max_new_tokens=10**9), ["max_new_tokens=1000000000"]),
        (dict(beams=0), ["beams=0"]),
        (dict(max_new_tokens=100), ["max_len=64", "allow_extrapolation"]),
    ],
)
def test_bad_generation_requests(kwargs, words):
    """(A decoder-only LM crops past max_len instead: see test_generate_crop.py.)"""
    s2s = build_model(tiny(family="seq2seq")).eval()
    with pytest.raises(GenerationError) as err:
        generate(s2s, torch.randint(4, 50, (1, 5)), **kwargs)
    for w in words:
        assert w in str(err.value)


def test_empty_input_and_out_of_vocab_ids_are_refused():
    lm = build_model(tiny(family="lm", position="learned")).eval()
    with pytest.raises(GenerationError, match="non-empty"):
        generate(lm, torch.zeros(1, 0, dtype=torch.long))
    with pytest.raises(GenerationError, match="outside the vocabulary"):
        generate(lm, torch.tensor([[3, 99]]))
    with pytest.warns(UserWarning, match="max_len=64: generating with the context cropped"):
        out = generate(lm, torch.randint(4, 50, (1, 60)), max_new_tokens=10, allow_extrapolation=True, eos_id=None)
    assert out.shape == (1, 70)  # learned positions cannot extrapolate, so the context was cropped
    rope = build_model(tiny(family="lm", position="rope")).eval()
    out = generate(rope, torch.randint(4, 50, (1, 60)), max_new_tokens=10, allow_extrapolation=True, eos_id=None)
    assert out.shape == (1, 70)
