"""Question 22: how does scaled dot-product self-attention work? (self-attention)

Claim under test: attention is exactly softmax(QKᵀ/√d_k)·V with Q = XW_qᵀ, K = XW_kᵀ, V = XW_vᵀ —
so a hand computation of every intermediate on a tiny example gives the same numbers as qkv's
``MultiHeadAttention`` (fused and reference paths) and as PyTorch's
``F.scaled_dot_product_attention``.

Method: three tokens of width d_model = d_k = 4, one head, no biases. Seed 0 is a fixed example
with small round numbers; every further seed draws a random one, so agreement is not a
coincidence of the chosen numbers. The hand computation runs in float64, written out step by
step; qkv's module gets the same weights copied in (W_o = I so its output is the heads' output)
and runs in float32; differences are measured relative to the largest value of the hand result.
Every intermediate goes to metrics.json.

Reproduce: ``qkv ask 22 --size full``.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from ..config import ModelConfig
from ..nn.attention import MultiHeadAttention
from . import base, plots
from .table import Table, fmt

NUMBER = 22
TITLE = "How does scaled dot-product self-attention work?"
KEYWORD = "self-attention"
CLAIMS = [
    "Self-attention is softmax(QKᵀ/√d_k)·V, each row of the softmax a distribution over the keys.",
    "A library's attention (fused kernel or written-out path) computes exactly this formula.",
]
ANSWER = """\
Each token x_i is projected three ways: a query q_i = W_q x_i (what it looks for), a key
k_i = W_k x_i (what it offers to be found by) and a value v_i = W_v x_i (what it passes on).
Token i scores every token j by the dot product q_i·k_j, the scores are divided by √d_k
(question 4), a softmax over j turns row i into weights that are positive and sum to one, and
the output of token i is the weighted average of the values:

    out = softmax(Q Kᵀ / √d_k) V        Q, K, V: (tokens, d_k);  weights: (tokens, tokens)

Multi-head attention runs this per head on d_k-wide slices and mixes the heads with W_o. The
table below follows one example through every step; the same numbers come out of qkv's
module (both paths) and PyTorch's fused kernel, to float32 rounding."""
FULL_SEEDS = 5
SMOKE_SEEDS = 2
TOLERANCE = 1e-6  # relative: float32 rounding is ~1e-7 of the value; a real disagreement is far larger
CHECKS = ("module_fused", "module_reference", "module_weights", "torch_sdpa")

# seed 0: round numbers a reader can follow by hand; rows are tokens, columns features
X0 = [[1.0, 0.0, 1.0, 0.0], [0.0, 2.0, 0.0, 2.0], [1.0, 1.0, 1.0, 1.0]]
WQ0 = [[1.0, 0.0, 1.0, 0.0], [0.0, 1.0, 0.0, 1.0], [1.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 1.0]]
WK0 = [[0.0, 1.0, 0.0, 1.0], [1.0, 0.0, 1.0, 0.0], [1.0, 0.0, 0.0, 1.0], [0.0, 1.0, 1.0, 0.0]]
WV0 = [[0.5, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.5, 0.0], [0.0, 0.0, 0.0, 2.0]]


def example(seed: int) -> dict[str, torch.Tensor]:
    """X ``(3, 4)`` and W_q, W_k, W_v ``(4, 4)`` in float64: the fixed one for seed 0, random after."""
    if seed == 0:
        return {k: torch.tensor(v, dtype=torch.float64) for k, v in
                {"X": X0, "Wq": WQ0, "Wk": WK0, "Wv": WV0}.items()}
    g = torch.Generator().manual_seed(seed)
    return {k: torch.randn(*s, generator=g, dtype=torch.float64) for k, s in
            {"X": (3, 4), "Wq": (4, 4), "Wk": (4, 4), "Wv": (4, 4)}.items()}


