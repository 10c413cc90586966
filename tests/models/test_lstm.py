"""The LSTM baselines go through the same generation code as the Transformers."""

from __future__ import annotations

import pytest
import torch

from qkv import build_model
from tests.conftest import tiny


@pytest.mark.parametrize("family", ["seq2seq", "lm"])
def test_lstm_beam_search_reorders_its_state(family):
    """Beam search reorders every cache with ``cross=``; the recurrent state must accept it."""
    model = build_model(tiny(family=family, arch="lstm")).eval()
    ids = torch.randint(4, 50, (2, 5))
    greedy = model.generate(ids, max_new_tokens=4)
    beam = model.generate(ids, max_new_tokens=4, beams=3)
    assert beam.shape == greedy.shape
    assert ((0 <= beam) & (beam < 50)).all()
