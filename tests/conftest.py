"""Shared test helpers: tiny configs and a fixed seed per test."""

from __future__ import annotations

import pytest
import torch

from qkv import ModelConfig


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def tiny(**changes) -> ModelConfig:
    """A tiny config with dropout off, so two forwards of the same input are comparable."""
    base = dict(
        vocab_size=50, d_model=32, n_layers=2, n_heads=4, d_ff=64, max_len=64,
        dropout_embed=0.0, dropout_residual=0.0, dropout_attention=0.0, dropout_activation=0.0,
    )
    base.update(changes)
    return ModelConfig(**base)


def padded_batch(B: int = 3, T: int = 9, vocab: int = 50, lengths=(9, 6, 3)):
    """Random ids (B, T) with right padding (pad id 0) and the bool mask (True = real)."""
    ids = torch.randint(4, vocab, (B, T))
    mask = torch.arange(T)[None, :] < torch.tensor(lengths)[:, None]
    return ids.masked_fill(~mask, 0), mask
