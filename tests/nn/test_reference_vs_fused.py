"""The readable attention and the fused kernel compute the same thing (question 22)."""

from __future__ import annotations

import pytest
import torch
from torch.testing import assert_close

from qkv import build_model
from qkv.nn import masks
from qkv.nn.attention import DotScore, fused_attention, reference_attention
from qkv.nn.position import POSITION, PositionTerms, alibi_slopes
from tests.conftest import padded_batch, tiny

B, H, T, D = 3, 4, 9, 8


def mask_kinds():
    _, token_mask = padded_batch()
    pad = masks.padding_mask(token_mask)
    causal = masks.causal_mask(T, T)
    window = masks.window_mask(T, T, 3)
    return {
        "none": None,
        "padding": pad,
        "causal": causal,
        "padding+causal": pad & causal,
        "window": window,
        "causal+window+padding": masks.ensure_nonempty_rows(pad & causal & window),
    }


@pytest.mark.parametrize("kind", list(mask_kinds()))
@pytest.mark.parametrize("with_bias", [False, True])
def test_reference_equals_fused(kind, with_bias):
    q, k, v = (torch.randn(B, H, T, D) for _ in range(3))
    mask = mask_kinds()[kind]
    bias = None
    if with_bias:  # an ALiBi-shaped additive bias
        distance = (torch.arange(T)[None, :] - torch.arange(T)[:, None]).abs().float()
        bias = -alibi_slopes(H)[:, None, None] * distance
    terms = PositionTerms(bias=bias)
    ref, weights = reference_attention(q, k, v, scorer=DotScore(tiny()), scale=D**-0.5, mask=mask, terms=terms)
    fused = fused_attention(q, k, v, scale=D**-0.5, mask=mask, bias=bias)
    assert_close(ref, fused, rtol=1e-5, atol=1e-5)
    assert torch.allclose(weights.sum(-1), torch.ones(B, H, T))
    if mask is not None:
        assert (weights.masked_select(~mask.expand_as(weights)) == 0).all()


@pytest.mark.parametrize("position", [p for p in POSITION if p != "shaw"])  # Shaw is reference-only
@pytest.mark.parametrize("family", ["lm", "encoder", "seq2seq"])
def test_model_fused_path_equals_reference_path(position, family):
    cfg = tiny(family=family, position=position, window=4 if family == "lm" else None)
    model = build_model(cfg).eval()
    ids, mask = padded_batch()
    args = (ids, ids, mask, mask) if family == "seq2seq" else (ids, mask)
    fused = model(*args)
    for m in model.modules():
        if hasattr(m, "capture"):
            m.capture = True
    reference = model(*args)
    assert_close(fused[mask], reference[mask], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("position", ["learned", "rope", "alibi"])
def test_unpadded_causal_fast_path_equals_reference(position):
    """Without padding the decoder hands SDPA ``is_causal=True`` (masks.CAUSAL); same result."""
    model = build_model(tiny(family="lm", position=position)).eval()
    ids = torch.randint(4, 50, (2, 12))
    assert model.decoder.attention_mask(12, 12, None, ids.device) is masks.CAUSAL
    fused = model(ids)
    for m in model.modules():
        if hasattr(m, "capture"):
            m.capture = True
    assert_close(fused, model(ids), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("family", ["lm", "seq2seq"])
def test_right_padded_causal_fast_path_equals_each_row_alone(family):
    """Right padding keeps the ``is_causal`` path; real positions match the unpadded rows."""
    model = build_model(tiny(family=family)).eval()
    lengths = [9, 5]
    ids = torch.randint(4, 50, (2, 9))
    mask = torch.arange(9)[None] < torch.tensor(lengths)[:, None]  # right padding
    ids = ids.masked_fill(~mask, 0)
    assert model.decoder.attention_mask(9, 9, mask, ids.device) is masks.CAUSAL
    left = mask.flip(-1)
    assert model.decoder.attention_mask(9, 9, left, ids.device) is not masks.CAUSAL
    src = torch.randint(4, 50, (2, 7))
    batch = model(src, ids, None, mask) if family == "seq2seq" else model(ids, mask)
    for row, n in enumerate(lengths):
        one = ids[row : row + 1, :n]
        alone = model(src[row : row + 1], one) if family == "seq2seq" else model(one)
        assert_close(batch[row, :n], alone[0], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("family", ["lm", "seq2seq"])
def test_forward_batch_trusts_collator_padding_without_checking(family, monkeypatch):
    """A collator's batch is right-padded by construction, so ``forward_batch`` vouches for it:
    the decoder skips ``is_right_padded`` (a host sync per forward on CUDA) and the logits are
    the ones the checked path gives."""
    from qkv.data import TranslationCollator, pad_batch

    model = build_model(tiny(family=family)).eval()
    rows = [torch.randint(4, 50, (n,)).tolist() for n in (9, 5, 7)]
    if family == "seq2seq":
        batch = TranslationCollator(pad_id=0, bos_id=1, eos_id=2)([(r[:6], r) for r in rows])
        checked = model(batch["src"], batch["tgt_in"], batch["src_mask"], batch["tgt_mask"])
    else:
        ids, mask = pad_batch(rows, 0)
        batch = {"input_ids": ids, "mask": mask}
        checked = model(ids, mask)

    def refuse(_mask):
        raise AssertionError("forward_batch re-checked padding the collator guarantees")

    monkeypatch.setattr(masks, "is_right_padded", refuse)
    assert_close(model.forward_batch(batch), checked)
