"""Attention rollout (Abnar & Zuidema, 2020): how much each input token flows into each position.

A layer's output at i is its input at i (the residual) plus attention over inputs j. Rollout
models that as the matrix ``A = ½·W + ½·I`` per layer — W averaged over heads, then each row
renormalised — and multiplies the layers: R = A_L · … · A_1. Row i of R says how much of position
i's final state is traced back to each input token, counting every path through the layers, not
only the last layer's direct attention (which ignores where that layer's inputs came from).

Attention flow, the paper's other method, is not implemented; rollout and Integrated Gradients
stand in for it. Flow treats the same layered graph as a flow network, with the A matrices as
capacities, and takes the maximum flow from each output position to each input token. That is
one max-flow problem per (position, token) pair on an (L+1)·T-node graph: T² solves for every
sentence, where rollout is L matrix products. What flow was meant for, which tokens an output
depends on, qkv answers with Integrated Gradients (``interpret.attribution``), a gradient method
with a completeness check. Question 34 compares IG with raw attention and rollout by rank correlation
and by a deletion test.
"""

from __future__ import annotations

import torch
from torch import Tensor


def layer_flow(weights: Tensor, residual: float = 0.5) -> Tensor:
    """One layer's ``(B, H, T, T)`` weights → its ``(B, T, T)`` flow matrix (rows sum to 1)."""
    mixed = weights.mean(dim=1)  # (B, T, T): heads averaged
    eye = torch.eye(mixed.shape[-1], dtype=mixed.dtype, device=mixed.device)
    flow = (1 - residual) * mixed + residual * eye
    return flow / flow.sum(dim=-1, keepdim=True)


def rollout(layer_weights: list[Tensor], residual: float = 0.5) -> Tensor:
    """Self-attention weights of layers 0 … L-1, each ``(B, H, T, T)`` → ``(B, T, T)`` rollout."""
    if not layer_weights:
        raise ValueError("rollout needs the weights of at least one layer")
    result = layer_flow(layer_weights[0], residual)
    for weights in layer_weights[1:]:
        result = layer_flow(weights, residual) @ result  # (B, T, T): later layers on the left
    return result


__all__ = ["rollout", "layer_flow"]
