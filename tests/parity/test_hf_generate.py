"""Decoding parity: qkv greedy and beam search give the tokens ``transformers.generate`` gives,
on weights imported from tiny random Hugging Face GPT-2 and Marian models."""

from __future__ import annotations

import pytest
import torch

transformers = pytest.importorskip("transformers")

from qkv.generate import generate  # noqa: E402
from qkv.interop import from_hf  # noqa: E402
from tests.parity.test_hf_interop import tiny_gpt2, tiny_marian  # noqa: E402

# Each test compares whole token sequences, EOS handling and padding included.

N_NEW = 12


def _chaotic(model, scale=0.5):
    """Large random hidden weights, so a random GPT-2 does not just repeat its last token."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 2 and "wte" not in name and "wpe" not in name:
                p.add_(torch.randn_like(p) * scale)
    return model


def _briefly_trained_marian(eos=5, steps=60):
    """A tiny Marian taught a little of "reverse the source", so its beams and EOS are real.

    (A random Marian with tied, scaled embeddings mostly copies its previous token forever.)
    """
    hf = tiny_marian(eos_token_id=eos, forced_eos_token_id=None, dropout=0.0, attention_dropout=0.0,
                     activation_dropout=0.0).train()
    opt = torch.optim.Adam(hf.parameters(), lr=3e-3)
    for _ in range(steps):
        src = torch.randint(10, 40, (8, 6))
        tgt = torch.cat([src.flip(1), torch.full((8, 1), eos)], dim=1)
        loss = hf(input_ids=src, labels=tgt).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    return hf.eval()


def hf_kwargs(beams):
    return dict(max_new_tokens=N_NEW, num_beams=beams, do_sample=False, length_penalty=0.0,
                early_stopping=False, min_length=0, no_repeat_ngram_size=0, repetition_penalty=1.0)


@pytest.mark.parametrize("beams", [1, 4])
def test_gpt2_generate_matches_transformers(beams):
    torch.manual_seed(1)
    hf = _chaotic(tiny_gpt2(eos_token_id=7, bos_token_id=7, pad_token_id=1))
    ours = from_hf(hf)
    prompts = torch.randint(10, 90, (3, 5))
    expected = hf.generate(prompts, attention_mask=torch.ones_like(prompts), pad_token_id=1, eos_token_id=7,
                           **hf_kwargs(beams))
    got = generate(ours, prompts, max_new_tokens=N_NEW, beams=beams, eos_id=7)
    assert got.tolist() == expected[:, : got.shape[1]].tolist()
    assert (expected[:, got.shape[1]:] == 1).all()  # pad id 1: HF beam search pads with EOS when pad is 0


@pytest.fixture(scope="module")
def marian():
    torch.manual_seed(2)
    return _briefly_trained_marian()


@pytest.mark.parametrize("beams", [1, 4])
def test_marian_generate_matches_transformers(beams, marian):
    hf = marian
    ours = from_hf(hf)
    src = torch.randint(10, 40, (4, 6))
    src[1, 4:] = 95  # right padding (pad id 95)
    mask = src != 95
    expected = hf.generate(src, attention_mask=mask.long(), pad_token_id=95, eos_token_id=5,
                           decoder_start_token_id=95, **hf_kwargs(beams))
    got = generate(ours, src, mask, max_new_tokens=N_NEW, beams=beams, eos_id=5)
    expected = expected[:, 1:]  # drop the decoder start token
    assert got.tolist() == expected[:, : got.shape[1]].tolist()
    assert (expected[:, got.shape[1]:] == 95).all()
    assert len(set(map(tuple, got.tolist()))) > 1, "degenerate outputs would prove little"
