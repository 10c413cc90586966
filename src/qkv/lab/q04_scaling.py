"""Question 4: why scale by √d_k before the softmax; derive it. (缩放)

Claims under test (as commonly answered): q·k has variance d_k, so without the 1/√d_k scale
the scores of wide heads are large, the softmax saturates (one key takes almost all the weight),
its gradient vanishes, and training suffers.

Method, in three parts, every number per seed:
1. Unit-variance inputs: draw q, k with independent N(0, 1) components for d_k = 16 … 512 and
   measure Var(q·k); over 32 keys measure the softmax's max weight, entropy and the Frobenius
   norm of its Jacobian ∂p/∂z (the gradient it passes back), with and without the scale.
2. Trained q/k: train a small LM on the copy task at each d_k (with the scale) and measure
   Var(q·k) on layer 0's real queries and keys, against Σ_i E[q_i²]·E[k_i²] — what the
   derivation predicts if the components were independent.
3. Training: the copy task at d_head 64 and 128 with ``attention_scale="sqrt_dk"`` vs
   ``"none"``, weights initialised so q and k components have about unit variance (the premise
   of the derivation); final held-out loss per seed, and the attention weights of the trained
   models. Both scales of a seed share the initial weights and the batches, so the comparison is
   paired by seed. (qkv's default init, std 0.02, is not part of this experiment.)

Reproduce: ``qkv ask 4 --size full``.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ..nn.attention import MultiHeadAttention
from . import base, plots, probe
from .table import Table, fmt

NUMBER = 4
TITLE = "Why scale by sqrt(d_k) before softmax; derive it"
KEYWORD = "缩放"
CLAIMS = [
    "q·k of independent unit-variance components has variance d_k.",
    "Without the 1/√d_k scale, large d_k saturates the softmax and its gradient vanishes.",
    "Without the scale, training with wide heads is hurt.",
]
ANSWER = """\
Let q and k have d_k independent components with mean 0 and variance 1. Then

    E[q·k]   = Σ_i E[q_i] E[k_i] = 0
    Var(q·k) = Σ_i Var(q_i k_i) = Σ_i E[q_i²] E[k_i²] = d_k

so the scores spread with standard deviation √d_k. Softmax is not scale-free: logits that
differ by several units put nearly all the weight on the largest, and the Jacobian
∂p/∂z = diag(p) − ppᵀ goes to zero as p approaches one-hot, so almost no gradient reaches
Wq and Wk. Dividing by √d_k gives the scores unit variance whatever the head width, which keeps
the softmax in the range where it still spreads weight and passes gradient.

