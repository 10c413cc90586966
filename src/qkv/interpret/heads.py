"""Which attention heads matter, and removing the ones that do not (Michel et al., 2019).

Two importance scores per (module, head), both from a loss over the given batches:
* ablation: the loss with that head's output set to zero, minus the loss with every head;
* gradient: |∂loss/∂m_h| for a head mask m = 1 (Michel et al.'s I_h), from one backward pass
  per batch instead of one forward per head.
``prune_heads`` then removes heads *physically*: the rows of W_q, W_k, W_v and the columns of
W_o that belong to them are cut out, so the layer does less arithmetic — unlike a zero mask,
which computes the head and throws it away.
"""

from __future__ import annotations

from typing import Callable, Iterable

import torch
from torch import Tensor, nn

from ..errors import InputError
from .capture import Key, attention_modules

LossFn = Callable[[nn.Module, dict], Tensor]  # (model, batch) -> mean loss


def _total(model: nn.Module, batches: list[dict], loss_fn: LossFn) -> float:
    with torch.no_grad():
        return sum(float(loss_fn(model, b)) for b in batches) / len(batches)


def ablation_importance(model: nn.Module, batches: Iterable[dict], loss_fn: LossFn) -> dict[Key, list[float]]:
    """Per attention module, the loss increase when each of its heads alone is switched off."""
    batches = list(batches)
    base = _total(model, batches, loss_fn)
    out = {}
    for key, module in attention_modules(model).items():
        deltas = []
        for h in range(module.n_heads):
            module.head_mask = torch.ones(module.n_heads)
            module.head_mask[h] = 0.0
            deltas.append(_total(model, batches, loss_fn) - base)
        module.head_mask = None
        out[key] = deltas
    return out


def gradient_importance(model: nn.Module, batches: Iterable[dict], loss_fn: LossFn) -> dict[Key, list[float]]:
    """Per attention module, |∂loss/∂(head mask)| summed over batches (Michel et al., 2019, eq. 3)."""
    modules = attention_modules(model)
    for module in modules.values():
        module.head_mask = torch.ones(module.n_heads, requires_grad=True)
    scores = {key: torch.zeros(m.n_heads) for key, m in modules.items()}
    try:
        for batch in batches:
            loss = loss_fn(model, batch)
            grads = torch.autograd.grad(loss, [m.head_mask for m in modules.values()])
            for key, g in zip(modules, grads):
                scores[key] += g.abs()
    finally:
        for module in modules.values():
            module.head_mask = None
    return {key: s.tolist() for key, s in scores.items()}


def keep_rows(linear: nn.Linear, rows: Tensor) -> nn.Linear:
    """A smaller copy of ``linear`` with only the outputs ``rows`` (weight rows, bias entries)."""
    new = nn.Linear(linear.in_features, len(rows), bias=linear.bias is not None)
    new.weight.data = linear.weight.data[rows].clone()
    if linear.bias is not None:
        new.bias.data = linear.bias.data[rows].clone()
    return new


def keep_columns(linear: nn.Linear, columns: Tensor) -> nn.Linear:
    """A smaller copy of ``linear`` reading only the inputs ``columns`` (the bias is kept whole)."""
    new = nn.Linear(len(columns), linear.out_features, bias=linear.bias is not None)
    new.weight.data = linear.weight.data[:, columns].clone()
    if linear.bias is not None:
        new.bias.data = linear.bias.data.clone()
    return new


def prune_heads(module: nn.Module, keep: list[int]) -> None:
    """Cut one attention module down to the heads ``keep`` (in place; q/k/v rows and out columns)."""
    if module.n_kv != module.n_heads:
        raise InputError("pruning heads of grouped-query attention is not supported (heads share keys/values)")
    if not keep or any(not 0 <= h < module.n_heads for h in keep):
        raise InputError(f"keep {keep} must name at least one of heads 0 … {module.n_heads - 1}")
    D = module.d_head
    rows = torch.cat([torch.arange(h * D, (h + 1) * D) for h in sorted(keep)])  # (len(keep)·D,)
    module.q_proj = keep_rows(module.q_proj, rows)
    if module.k_proj is not None:
        module.k_proj = keep_rows(module.k_proj, rows)
    module.v_proj = keep_rows(module.v_proj, rows)
    module.out_proj = keep_columns(module.out_proj, rows)
    module.n_heads = module.n_kv = len(keep)
    module._stacked = None


def prune_least_important(model: nn.Module, importance: dict[Key, list[float]], k: int) -> list[tuple[Key, int]]:
    """Remove the ``k`` heads with the smallest importance overall (every module keeps one); returns them."""
    ranked = sorted((score, key, h) for key, scores in importance.items() for h, score in enumerate(scores))
    removed: dict[Key, list[int]] = {}
    for _, key, h in ranked:
        if sum(len(v) for v in removed.values()) == k:
            break
        if len(removed.get(key, [])) < len(importance[key]) - 1:
            removed.setdefault(key, []).append(h)
    modules = attention_modules(model)
    for key, heads in removed.items():
        prune_heads(modules[key], [h for h in range(len(importance[key])) if h not in heads])
    return [(key, h) for key, heads in removed.items() for h in heads]


__all__ = ["ablation_importance", "gradient_importance", "prune_heads", "prune_least_important"]
