"""Label-smoothed cross-entropy: equal to torch's, and token-weighted under accumulation."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from qkv.train.losses import smoothed_cross_entropy


@pytest.mark.parametrize("smoothing", [0.0, 0.1, 0.3])
def test_matches_torch_cross_entropy_with_label_smoothing(smoothing: float) -> None:
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 7, 11, generator=g)
    labels = torch.randint(0, 11, (3, 7), generator=g)
    labels[0, 4:] = -100
    labels[2, 1] = -100
    total, n = smoothed_cross_entropy(logits, labels, smoothing)
    expected = F.cross_entropy(logits.transpose(1, 2), labels, label_smoothing=smoothing)  # mean over kept
    assert int(n) == int((labels != -100).sum())
    torch.testing.assert_close(total / n, expected)


def test_classification_shapes_and_bf16_logits() -> None:
    g = torch.Generator().manual_seed(1)
    logits, labels = torch.randn(5, 3, generator=g), torch.tensor([0, 2, 1, 1, -100])
    total, n = smoothed_cross_entropy(logits.bfloat16(), labels, 0.1)
    assert total.dtype == torch.float32 and int(n) == 4
    expected = F.cross_entropy(logits.bfloat16().float(), labels, label_smoothing=0.1)
    torch.testing.assert_close(total / n, expected)


def test_sum_and_count_weight_every_token_equally_across_batches() -> None:
    """Two batches with 10 and 2 tokens: sum/count of the pair equals the loss of the union,
    while the mean of the two per-batch means does not."""
    g = torch.Generator().manual_seed(2)
    a_logits, b_logits = torch.randn(10, 5, generator=g), torch.randn(2, 5, generator=g)
    a_labels, b_labels = torch.randint(0, 5, (10,), generator=g), torch.randint(0, 5, (2,), generator=g)
    (sa, na), (sb, nb) = smoothed_cross_entropy(a_logits, a_labels, 0.1), smoothed_cross_entropy(b_logits, b_labels, 0.1)
    union = F.cross_entropy(torch.cat([a_logits, b_logits]), torch.cat([a_labels, b_labels]), label_smoothing=0.1)
    torch.testing.assert_close((sa + sb) / (na + nb), union)
    assert not torch.allclose((sa / na + sb / nb) / 2, union)
