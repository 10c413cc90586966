"""The ``augment`` hook: None leaves every collator's output bit for bit; TokenDropout corrupts
inputs at about its rate and never the labels."""

from __future__ import annotations

import pytest
import torch

from qkv.data.collate import (ClassificationCollator, MLMCollator, TokenDropout, TranslationCollator,
                              causal_lm_batch, random_lm_batch, sequential_lm_batches)
from qkv.errors import ConfigError

UNK = 1


def same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) and a[k].dtype == b[k].dtype for k in a)


def test_augment_none_is_todays_output_bit_for_bit():
    stream = torch.arange(4, 504)
    chunks = torch.arange(40).reshape(4, 10)
    assert same(causal_lm_batch(chunks), causal_lm_batch(chunks, augment=None))
    a = random_lm_batch(stream, 16, 8, torch.Generator().manual_seed(3))
    b = random_lm_batch(stream, 16, 8, torch.Generator().manual_seed(3), augment=None)
    assert same(a, b)
    for x, y in zip(sequential_lm_batches(stream, 16, 4), sequential_lm_batches(stream, 16, 4, augment=None)):
        assert same(x, y)
    pairs = [([5, 6, 7], [8]), ([9], [10, 11, 12])]
    assert same(TranslationCollator(0, 2, 3)(pairs), TranslationCollator(0, 2, 3, augment=None)(pairs))
    cls = [([4, 5, 6], 1), ([7], 0)]
    assert same(ClassificationCollator(0)(cls), ClassificationCollator(0, augment=None)(cls))
    seqs = [[2, 5, 6, 7, 8, 3], [2, 9, 10, 3]]
    mlm = lambda **kw: MLMCollator(pad_id=0, mask_id=4, vocab_size=30, special_ids=(2, 3), seed=1, **kw)  # noqa: E731
    assert same(mlm()(seqs), mlm(augment=None)(seqs))


@pytest.mark.parametrize("p", [0.1, 0.3])
def test_token_dropout_changes_inputs_at_rate_p_and_never_labels(p):
    stream = torch.randint(4, 260, (200_000,), generator=torch.Generator().manual_seed(0))
    plain = random_lm_batch(stream, 64, 256, torch.Generator().manual_seed(7))
    augment = TokenDropout(p=p, unk_id=UNK, generator=torch.Generator().manual_seed(1))
    out = random_lm_batch(stream, 64, 256, torch.Generator().manual_seed(7), augment=augment)
    assert torch.equal(out["labels"], plain["labels"])
    changed = out["input_ids"] != plain["input_ids"]
    # 16 384 tokens: the rate's sd is sqrt(p(1-p)/n) < 0.004, so 0.015 is about 4 sd
    assert abs(changed.float().mean().item() - p) < 0.015
    assert torch.all(out["input_ids"][changed] == UNK)


def test_token_dropout_random_ids_keeps_special_ids_and_other_keys():
    pairs = [([5, 6, 7, 8] * 50, [9, 10, 11] * 50)] * 8
    augment = TokenDropout(p=0.5, unk_id=UNK, keys=("src", "tgt_in"), keep_ids=(0, 2, 3), random_range=(20, 30))
    plain = TranslationCollator(0, 2, 3)(pairs)
    out = TranslationCollator(0, 2, 3, augment=augment)(pairs)
    for key in ("src_mask", "tgt_mask", "labels"):
        assert torch.equal(out[key], plain[key])
    for key in ("src", "tgt_in"):
        changed = out[key] != plain[key]
        assert 0.4 < changed.float().mean().item() < 0.6
        assert torch.all((out[key][changed] >= 20) & (out[key][changed] < 30))
        special = torch.isin(plain[key], torch.tensor([0, 2, 3]))
        assert torch.equal(out[key][special], plain[key][special])  # bos, eos and padding stay


def test_token_dropout_zero_is_identity_and_bad_rate_is_refused():
    batch = causal_lm_batch(torch.arange(4, 44).reshape(4, 10))
    assert same(TokenDropout(p=0.0, unk_id=UNK)(batch), batch)
    with pytest.raises(ConfigError, match="p must be in"):
        TokenDropout(p=1.5, unk_id=UNK)