The measurements test each step: Var(q·k) against d_k at unit-variance inputs and in trained
q and k (which are not independent, so the formula need not hold there; the tables say how far
it does), the softmax's max weight, entropy and Jacobian with and without the scale, and models
whose q and k start with unit-variance components trained both ways."""
FULL_SEEDS = 5
SMOKE_SEEDS = 2
N_SD = 2.0  # an effect must exceed 2 standard deviations of the per-seed differences
MIN_LOSS_GAP = 0.05  # nats/token: smaller gaps do not matter even when consistent
SATURATED = 0.9  # mean max softmax weight above this counts as saturated
MIN_SEEDS = 3  # fewer seeds cannot estimate the noise
KEYS = 32  # keys per softmax row in part 1
SIZES = {
    "smoke": {"d_ks": [16, 64], "train_d_heads": [64, 128], "steps": 20, "sweep_steps": 10},
    "full": {"d_ks": [16, 32, 64, 128, 256, 512], "train_d_heads": [64, 128], "steps": 300, "sweep_steps": 150},
}
TASK = {"n": 8, "symbols": 16, "batch": 32, "lr": 3e-3, "d_model": 64, "n_heads": 2, "n_layers": 2}


def softmax_stats(logits: Tensor) -> dict[str, float]:
    """Mean over rows of max weight, entropy (nats) and ‖∂p/∂z‖_F; logits ``(N, S)``."""
    p = torch.softmax(logits.double(), dim=-1)  # (N, S)
    entropy = -(p * torch.log(p.clamp_min(1e-300))).sum(-1)
    s2, s3 = (p**2).sum(-1), (p**3).sum(-1)
    # ‖diag(p) − ppᵀ‖_F² = Σp² − 2Σp³ + (Σp²)², the size of the softmax's Jacobian
    jacobian = (s2 - 2 * s3 + s2**2).clamp_min(0).sqrt()
    return {"max_prob": float(p.max(-1).values.mean()), "entropy": float(entropy.mean()),
            "jacobian_norm": float(jacobian.mean())}


def unit_variance(d_k: int, seed: int) -> dict[str, Any]:
    """Part 1 at one d_k: Var(q·k) and softmax statistics with and without 1/√d_k."""
    g = torch.Generator().manual_seed(seed * 1000 + d_k)
    q, k = torch.randn(4096, d_k, generator=g), torch.randn(4096, d_k, generator=g)  # (N, d_k)
    var = float((q * k).sum(-1).var())
    scores = q[:256] @ k[:KEYS].T  # (256 queries, 32 keys)
    return {"d_k": d_k, "seed": seed, "var_qk": var, "none": softmax_stats(scores),
            "sqrt_dk": softmax_stats(scores / math.sqrt(d_k))}


def first_attention(model: nn.Module) -> MultiHeadAttention:
    return next(m for m in model.modules() if isinstance(m, MultiHeadAttention))


@torch.no_grad()
def trained_qk(model: nn.Module) -> dict[str, float]:
    """Layer 0's real queries and keys on held-out copy inputs: Var(q·k) over causal pairs,
    the independent-components prediction, and the softmax statistics of its actual weights."""
    attn, seen = first_attention(model), {}
    hook = attn.register_forward_pre_hook(lambda mod, args: seen.update(x=args[0]))
    attn.capture = True  # also keep the weights the model really used
    batch = probe.copy_batch(torch.Generator().manual_seed(7), 64, TASK["n"], TASK["symbols"])
    model(batch["input_ids"])
    hook.remove()
    attn.capture = False
    x, H, D = seen["x"], attn.n_heads, attn.d_head
    B, T, _ = x.shape
    q = attn.q_proj(x).view(B, T, H, D).transpose(1, 2)  # (B, H, T, D)
    k = attn.k_proj(x).view(B, T, H, D).transpose(1, 2)
    causal = torch.ones(T, T, dtype=torch.bool).tril()  # the pairs a causal query really scores
    scores = (q @ k.transpose(-2, -1))[..., causal]  # (B, H, pairs)
    predicted = float(((q**2).mean((0, 2)) * (k**2).mean((0, 2))).sum(-1).mean())  # Σ_i E[q_i²]E[k_i²]
    w = attn.weights[..., 1:, :].reshape(-1, T)  # rows with at least two keys: (B·H·(T-1), T)
    p_max = w.max(-1).values.mean()
    entropy = -(w * torch.log(w.clamp_min(1e-30))).sum(-1).mean()
    return {"var_qk": float(scores.var()), "predicted_independent": predicted, "max_prob": float(p_max),
            "entropy": float(entropy)}


def model_config(d_head: int, scale: str):
    # init_std = d_model^-1/2 gives q and k components of about unit variance: the derivation's premise
    return probe.copy_model_config(TASK["symbols"], TASK["n"], d_model=TASK["d_model"], n_heads=TASK["n_heads"],
                                   n_layers=TASK["n_layers"], d_head=d_head, attention_scale=scale,
                                   init_std=TASK["d_model"] ** -0.5)


def train_cell(d_head: int, scale: str, seed: int, steps: int) -> dict[str, Any]:
    """Part 3 at one (d_head, scale, seed): train, then held-out loss and the trained attention."""
    model, curve = probe.train_copy(model_config(d_head, scale), steps=steps, seed=seed, n=TASK["n"],
                                    symbols=TASK["symbols"], batch=TASK["batch"], lr=TASK["lr"])
    held_out = probe.copy_eval(model, n=TASK["n"], symbols=TASK["symbols"])
    return {"d_head": d_head, "scale": scale, "seed": seed, "final_loss": held_out["loss"],
            "accuracy": held_out["accuracy"], "curve": curve[:: max(1, steps // 50)],
            "attention": trained_qk(model)}


def trained_width(d_k: int, seed: int, steps: int) -> dict[str, Any]:
    """Part 2 at one d_k: a briefly trained model (with the scale), its layer-0 q/k statistics."""
    model, _ = probe.train_copy(model_config(d_k, "sqrt_dk"), steps=steps, seed=seed, n=TASK["n"],
                                symbols=TASK["symbols"], batch=TASK["batch"], lr=TASK["lr"])
    return {"d_k": d_k, "seed": seed, **trained_qk(model)}


def run(size: str, seeds: int, out: Path) -> dict[str, Any]:
    started = time.perf_counter()
    s = SIZES[size]
    unit = [unit_variance(d, seed) for seed in range(seeds) for d in s["d_ks"]]
    sweep = [trained_width(d, seed, s["sweep_steps"]) for seed in range(seeds) for d in s["d_ks"]]
    training = [train_cell(d, scale, seed, s["steps"]) for seed in range(seeds)
                for d in s["train_d_heads"] for scale in ("sqrt_dk", "none")]
    results = {"unit_variance": unit, "trained_qk": sweep, "training": training}
    config = {**s, "task": "copy", **TASK, "keys_per_softmax": KEYS, "init_std": TASK["d_model"] ** -0.5,
              "schedule": "cosine, 10% warm-up", "precision": "fp32"}
    names = [plot_softmax(results, out), plot_training(results, s["steps"], out)]
    return base.finish(verdict, base.record(NUMBER, size, seeds, out, config, results, names, started), out)


def by(items: list[dict], key: str) -> dict[Any, list[dict]]:
    out: dict[Any, list[dict]] = {}
    for item in items:
        out.setdefault(item[key], []).append(item)
    return out


def plot_softmax(results: dict[str, Any], out: Path) -> str:
    fig, (ax_v, ax_p, ax_j) = plots.figure(3)
    unit, sweep = by(results["unit_variance"], "d_k"), by(results["trained_qk"], "d_k")
    d_ks = sorted(unit)
    for d in d_ks:
        ax_v.scatter([d] * len(unit[d]), [u["var_qk"] for u in unit[d]], color="C0", s=12)
        ax_v.scatter([d] * len(sweep[d]), [t["var_qk"] for t in sweep[d]], color="C1", s=12, marker="x")
        for scale, color in (("none", "C3"), ("sqrt_dk", "C2")):
            ax_p.scatter([d] * len(unit[d]), [u[scale]["max_prob"] for u in unit[d]], color=color, s=12)
            ax_j.scatter([d] * len(unit[d]), [u[scale]["jacobian_norm"] for u in unit[d]], color=color, s=12)
    ax_v.plot(d_ks, d_ks, "k--", linewidth=1, label="d_k (derivation)")
    ax_v.scatter([], [], color="C0", s=12, label="unit-variance q, k")
    ax_v.scatter([], [], color="C1", s=12, marker="x", label="trained layer-0 q, k")
    ax_v.set(yscale="log", xlabel="d_k (log)", ylabel="Var(q·k) (log)", title="score variance")
    for ax, name in ((ax_p, "mean max softmax weight"), (ax_j, "‖∂p/∂z‖_F (gradient through softmax)")):
        ax.plot([], [], "o", color="C3", label="no scale")
        ax.plot([], [], "o", color="C2", label="1/√d_k")
        ax.set(xlabel="d_k (log)", ylabel=name, title=f"{KEYS} keys, unit-variance q, k")
    ax_p.axhline(SATURATED, color="grey", linestyle=":", label=f"saturated ({SATURATED})")
    for ax in (ax_v, ax_p, ax_j):
        plots.log_ticks(ax, d_ks)
        ax.legend(fontsize=7)
    return plots.save(fig, out, "q04_softmax.png")


def plot_training(results: dict[str, Any], steps: int, out: Path) -> str:
    fig, (ax_l, ax_c) = plots.figure(2)
    cells = by(results["training"], "d_head")
    for i, (d, items) in enumerate(sorted(cells.items())):
        for j, (scale, color) in enumerate((("sqrt_dk", "C2"), ("none", "C3"))):
            runs = [r for r in items if r["scale"] == scale]
            plots.seed_points(ax_l, 2 * i + j, [r["final_loss"] for r in runs], color, width=0.3)
            for r in runs:
                ax_c.plot(r["curve"], color=color, alpha=0.35, linestyle="-" if i == 0 else "--")
    labels = [f"d_head {d}\n{s}" for d in sorted(cells) for s in ("1/√d_k", "none")]
    ax_l.set(xticks=range(len(labels)), ylabel="held-out loss (nats/token)", title="final loss per seed")
    ax_l.set_xticklabels(labels, fontsize=8)
    ax_c.plot([], [], color="C2", label="1/√d_k")
    ax_c.plot([], [], color="C3", label="no scale")
    ax_c.set(xlabel=f"step (×{max(1, steps // 50)})", ylabel="training loss (nats/token)",
             title="training curves (solid: smaller d_head)")
    ax_c.legend(fontsize=8)
    return plots.save(fig, out, "q04_training.png")


def training_effects(metrics: dict[str, Any]) -> dict[int, dict]:
    """Per d_head: paired (by seed) loss without the scale minus with it, and its significance."""
    out = {}
    for d, items in sorted(by(metrics["results"]["training"], "d_head").items()):
        loss = {s: [r["final_loss"] for r in sorted(items, key=lambda r: r["seed"]) if r["scale"] == s]
                for s in ("none", "sqrt_dk")}
        out[d] = {"hurt": base.paired_effect(loss["none"], loss["sqrt_dk"], N_SD, MIN_LOSS_GAP),
                  "helped": base.paired_effect(loss["sqrt_dk"], loss["none"], N_SD, MIN_LOSS_GAP)}
    return out


def saturation(metrics: dict[str, Any]) -> dict[str, float]:
    """At the largest d_k (unit-variance inputs): mean max softmax weight and ‖∂p/∂z‖, both scales."""
    unit = by(metrics["results"]["unit_variance"], "d_k")
    top = unit[max(unit)]
    stat = lambda scale, name: base.mean([u[scale][name] for u in top])  # noqa: E731
    return {"d_k": max(unit), "none": stat("none", "max_prob"), "sqrt_dk": stat("sqrt_dk", "max_prob"),
            "jacobian_none": stat("none", "jacobian_norm"), "jacobian_sqrt_dk": stat("sqrt_dk", "jacobian_norm")}


def verdict(metrics: dict[str, Any]) -> tuple[str, str]:
    undecided = base.undecidable(metrics, MIN_SEEDS)
    if undecided:
        return undecided
    sat, effects = saturation(metrics), training_effects(metrics)
    sat_text = (f"at d_k={sat['d_k']} the mean max softmax weight is {sat['none']:.3f} without the scale "
                f"and {sat['sqrt_dk']:.3f} with it (‖∂p/∂z‖ {sat['jacobian_none']:.3f} vs "
                f"{sat['jacobian_sqrt_dk']:.3f})")
    gaps = "; ".join(f"d_head {d}: loss without − with scale = {e['hurt']['mean']:+.3f} ± {e['hurt']['sd']:.3f} nats"
                     for d, e in effects.items())
    hurt = [d for d, e in effects.items() if e["hurt"]["significant"]]
    if sat["none"] <= SATURATED:
        return "refuted", f"no saturation: {sat_text} (threshold {SATURATED}); {gaps}"
    if len(hurt) == len(effects):
        return "confirmed", f"{sat_text}; training is hurt beyond {N_SD:g} sd of seed noise at every width ({gaps})"
    if not hurt:
        return "refuted", f"{sat_text}, but training is not hurt beyond {N_SD:g} sd of seed noise ({gaps})"
    return "depends", f"{sat_text}; training is hurt at d_head {', '.join(map(str, hurt))} only ({gaps})"


def tables(metrics: dict[str, Any]) -> list[Table]:
    """Per d_k: variance and softmax at unit-variance and trained q/k; per trained cell: loss and attention."""
    r = metrics["results"]
    unit, sweep = by(r["unit_variance"], "d_k"), by(r["trained_qk"], "d_k")
    m = lambda items, f: fmt(base.mean([f(i) for i in items]))  # noqa: E731
    widths = [[str(d), m(unit[d], lambda u: u["var_qk"]), m(sweep[d], lambda t: t["var_qk"]),
               m(sweep[d], lambda t: t["predicted_independent"]), m(unit[d], lambda u: u["none"]["max_prob"]),
               m(unit[d], lambda u: u["sqrt_dk"]["max_prob"]), m(unit[d], lambda u: u["none"]["entropy"]),
               m(unit[d], lambda u: u["sqrt_dk"]["entropy"]), m(unit[d], lambda u: u["none"]["jacobian_norm"]),
               m(unit[d], lambda u: u["sqrt_dk"]["jacobian_norm"])] for d in sorted(unit)]
    first = (["d_k", "Var(q·k), unit", "Var(q·k), trained", "Σ E[q²]E[k²], trained", "max p, none",
              "max p, 1/√d_k", "entropy, none", "entropy, 1/√d_k", "‖J‖, none", "‖J‖, 1/√d_k"], widths)
    cells = []
    effects = training_effects(metrics)
    for d, items in sorted(by(r["training"], "d_head").items()):
        for scale in ("sqrt_dk", "none"):
            runs = [x for x in items if x["scale"] == scale]
            losses = [x["final_loss"] for x in runs]
            gap = effects[d]["hurt"]
            cells.append([str(d), scale, f"{base.mean(losses):.3f} ± {base.std(losses):.3f}",
                          m(runs, lambda x: x["accuracy"]), m(runs, lambda x: x["attention"]["max_prob"]),
                          m(runs, lambda x: x["attention"]["entropy"]),
                          "" if scale == "sqrt_dk" else f"{gap['mean']:+.3f} ± {gap['sd']:.3f}"])
    second = (["d_head", "scale", "held-out loss (mean ± sd)", "accuracy", "layer-0 max p", "layer-0 entropy",
               "loss none − 1/√d_k (paired)"], cells)
    return [first, second]