def by_hand(ex: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Every intermediate of softmax(QKᵀ/√d_k)V, in float64, one line each."""
    Q, K, V = ex["X"] @ ex["Wq"].T, ex["X"] @ ex["Wk"].T, ex["X"] @ ex["Wv"].T  # (3, 4) each
    scores = Q @ K.T  # (3, 4) @ (4, 3) -> (3, 3): q_i·k_j
    scaled = scores / math.sqrt(Q.shape[-1])
    weights = torch.exp(scaled - scaled.max(-1, keepdim=True).values)  # minus the row max: same softmax, no overflow
    weights = weights / weights.sum(-1, keepdim=True)  # (3, 3), rows sum to 1
    return {**ex, "Q": Q, "K": K, "V": V, "scores": scores, "scaled": scaled, "weights": weights,
            "output": weights @ V}  # (3, 3) @ (3, 4) -> (3, 4)


def qkv_module(ex: dict[str, torch.Tensor]) -> MultiHeadAttention:
    """qkv's attention with the example's weights copied in and W_o = I (float32)."""
    cfg = ModelConfig(family="encoder", vocab_size=8, d_model=4, n_heads=1, d_ff=4, bias=False,
                      dropout_attention=0.0)
    attn = MultiHeadAttention(cfg).eval()
    with torch.no_grad():
        attn.q_proj.weight.copy_(ex["Wq"])
        attn.k_proj.weight.copy_(ex["Wk"])
        attn.v_proj.weight.copy_(ex["Wv"])
        attn.out_proj.weight.copy_(torch.eye(4))
    return attn


def relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    """max |a − b| / max(1, max |b|), with ``a`` (float32, any batch dims) compared in float64."""
    return float((a.double().reshape(b.shape) - b).abs().max() / b.abs().max().clamp_min(1))


def checks(hand: dict[str, torch.Tensor]) -> dict[str, float]:
    """Max |difference| between each implementation and the hand computation, relative to the
    largest hand value (at least 1): float32 rounding grows with the size of the numbers."""
    attn = qkv_module(hand)
    x = hand["X"].float()[None]  # (1, 3, 4)
    with torch.no_grad():
        fused = attn(x)  # (1, 3, 4): fused kernel (no weights asked for)
        attn.capture = True  # the written-out reference path, which also keeps the weights
        reference = attn(x)
        Q, K, V = (hand[k].float()[None, None] for k in ("Q", "K", "V"))  # (1, 1, 3, 4)
        sdpa = F.scaled_dot_product_attention(Q, K, V)
    out = hand["output"]
    return {"module_fused": relative_error(fused, out), "module_reference": relative_error(reference, out),
            "module_weights": relative_error(attn.weights, hand["weights"]), "torch_sdpa": relative_error(sdpa, out)}


def run(size: str, seeds: int, out: Path) -> dict[str, Any]:
    started = time.perf_counter()
    torch.manual_seed(0)
    worked = by_hand(example(0))
    per_seed = [{"seed": s, **checks(by_hand(example(s)))} for s in range(seeds)]
    results = {"example": {k: v.tolist() for k, v in worked.items()}, "checks": per_seed,
               "tolerance": TOLERANCE}
    plot = plot_example(results, out)
    config = {"tokens": 3, "d_model": 4, "d_k": 4, "heads": 1, "bias": False, "module_dtype": "float32",
              "hand_dtype": "float64"}
    metrics = base.record(NUMBER, size, seeds, out, config, results, [plot], started)
    return base.finish(verdict, metrics, out)


def plot_example(results: dict[str, Any], out: Path) -> str:
    fig, (ax_w, ax_d) = plots.figure(2)
    w = results["example"]["weights"]
    ax_w.imshow(w, cmap="Blues", vmin=0, vmax=1)
    for i, row in enumerate(w):
        for j, p in enumerate(row):
            ax_w.text(j, i, f"{p:.3f}", ha="center", va="center", color="black" if p < 0.6 else "white")
    ax_w.set(title="softmax(QKᵀ/√d_k), seed 0", xlabel="key token j", ylabel="query token i",
             xticks=range(3), yticks=range(3))
    floor = 1e-12  # an exact 0 cannot sit on a log axis: drawn at the floor
    for i, name in enumerate(CHECKS):
        values = [max(c[name], floor) for c in results["checks"]]
        plots.seed_points(ax_d, i, values, color=f"C{i}", width=0.3)
    ax_d.axhline(TOLERANCE, color="red", linestyle="--", label=f"tolerance {TOLERANCE:g}")
    ax_d.set_yscale("log")
    ax_d.set(title="agreement with the hand computation", ylabel="max |difference| / max |value| (log)",
             xticks=range(len(CHECKS)), ylim=(floor / 3, 1e-2))
    ax_d.set_xticklabels([c.replace("_", "\n") for c in CHECKS], fontsize=8)
    ax_d.legend(fontsize=8)
    return plots.save(fig, out, "q22_worked_example.png")


def verdict(metrics: dict[str, Any]) -> tuple[str, str]:
    smoke = base.smoke_verdict(metrics)
    if smoke:
        return smoke
    per_seed = metrics["results"]["checks"]
    worst = {name: max(c[name] for c in per_seed) for name in CHECKS}
    name, largest = max(worst.items(), key=lambda kv: kv[1])
    if largest <= TOLERANCE:
        return "confirmed", (f"over {len(per_seed)} examples every implementation equals the hand computation: "
                             f"the largest difference is {largest:.2e} of the largest value ({name}), "
                             f"within {TOLERANCE:g}")
    return "refuted", (f"{name} differs from the hand computation by {largest:.2e} of the largest value "
                       f"(> {TOLERANCE:g}) in at least one of {len(per_seed)} examples")


def tables(metrics: dict[str, Any]) -> list[Table]:
    ex = metrics["results"]["example"]
    show = lambda m: "; ".join("[" + ", ".join(f"{v:.3f}" for v in row) + "]" for row in m)  # noqa: E731
    rows = [[k, f"{len(ex[k])}×{len(ex[k][0])}", show(ex[k])]
            for k in ("X", "Q", "K", "V", "scores", "scaled", "weights", "output")]
    for name in CHECKS:
        worst = max(c[name] for c in metrics["results"]["checks"])
        rows.append([f"{name} vs hand", "max |diff| / max |value|", fmt(worst)])
    return [(["quantity", "shape", "value (seed 0; rows separated by ;)"], rows)]
