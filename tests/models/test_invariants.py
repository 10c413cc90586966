"""Invariants the questions rely on: padding (5), causality (16), permutation equivariance (23)."""

from __future__ import annotations

import pytest
import torch
from torch.testing import assert_close

from qkv import build_model
from qkv.nn.position import POSITION
from tests.conftest import padded_batch, tiny

POSITIONS = sorted(POSITION)


@pytest.mark.parametrize("position", POSITIONS)
@pytest.mark.parametrize("family", ["encoder", "lm", "seq2seq"])
def test_appending_padding_leaves_real_positions_unchanged(family, position):
    model = build_model(tiny(family=family, position=position)).eval()
    ids = torch.randint(4, 50, (2, 6))
    mask = torch.ones(2, 6, dtype=torch.bool)
    padded = torch.cat([ids, torch.zeros(2, 5, dtype=torch.long)], dim=1)
    pmask = torch.cat([mask, torch.zeros(2, 5, dtype=torch.bool)], dim=1)

    def run(x, m):
        return model(x, x, m, m) if family == "seq2seq" else model(x, m)

    assert_close(run(padded, pmask)[:, :6], run(ids, mask), rtol=1e-5, atol=1e-5)
    if family != "lm":  # a causal LM never looks right, so trailing pads cannot reach it anyway
        unmasked = run(padded, None)[:, :6]
        assert not torch.allclose(unmasked, run(ids, mask), atol=1e-4), "the mask must matter"


def test_batchnorm_statistics_ignore_padding():
    """Padding-aware BatchNorm: trailing pads change neither the outputs nor the running stats."""
    torch.manual_seed(0)
    plain = build_model(tiny(family="encoder", norm="batch")).train()
    torch.manual_seed(0)
    padded_model = build_model(tiny(family="encoder", norm="batch")).train()  # same init
    ids = torch.randint(4, 50, (4, 6))
    padded = torch.cat([ids, torch.zeros(4, 5, dtype=torch.long)], dim=1)
    pmask = (torch.arange(11)[None, :] < 6).expand(4, -1)
    out_plain = plain(ids, torch.ones(4, 6, dtype=torch.bool))
    out_padded = padded_model(padded, pmask)
    assert_close(out_padded[:, :6], out_plain, rtol=1e-5, atol=1e-5)
    stats = lambda m: {n: b for n, b in m.named_buffers() if "running" in n}  # noqa: E731
    assert stats(plain), "the model should have BatchNorm running statistics"
    for name, value in stats(plain).items():
        assert_close(stats(padded_model)[name], value, rtol=1e-5, atol=1e-6, msg=name)


@pytest.mark.parametrize("position", POSITIONS)
def test_decoder_output_at_t_ignores_later_tokens(position):
    model = build_model(tiny(family="lm", position=position)).eval()
    ids = torch.randint(4, 50, (2, 10))
    changed = ids.clone()
    changed[:, 6:] = torch.randint(4, 50, (2, 4))
    a, b = model(ids), model(changed)
    assert_close(a[:, :6], b[:, :6], rtol=1e-5, atol=1e-6)
    assert not torch.allclose(a[:, 6:], b[:, 6:])


def test_seq2seq_decoder_is_causal():
    model = build_model(tiny(family="seq2seq")).eval()
    src, tgt = torch.randint(4, 50, (2, 7)), torch.randint(4, 50, (2, 8))
    changed = tgt.clone()
    changed[:, 5:] = torch.randint(4, 50, (2, 3))
    assert_close(model(src, tgt)[:, :5], model(src, changed)[:, :5], rtol=1e-5, atol=1e-6)


def test_encoder_without_positions_is_permutation_equivariant():
    model = build_model(tiny(family="encoder", position="none")).eval()
    ids = torch.randint(4, 50, (2, 9))
    perm = torch.randperm(9)
    h = model.encoder(ids)
    assert_close(model.encoder(ids[:, perm]), h[:, perm], rtol=1e-5, atol=1e-5)
    with_positions = build_model(tiny(family="encoder", position="sinusoidal")).eval()
    h = with_positions.encoder(ids)
    assert not torch.allclose(with_positions.encoder(ids[:, perm]), h[:, perm], atol=1e-4)


@pytest.mark.parametrize("pooling", ["cls", "mean", "max"])
def test_classifier_logits_ignore_padding(pooling):
    # Each row of a right-padded batch classifies exactly as that row alone: pooling must skip pads
    # (for max, a pad's hidden state could otherwise win the per-feature maximum).
    torch.manual_seed(0)
    model = build_model(tiny(family="encoder", head="classify", pooling=pooling, n_classes=3)).eval()
    ids, mask = padded_batch()
    with torch.no_grad():
        batch = model(ids, mask)
        for row, n in enumerate(mask.sum(1).tolist()):
            alone = model(ids[row:row + 1, :n], mask[row:row + 1, :n])
            torch.testing.assert_close(batch[row:row + 1], alone, atol=1e-5, rtol=1e-5)
