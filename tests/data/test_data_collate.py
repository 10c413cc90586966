"""Collators: exact small cases by hand, and MLM corruption statistics on a large batch."""

from __future__ import annotations

import pytest
import torch

from qkv.data import (
    ClassificationCollator,
    MLMCollator,
    TranslationCollator,
    causal_lm_batch,
    random_lm_batch,
    sequential_lm_batches,
)

PAD, BOS, EOS = 0, 1, 2
T = torch.tensor


def test_translation_adds_bos_eos_and_shifts():
    out = TranslationCollator(pad_id=PAD, bos_id=BOS, eos_id=EOS)([([5, 6, 7], [8]), ([9], [10, 11, 12])])
    assert set(out) == {"src", "src_mask", "tgt_in", "tgt_mask", "labels"}
    assert torch.equal(out["src"], T([[5, 6, 7, 2], [9, 2, 0, 0]]))
    assert torch.equal(out["src_mask"], T([[True, True, True, True], [True, True, False, False]]))
    assert torch.equal(out["tgt_in"], T([[1, 8, 0, 0], [1, 10, 11, 12]]))
    assert torch.equal(out["tgt_mask"], T([[True, True, False, False], [True, True, True, True]]))
    assert torch.equal(out["labels"], T([[8, 2, -100, -100], [10, 11, 12, 2]]))
    assert out["src"].dtype == out["labels"].dtype == torch.long
    assert out["src_mask"].dtype == out["tgt_mask"].dtype == torch.bool


def test_translation_labels_are_tgt_in_shifted_left():
    collate = TranslationCollator(pad_id=PAD, bos_id=BOS, eos_id=EOS)
    g = torch.Generator().manual_seed(0)
    batch = [(torch.randint(3, 50, (int(n),), generator=g).tolist(),
              torch.randint(3, 50, (int(m),), generator=g).tolist())
             for n, m in torch.randint(0, 12, (32, 2), generator=g)]
    out = collate(batch)
    real = out["tgt_mask"]
    assert torch.equal(out["labels"][:, :-1][real[:, 1:]], out["tgt_in"][:, 1:][real[:, 1:]])
    assert torch.equal(out["labels"] != -100, real)  # one label per decoder input position
    assert torch.equal(out["src_mask"].sum(1), T([len(s) + 1 for s, _ in batch]))


def test_classification():
    out = ClassificationCollator(pad_id=PAD)([([4, 5, 6], 1), ([7], 0)])
    assert torch.equal(out["input_ids"], T([[4, 5, 6], [7, 0, 0]]))
    assert torch.equal(out["mask"], T([[True, True, True], [True, False, False]]))
    assert torch.equal(out["labels"], T([1, 0]))


def test_causal_lm_batch_shifts_by_one():
    out = causal_lm_batch(T([[10, 11, 12, 13], [20, 21, 22, 23]]))
    assert torch.equal(out["input_ids"], T([[10, 11, 12], [20, 21, 22]]))
    assert torch.equal(out["labels"], T([[11, 12, 13], [21, 22, 23]]))


def test_random_lm_batch_windows_are_real_slices_and_reproducible():
    stream = torch.arange(1000) * 3  # labels must be the next stream element: input + 3
    out = random_lm_batch(stream, context=16, batch_size=64, generator=torch.Generator().manual_seed(5))
    assert out["input_ids"].shape == out["labels"].shape == (64, 16)
    assert torch.equal(out["labels"], out["input_ids"] + 3)
    assert torch.equal(out["input_ids"][:, 1:], out["input_ids"][:, :-1] + 3)  # contiguous
    again = random_lm_batch(stream, context=16, batch_size=64, generator=torch.Generator().manual_seed(5))
    assert torch.equal(out["input_ids"], again["input_ids"])
    g = torch.Generator().manual_seed(0)
    starts = torch.cat([random_lm_batch(stream, 16, 512, g)["input_ids"][:, 0] for _ in range(20)]) // 3
    assert starts.min() == 0 and starts.max() == 1000 - 17  # every offset reachable, none past the end


def test_sequential_lm_batches_cover_the_stream_once():
    stream = torch.arange(1, 302)
    batches = list(sequential_lm_batches(stream, context=10, batch_size=8))
    assert [b["input_ids"].shape[0] for b in batches] == [8, 8, 8, 6]
    labels = torch.cat([b["labels"].reshape(-1) for b in batches])
    assert torch.equal(labels, stream[1:])


# ---- MLM ----------------------------------------------------------------------------------
MASK, CLS, SEP, VOCAB = 3, 4, 5, 1000
SPECIALS = {PAD, BOS, EOS, MASK, CLS, SEP}


def _mlm(**kwargs) -> MLMCollator:
    return MLMCollator(pad_id=PAD, mask_id=MASK, vocab_size=VOCAB, special_ids=[BOS, EOS, CLS, SEP], **kwargs)


def _sequences(n: int, seed: int = 0) -> list[list[int]]:
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(5, 200, (n,), generator=g)
    return [[CLS, *torch.randint(6, VOCAB, (int(m),), generator=g).tolist(), SEP] for m in lengths]


def test_mlm_statistics_follow_bert():
    batch = _sequences(512)
    out = _mlm(seed=1)(batch)
    ids = torch.full_like(out["input_ids"], PAD)
    for row, seq in enumerate(batch):
        ids[row, : len(seq)] = T(seq)
    candidates = out["mask"] & ~torch.isin(ids, T(sorted(SPECIALS)))
    selected = out["labels"] != -100
    assert not (selected & ~candidates).any()  # never a special token or padding
    assert torch.equal(out["labels"][selected], ids[selected])
    assert torch.equal(out["input_ids"][~selected], ids[~selected])  # the rest untouched
    rate = selected.sum() / candidates.sum()
    assert abs(rate - 0.15) < 0.01
    n = selected.sum()
    masked = (out["input_ids"][selected] == MASK).sum() / n
    unchanged = (out["input_ids"][selected] == ids[selected]).sum() / n
    randomised = 1 - masked - unchanged
    assert abs(masked - 0.8) < 0.025
    assert abs(unchanged - 0.1) < 0.02
    assert abs(randomised - 0.1) < 0.02
    replaced = selected & (out["input_ids"] != MASK) & (out["input_ids"] != ids)
    assert not torch.isin(out["input_ids"][replaced], T(sorted(SPECIALS))).any()
    assert out["input_ids"][replaced].unique().numel() > 100  # spread over the vocabulary


def test_mlm_at_least_one_target_per_sequence():
    batch = [[CLS, 10 + i, SEP] for i in range(200)] + [[CLS, SEP]]
    out = _mlm(select_prob=0.01, seed=0)(batch)
    selected = out["labels"] != -100
    assert torch.equal(selected[:200].sum(1), torch.ones(200, dtype=torch.long))
    assert not selected[200].any()  # nothing selectable: nothing selected


def test_mlm_all_mask_mode():
    out = _mlm(mask_prob=1.0, random_prob=0.0, seed=2)(_sequences(64))
    selected = out["labels"] != -100
    assert (out["input_ids"][selected] == MASK).all()


def test_mlm_is_seeded():
    batch = _sequences(16)
    a, b, c = _mlm(seed=3)(batch), _mlm(seed=3)(batch), _mlm(seed=4)(batch)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["labels"], c["labels"])


@pytest.mark.parametrize("kwargs", [{"select_prob": 1.5}, {"mask_prob": 0.95, "random_prob": 0.1}])
def test_mlm_rejects_bad_probabilities(kwargs):
    with pytest.raises(ValueError):
        _mlm(**kwargs)
