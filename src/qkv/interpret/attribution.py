"""Integrated Gradients (Sundararajan et al., 2017) on input embeddings, through ``captum``.

IG attributes a scalar output F to each input coordinate as (x − x')·∫₀¹ ∂F(x' + α(x − x'))/∂x dα,
with x the input's token embeddings and x' a baseline (here: the embedding of the padding token
at every position). Summed over the embedding dimension it gives one number per token. Its
completeness axiom — the attributions sum to F(x) − F(x') — checks the integral: the Riemann sum
with too few steps misses it, so :func:`integrated_gradients` raises the step count until the gap
is within ``tolerance`` and reports the steps it needed.

The model's own embedding lookup is replaced, for the one call that embeds the attributed ids,
by the interpolated embeddings captum passes in — the rest of the model (positions, scaling,
the decoder's lookups of a translator sharing the table) runs unchanged.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator

import torch
from torch import Tensor, nn

from ..errors import InputError

STEPS = (16, 32, 64, 128, 256, 512)


@contextmanager
def embeddings_fed(embed: nn.Embedding, holder: dict) -> Iterator[None]:
    """While active, the first lookup of each forward returns ``holder["embeddings"]`` instead."""
    def hook(module, args, output):
        if holder.get("pending"):
            holder["pending"] = False
            return holder["embeddings"]
        return output
    handle = embed.register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()


def _stack_of(model: nn.Module) -> nn.Module:
    stack = getattr(model, "encoder", None) or getattr(model, "decoder", None)
    if stack is None or not hasattr(stack, "embed"):
        raise InputError(f"{type(model).__name__} has no token embedding to attribute to")
    return stack


def integrated_gradients(model: nn.Module, ids: Tensor, output: Callable[[Tensor], Tensor], *,
                         baseline_id: int | None = None, tolerance: float = 0.01) -> dict:
    """Per-token IG of ``output(embeddings) -> (B,)`` for ids ``(B, S)``.

    ``output`` runs the model on embeddings it is handed (see :func:`embedding_forward`).
    Returns ``{"tokens": (B, S) attributions, "delta": (B,) completeness gap, "steps": n,
    "f_input": (B,), "f_baseline": (B,)}``; the gap is relative to |F(x) − F(x')|.
    """
    from captum.attr import IntegratedGradients

    embed = _stack_of(model).embed
    baseline_id = model.config.pad_id if baseline_id is None else baseline_id
    x = embed(ids).detach()  # (B, S, d)
    x0 = embed(torch.full_like(ids, baseline_id)).detach()
    ig = IntegratedGradients(output)
    with torch.no_grad():
        gap = output(x) - output(x0)  # (B,)
    for steps in STEPS:
        attributions, delta = ig.attribute(x, baselines=x0, n_steps=steps, return_convergence_delta=True)
        relative = delta.abs() / gap.abs().clamp(min=1e-6)
        if float(relative.max()) <= tolerance:
            break
    return {"tokens": attributions.sum(-1).detach(), "delta": relative.detach(), "steps": steps,
            "f_input": (gap + output(x0)).detach(), "f_baseline": output(x0).detach()}


def embedding_forward(model: nn.Module, call: Callable[[], Tensor], pick: Callable[[Tensor], Tensor]):
    """``output(embeddings)`` for IG: ``call()`` runs the model (its first embedding lookup is
    fed ``embeddings``), ``pick(result)`` reduces the result to one number per row ``(B,)``."""
    embed, holder = _stack_of(model).embed, {}

    def output(embeddings: Tensor) -> Tensor:
        holder.update(embeddings=embeddings, pending=True)
        with embeddings_fed(embed, holder):
            return pick(call(embeddings.shape[0]))
    return output


def classifier_ig(model: nn.Module, ids: Tensor, mask: Tensor | None = None, target: Tensor | None = None,
                  **kw) -> dict:
    """IG of a classifier's logit for ``target`` (default: its predicted class) per input token."""
    with torch.no_grad():
        target = model(ids, mask).argmax(-1) if target is None else target  # (B,)

    def call(n: int) -> Tensor:
        reps = n // ids.shape[0]  # captum stacks the interpolation steps along the batch
        return model(ids.repeat(reps, 1), mask.repeat(reps, 1) if mask is not None else None)
    pick = lambda logits: logits.gather(-1, target.repeat(logits.shape[0] // len(target))[:, None])[:, 0]  # noqa: E731
    return {**integrated_gradients(model, ids, embedding_forward(model, call, pick), **kw), "target": target}


def translation_ig(model: nn.Module, src: Tensor, tgt_in: Tensor, position: int, token: Tensor, **kw) -> dict:
    """IG over source tokens of the translator's logit for ``token`` ``(B,)`` at decoder position ``position``."""
    def call(n: int) -> Tensor:
        reps = n // src.shape[0]
        return model(src.repeat(reps, 1), tgt_in.repeat(reps, 1))  # (n, T, V)
    pick = lambda logits: logits[:, position].gather(-1, token.repeat(logits.shape[0] // len(token))[:, None])[:, 0]  # noqa: E731
    return integrated_gradients(model, src, embedding_forward(model, call, pick), **kw)


def rank_correlation(a: Tensor, b: Tensor) -> float:
    """Spearman correlation of two attribution vectors (the randomisation check, Adebayo et al. 2018)."""
    ra, rb = a.flatten().argsort().argsort().float(), b.flatten().argsort().argsort().float()
    ra, rb = ra - ra.mean(), rb - rb.mean()
    return float((ra * rb).sum() / (ra.norm() * rb.norm()).clamp(min=1e-12))


__all__ = ["integrated_gradients", "classifier_ig", "translation_ig", "embedding_forward", "rank_correlation"]
