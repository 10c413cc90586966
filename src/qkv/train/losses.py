"""Label-smoothed cross-entropy that returns a *sum* and a token count.

Label smoothing (Szegedy et al., 2016; used by Vaswani et al., 2017 §5.4 with ε = 0.1) trains
against the target distribution ``(1 - ε) · onehot(y) + ε / V · uniform`` instead of the one-hot,
so the loss per token is

    (1 - ε) · (-log p_y)  +  ε · mean_c(-log p_c)

It "hurts perplexity, as the model learns to be more unsure, but improves accuracy and BLEU".

Why a sum and a count rather than a mean: with gradient accumulation (or several DDP ranks) a
step sees several batches with different numbers of real tokens. Averaging the per-batch means
would weight a token in a short batch more than one in a long batch; dividing the summed loss
by the step's total token count weights every token the same, exactly as one big batch would.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from ..data.collate import IGNORE_INDEX  # the one definition: the collators mark no-loss labels with it


def smoothed_cross_entropy(
    logits: Tensor, labels: Tensor, smoothing: float = 0.0, ignore_index: int = IGNORE_INDEX
) -> tuple[Tensor, Tensor]:
    """Summed label-smoothed cross-entropy over the labels that are not ``ignore_index``.

    logits: ``(..., V)`` — ``(B, T, V)`` for token tasks, ``(B, C)`` for classification;
    labels: ``(...)`` — ``(B, T)`` or ``(B,)``, class ids or ``ignore_index``.
    Returns ``(loss_sum, n_tokens)``: a float32 scalar and an int64 scalar. The mean is
    ``loss_sum / n_tokens`` (equal to ``F.cross_entropy(..., label_smoothing=smoothing)``).
    """
    V = logits.shape[-1]
    flat_logits = logits.reshape(-1, V)  # (N, V)
    flat_labels = labels.reshape(-1)  # (N,)
    keep = flat_labels != ignore_index  # (N,)
    # log-softmax in float32: half-precision logits lose the small probabilities smoothing needs
    logp = F.log_softmax(flat_logits[keep].float(), dim=-1)  # (n, V)
    nll = -logp.gather(1, flat_labels[keep, None]).squeeze(1)  # (n,)
    uniform = -logp.mean(dim=-1)  # (n,) cross-entropy against the uniform distribution
    loss = (1.0 - smoothing) * nll + smoothing * uniform
    return loss.sum(), keep.sum()


def per_position_loss(logits: Tensor, labels: Tensor, ignore_index: int = IGNORE_INDEX) -> tuple[Tensor, Tensor]:
    """Summed cross-entropy and token count at each position: logits ``(B, T, V)``, labels
    ``(B, T)`` → ``(loss_sum (T,), n_tokens (T,))``.

    Loss by position is how extrapolation is seen (questions 9, 10): a model trained on length
    L and evaluated on 4L sequences shows, position by position, where it stops working. Sum
    over batches, then divide; positions no label reaches have count 0.
    """
    keep = labels != ignore_index  # (B, T)
    logp = F.log_softmax(logits.float(), dim=-1)  # (B, T, V)
    nll = -logp.gather(-1, labels.clamp_min(0)[..., None]).squeeze(-1)  # (B, T)
    return (nll * keep).sum(0), keep.sum(0)


def count_tokens(labels: Tensor, ignore_index: int = IGNORE_INDEX) -> int:
    """How many positions of ``labels`` carry a loss (known before the forward pass)."""
    return int((labels != ignore_index).sum())


__all__ = ["smoothed_cross_entropy", "per_position_loss", "count_tokens", "IGNORE_INDEX"]
