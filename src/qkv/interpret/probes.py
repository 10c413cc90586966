"""Linear probes on hidden states, with a control task (Hewitt & Liang, 2019).

A probe is a linear classifier trained on frozen hidden states ``(N, d)`` to predict a property
of each token. High probe accuracy alone does not show the model encodes the property: a
linear map on d-dimensional vectors can memorise a lot. The control task gives every token
*type* a random label (fixed per type, same number of classes as the real property) — a
property with no linguistic meaning that only memorising the token identity can solve.
Selectivity = accuracy on the property − accuracy on the control; a probe is informative when
selectivity is high, not when accuracy is.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def train_probe(features: Tensor, labels: Tensor, n_classes: int, *, steps: int = 200, lr: float = 0.05,
                weight_decay: float = 1e-3, seed: int = 0) -> torch.nn.Linear:
    """A softmax-regression probe ``(d → n_classes)`` fit by full-batch Adam on ``(N, d)`` features."""
    torch.manual_seed(seed)
    mean, std = features.mean(0), features.std(0).clamp(min=1e-6)
    probe = torch.nn.Linear(features.shape[1], n_classes)
    opt = torch.optim.Adam(probe.parameters(), lr=lr, weight_decay=weight_decay)
    x = (features - mean) / std  # (N, d) standardised: one lr fits every layer
    for _ in range(steps):
        opt.zero_grad()
        F.cross_entropy(probe(x), labels).backward()
        opt.step()
    probe.register_buffer("mean", mean)
    probe.register_buffer("std", std)
    return probe


@torch.no_grad()
def accuracy(probe: torch.nn.Linear, features: Tensor, labels: Tensor) -> float:
    logits = probe((features - probe.mean) / probe.std)  # (N, C)
    return float((logits.argmax(-1) == labels).float().mean())


def control_labels(token_ids: Tensor, n_classes: int, seed: int = 0) -> Tensor:
    """Hewitt & Liang's control task: one random class per token type, the same wherever it occurs."""
    g = torch.Generator().manual_seed(seed)
    table = torch.randint(0, n_classes, (int(token_ids.max()) + 1,), generator=g)
    return table[token_ids]


def probe_with_control(train: tuple[Tensor, Tensor, Tensor], test: tuple[Tensor, Tensor, Tensor], n_classes: int,
                       **kw) -> dict[str, float]:
    """(features, property labels, token ids) for train and test → accuracy, control accuracy, selectivity."""
    (x, y, ids), (xt, yt, idst) = train, test
    real = accuracy(train_probe(x, y, n_classes, **kw), xt, yt)
    control = accuracy(train_probe(x, control_labels(ids, n_classes), n_classes, **kw), xt, control_labels(idst, n_classes))
    return {"accuracy": real, "control_accuracy": control, "selectivity": real - control}


__all__ = ["train_probe", "accuracy", "control_labels", "probe_with_control"]
