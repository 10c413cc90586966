"""Pruning for deployment: feed-forward neurons removed physically, and magnitude pruning beside it.

Structured pruning takes whole units out, so the matrices get smaller and every dense kernel
does less work: attention heads (``qkv.interpret.heads.prune_least_important``, by measured
importance) and feed-forward neurons (here). A neuron n of a feed-forward block is row n of
``up`` (and of ``gate`` in a GLU) and column n of ``down``; removing it removes exactly its
contribution ``down[:, n] · act(up[n] · x)``. Its importance here is that contribution's weight
scale, ‖up[n]‖ · ‖down[:, n]‖ (‖gate[n]‖ too in a GLU), so pruning needs no data.

Magnitude pruning (Han et al., 2015) zeroes the smallest weights of every linear layer instead.
The matrices keep their shape and dense storage, so on dense kernels it saves no time and no
memory: it is here to measure that, beside the structured kind (benchmarks/structured_pruning.py).

A pruned model's ``config.d_ff`` no longer describes its feed-forward blocks: it is for running
in memory (or exporting to CTranslate2, which reads the shapes from the weights), not for
``qkv.checkpoint.save``.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..data import IGNORE_INDEX, TranslationCollator
from ..errors import InputError
from ..interpret.heads import ablation_importance, keep_columns, keep_rows, prune_least_important


def feed_forward_blocks(model: nn.Module) -> dict[tuple[str, int], nn.Module]:
    """Every feed-forward block of a qkv Transformer, by (stack, layer)."""
    found = {}
    for stack_name in ("encoder", "decoder"):
        for i, layer in enumerate(getattr(getattr(model, stack_name, None), "layers", [])):
            ffn = getattr(layer, "ffn", None)
            if ffn is not None and hasattr(ffn, "up") and hasattr(ffn, "down"):
                found[(stack_name, i)] = ffn
    return found


@torch.no_grad()
def neuron_importance(ffn: nn.Module) -> Tensor:
    """``(d_ff,)``: ‖up[n]‖ · ‖down[:, n]‖ (· ‖gate[n]‖ in a GLU) for each neuron n."""
    score = ffn.up.weight.norm(dim=1) * ffn.down.weight.norm(dim=0)
    if getattr(ffn, "gate", None) is not None:
        score = score * ffn.gate.weight.norm(dim=1)
    return score


def prune_neurons(ffn: nn.Module, keep: Tensor) -> None:
    """Cut one feed-forward block down to the neurons ``keep`` (in place)."""
    keep = torch.sort(keep).values
    if len(keep) == 0:
        raise InputError("a feed-forward block must keep at least one neuron")
    ffn.up, ffn.down = keep_rows(ffn.up, keep), keep_columns(ffn.down, keep)
    if getattr(ffn, "gate", None) is not None:
        ffn.gate = keep_rows(ffn.gate, keep)


def prune_ffn_fraction(model: nn.Module, fraction: float) -> int:
    """Remove the ``fraction`` least important neurons of every feed-forward block; returns how many."""
    if not 0 <= fraction < 1:
        raise InputError(f"fraction {fraction} must be in [0, 1): the share of neurons to remove")
    removed = 0
    for ffn in feed_forward_blocks(model).values():
        score = neuron_importance(ffn)
        n_keep = max(1, round(len(score) * (1 - fraction)))
        prune_neurons(ffn, torch.topk(score, n_keep).indices)
        removed += len(score) - n_keep
    return removed


def translation_loss(model: nn.Module, batch: dict) -> Tensor:
    """Mean cross-entropy of a translator on one collated batch (the head-ablation score)."""
    logits = model.forward_batch(batch)  # (B, T, V)
    return F.cross_entropy(logits.flatten(0, 1), batch["labels"].flatten(), ignore_index=IGNORE_INDEX)


def validation_batches(tok, cfg, pairs: list[tuple[str, str]], size: int = 64) -> list[dict]:
    """``pairs`` (source, reference) encoded and collated for ``translation_loss``."""
    sources = tok.encode_batch([s for s, _ in pairs], add_special_tokens=False)
    targets = tok.encode_batch([t for _, t in pairs], add_special_tokens=False)
    encoded = [(s[: cfg.max_len - 1], t[: cfg.max_len - 1]) for s, t in zip(sources, targets)]
    collate = TranslationCollator(cfg.pad_id, cfg.bos_id, cfg.eos_id)
    return [collate(encoded[i : i + size]) for i in range(0, len(encoded), size)]


def heads_pruned(model: nn.Module, batches: list[dict], fraction: float) -> nn.Module:
    """A copy of ``model`` without the ``fraction`` of all its attention heads whose ablation
    raises the loss on ``batches`` least (each module keeps one)."""
    with torch.no_grad():
        importance = ablation_importance(model, batches, translation_loss)
    pruned = copy.deepcopy(model)
    prune_least_important(pruned, importance, int(sum(map(len, importance.values())) * fraction))
    return pruned


@torch.no_grad()
def magnitude_prune(model: nn.Module, sparsity: float) -> float:
    """Zero the ``sparsity`` share of smallest-magnitude weights of each linear layer (in place,
    dense storage kept); returns the share of linear weights now zero."""
    if not 0 <= sparsity < 1:
        raise InputError(f"sparsity {sparsity} must be in [0, 1)")
    zero = total = 0
    for module in model.modules():
        if isinstance(module, nn.Linear):
            w = module.weight
            k = int(w.numel() * sparsity)
            if k:
                threshold = w.abs().flatten().kthvalue(k).values
                w.masked_fill_(w.abs() <= threshold, 0.0)
            zero, total = zero + int((w == 0).sum()), total + w.numel()
    return zero / total


__all__ = ["translation_loss", "validation_batches", "heads_pruned", "feed_forward_blocks", "neuron_importance",
           "prune_neurons", "prune_ffn_fraction", "magnitude_prune"]
