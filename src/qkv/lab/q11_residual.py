"""Question 11: residual connections, and why Transformers need them. (残差)

Claims under test (as commonly answered): residual connections keep gradients flowing, so deep
stacks train; without them deep Transformers do not train. Pre-LN keeps the gradient even
across depth, while post-LN shrinks it toward the input at initialisation (Xiong et al., 2020).

Method: decoder-only LMs on the copy task (``probe``) with residual on/off × post-/pre-LN at
depths 2, 6, 12 and 24, every cell over several seeds.
1. Gradient flow: the L2 norm of each layer's parameter gradient after one backward pass on a
   fixed batch, at initialisation and again after training; summarised as the first/last-layer
   ratio (below 1: smaller toward the input) and the max/min spread over layers. Weights start
   at std d_model^-½, so each sublayer's output has about the scale of its input (the Xavier
   regime of the original Transformer and of Xiong et al.'s analysis); the same gradients are
   also taken at qkv's default init (std 0.02), where every sublayer starts close to zero.
2. Trainability: held-out loss after a fixed number of steps (cosine schedule, 10 % warm-up),
   against the chance loss ln(symbols). Residual on and off of a seed share the batches, so the
   comparison is paired by seed.
3. Why: the mean cosine between the last layer's hidden states at different positions of a
   sequence, at initialisation (near 1: the tokens have collapsed onto one vector).

Reproduce: ``qkv ask 11 --size full``.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import torch
from matplotlib.ticker import MaxNLocator
from torch import Tensor, nn

from ..errors import TrainingError
from ..models import build_model
from ..train import smoothed_cross_entropy
from . import base, plots, probe
from .table import Table, fmt

NUMBER = 11
TITLE = "Residual connections and why"
KEYWORD = "残差"
CLAIMS = [
    "Residual connections keep gradients flowing so deep stacks train; without them deep Transformers do not train.",
    "Pre-LN keeps gradients even across depth; post-LN shrinks them toward the input at init (Xiong et al., 2020).",
]
ANSWER = """\
A residual block computes x_{l+1} = x_l + f_l(x_l) instead of x_{l+1} = f_l(x_l). Its Jacobian
is I + ∂f_l/∂x, so the gradient reaching layer l is

    ∂L/∂x_l = ∂L/∂x_L · Π_{k≥l} (I + ∂f_k/∂x_k)

which always contains the identity term ∂L/∂x_L: the loss reaches every layer directly through
the skip path, however deep the stack, and each layer only has to learn a correction to its
input. Without the skip the product is Π ∂f_k/∂x_k alone, a product of L random Jacobians, and
the input is seen by the top only through every sublayer in turn.

What the measurements add (copy task, d_model 32, 60 steps). At init, with a LayerNorm in every
block, removing the skip does not make the gradient vanish: the norms rescale it, and at 24
layers the first layer still gets about a fifth of the last layer's gradient. What is gone is
the signal: the attention of an untrained layer averages the tokens, and without the skip the
hidden states of a sequence collapse onto one vector within a few layers (cosine between
positions 1.00, against about 0.8 with the skip in pre-LN), so nothing token-specific reaches
the top. Training then drives these stacks where the first layer's gradient is ~1e-11 of the
last's; from 6 layers on they stay at the chance loss. So "the gradient flows" is the symptom
seen during training; the cause at init is the lost token signal, which the skip path keeps.

Where the norm sits matters as much. Post-LN, LN(x + f(x)), divides the skip path by the norm
at every sublayer: at an Xavier-scale init its gradient shrinks toward the input (about 0.4
first/last at 24 layers), and at these settings (lr 5e-3, 6 warm-up steps) post-LN with the
skip trains at 6 layers but not at 12 or 24, its gradient vanishing during training as if it
had no skip. Pre-LN, x + f(LN(x)), leaves the skip path untouched and trains at every depth.
Its gradient is not even across depth either: it is larger at the input (about 2.4× at 24
layers), because each layer divides by a stream that grows with depth — the mismatch NormFormer
(Shleifer et al., 2021) reports. At qkv's default init (std 0.02) every f starts near zero and
post-LN's shrinkage is mild (about 0.8)."""
FULL_SEEDS = 5
SMOKE_SEEDS = 2
MIN_SEEDS = 3  # fewer seeds cannot estimate the noise
N_SD = 2.0  # an effect must exceed 2 standard deviations of the per-seed differences
MIN_LOSS_GAP = 0.1  # nats/token: a smaller loss gap does not matter even when consistent
MIN_GAIN = 0.3  # nats/token below chance: a model that gains less has not learnt the copy
VANISHED = 0.1  # first-layer gradient under a tenth of the last layer's: the gradient vanished
SHRINK = 0.5  # post-LN "shrinks toward the input": first-layer gradient under half the last's
EVEN = 2.0  # "even across depth": every layer's gradient norm within a factor 2 of every other
DEFAULT_INIT = 0.02  # qkv's init_std
WIRINGS = (("post", True), ("pre", True), ("post", False), ("pre", False))  # (norm_placement, residual)
COLORS = {("post", True): "C0", ("pre", True): "C2", ("post", False): "C3", ("pre", False): "C1"}
TASK = {"n": 6, "symbols": 8, "batch": 32, "lr": 5e-3, "d_model": 32, "n_heads": 2, "d_ff": 64}
CHANCE = math.log(TASK["symbols"])  # nats/token of a uniform guess over the symbols
SIZES = {
    "smoke": {"depths": [2, 3], "steps": 3},
    "full": {"depths": [2, 6, 12, 24], "steps": 60},
}


def wiring_name(placement: str, residual: bool) -> str:
    return f"{placement}-LN, {'residual' if residual else 'no residual'}"


def model_config(depth: int, placement: str, residual: bool, init_std: float | None = None, **changes: Any):
    """The copy-task LM at ``depth`` layers; ``init_std`` defaults to d_model^-½ (Xavier scale)."""
    std = init_std if init_std is not None else TASK["d_model"] ** -0.5
    return probe.copy_model_config(TASK["symbols"], TASK["n"], d_model=TASK["d_model"], n_heads=TASK["n_heads"],
                                   d_ff=TASK["d_ff"], n_layers=depth, norm_placement=placement, residual=residual,
                                   init_std=std, **changes)


def fresh_model(cfg, seed: int) -> nn.Module:
    """The weights ``probe.train_copy`` starts from at this seed."""
    torch.manual_seed(seed)
    return build_model(cfg)


def fixed_batch() -> dict[str, Tensor]:
    """One held-out copy batch, the same for every model: input_ids and labels ``(64, 2n)``."""
    return probe.copy_batch(torch.Generator().manual_seed(7), 64, TASK["n"], TASK["symbols"])


def layer_grad_norms(model: nn.Module, batch: dict[str, Tensor]) -> list[float]:
    """‖∂L/∂θ_l‖₂ over all parameters of each layer l (input side first), after one backward."""
    model.zero_grad(set_to_none=True)
    loss_sum, count = smoothed_cross_entropy(model.forward_batch(batch), batch["labels"])
    (loss_sum / count).backward()
    norms = [math.sqrt(sum(float(p.grad.pow(2).sum()) for p in layer.parameters() if p.grad is not None))
             for layer in model.decoder.layers]
    model.zero_grad(set_to_none=True)
    return norms


@torch.no_grad()
def hidden_states(model: nn.Module, batch: dict[str, Tensor]) -> list[Tensor]:
    """The residual stream: the input of layer 0, then the output of every layer, each ``(B, T, d)``."""
    layers, seen = model.decoder.layers, []
    hooks = [layers[0].register_forward_pre_hook(lambda mod, args: seen.append(args[0]))]
    hooks += [layer.register_forward_hook(lambda mod, args, out: seen.append(out)) for layer in layers]
    model.forward_batch(batch)
    for hook in hooks:
        hook.remove()
    return seen


def token_similarity(h: Tensor) -> float:
    """Mean cosine between the hidden states of different positions of one sequence; h ``(B, T, d)``."""
    unit = nn.functional.normalize(h, dim=-1)  # (B, T, d)
    cos = unit @ unit.transpose(1, 2)  # (B, T, T)
    T = h.shape[1]
    return float((cos.sum((1, 2)) - cos.diagonal(dim1=1, dim2=2).sum(-1)).mean() / (T * (T - 1)))


def held_out(model: nn.Module | None) -> dict[str, float | None]:
    """Held-out loss and accuracy; None for a run that stopped on a non-finite loss."""
    if model is None:
        return {"loss": None, "accuracy": None}
    return probe.copy_eval(model, n=TASK["n"], symbols=TASK["symbols"])


def train(cfg, seed: int, steps: int) -> tuple[nn.Module | None, list[float]]:
    """``probe.train_copy`` at the question's task; (None, []) when the loss became non-finite."""
    try:
        return probe.train_copy(cfg, steps=steps, seed=seed, n=TASK["n"], symbols=TASK["symbols"],
                                batch=TASK["batch"], lr=TASK["lr"])
    except TrainingError:
        return None, []


def cell(depth: int, placement: str, residual: bool, seed: int, steps: int) -> dict[str, Any]:
    """One (wiring, depth, seed): gradients and token similarity at init, then training and gradients."""
    cfg, batch = model_config(depth, placement, residual), fixed_batch()
    start = fresh_model(cfg, seed)
    grads_init = layer_grad_norms(start, batch)
    similarity = token_similarity(hidden_states(start, batch)[-1])
    default_init = layer_grad_norms(fresh_model(model_config(depth, placement, residual, DEFAULT_INIT), seed), batch)
    model, curve = train(cfg, seed, steps)
    return {"depth": depth, "placement": placement, "residual": residual, "seed": seed,
            "grads_init": grads_init, "grads_default_init": default_init, "token_similarity_init": similarity,
            "grads_trained": layer_grad_norms(model, batch) if model is not None else None,
            **held_out(model), "curve": curve[:: max(1, steps // 50)]}




def run(size: str, seeds: int, out: Path) -> dict[str, Any]:
    started = time.perf_counter()
    s = SIZES[size]
    with base.one_thread():
        cells = [cell(d, p, r, seed, s["steps"]) for seed in range(seeds) for d in s["depths"] for p, r in WIRINGS]
        results = {"cells": cells}
        config = {**s, "task": "copy", **TASK, "chance_loss": CHANCE, "init_std": TASK["d_model"] ** -0.5,
                  "default_init_std": DEFAULT_INIT, "schedule": "cosine, 10% warm-up", "precision": "fp32"}
        names = [plot_gradients(results, out), plot_training(results, out)]
        return base.finish(verdict, base.record(NUMBER, size, seeds, out, config, results, names, started), out)


# -- summaries shared by the plots, the tables and the verdict ----------------------------------


def select(cells: list[dict], placement: str, residual: bool, depth: int) -> list[dict]:
    """The cells of one wiring and depth, in seed order."""
    return sorted((c for c in cells if (c["placement"], c["residual"], c["depth"]) == (placement, residual, depth)),
                  key=lambda c: c["seed"])


def ratio(norms: list[float]) -> float:
    """First-layer over last-layer gradient norm (below 1: smaller toward the input)."""
    return norms[0] / norms[-1] if norms[-1] > 0 else math.inf


def spread(norms: list[float]) -> float:
    """Largest over smallest layer gradient norm."""
    return max(norms) / min(norms) if min(norms) > 0 else math.inf


def geo_mean(xs: list[float]) -> float:
    """Geometric mean: ratios after training span orders of magnitude; nan for no values."""
    return math.exp(base.mean([math.log(min(max(x, 1e-300), 1e300)) for x in xs])) if xs else math.nan


def loss_text(runs: list[dict]) -> str:
    """Held-out loss mean ± sd over the runs that finished, and how many stopped on a non-finite loss."""
    losses = [c["loss"] for c in runs if c["loss"] is not None]
    text = f"{base.mean(losses):.3f} ± {base.std(losses):.3f}" if losses else "—"
    diverged = len(runs) - len(losses)
    return text + (f" ({diverged} of {len(runs)} diverged)" if diverged else "")


def loss_or_chance(c: dict) -> float:
    """A run that stopped on a non-finite loss learnt nothing: count it at the chance loss."""
    return c["loss"] if c["loss"] is not None else CHANCE


def gradient_summary(cells: list[dict], depth: int, key: str = "grads_init") -> dict[tuple, dict[str, Any]]:
    """Per wiring at ``depth``: geometric-mean first/last ratio and spread, and the log ratio per seed."""
    out = {}
    for placement, residual in WIRINGS:
        runs = [c[key] for c in select(cells, placement, residual, depth) if c[key]]
        ratios = [ratio(g) for g in runs]
        out[(placement, residual)] = {"ratio": geo_mean(ratios), "spread": geo_mean([spread(g) for g in runs]),
                                      "log_ratios": [math.log(min(max(r, 1e-300), 1e300)) for r in ratios]}
    return out


def residual_effects(cells: list[dict], depth: int) -> dict[str, dict[str, Any]]:
    """Per placement at ``depth``: losses with and without residual, and the paired gap (without − with)."""
    out = {}
    for placement in ("post", "pre"):
        on = [loss_or_chance(c) for c in select(cells, placement, True, depth)]
        off = [loss_or_chance(c) for c in select(cells, placement, False, depth)]
        gap = base.paired_effect(off, on, N_SD, MIN_LOSS_GAP)
        out[placement] = {"on": base.mean(on), "off": base.mean(off), "gap": gap,
                          "on_trains": CHANCE - base.mean(on) > MIN_GAIN,
                          "off_trains": CHANCE - base.mean(off) > MIN_GAIN}
        item = out[placement]
        item["needed"] = gap["significant"] and item["on_trains"] and not item["off_trains"]
    return out


# -- plots ----------------------------------------------------------------------------------------


def plot_gradients(results: dict[str, Any], out: Path) -> str:
    fig, (ax_init, ax_trained, ax_ratio) = plots.figure(3)
    cells = results["cells"]
    depths = sorted({c["depth"] for c in cells})
    deepest = depths[-1]
    for wiring in WIRINGS:
        color = COLORS[wiring]
        for c in select(cells, *wiring, deepest):
            layers = range(1, deepest + 1)
            ax_init.plot(layers, c["grads_init"], color=color, alpha=0.5, marker=".")
            if c["grads_trained"]:
                ax_trained.plot(layers, c["grads_trained"], color=color, alpha=0.5, marker=".")
        for d in depths:
            ratios = [ratio(c["grads_init"]) for c in select(cells, *wiring, d)]
            ax_ratio.scatter([d] * len(ratios), ratios, color=color, s=12, alpha=0.7)
        ax_ratio.plot([], [], "o", color=color, label=wiring_name(*wiring))
    for ax, when in ((ax_init, "at init"), (ax_trained, "after training")):
        ax.set(yscale="log", xlabel="layer (1 = input side)", ylabel="‖∂L/∂θ_layer‖₂ (log)",
               title=f"{deepest} layers: gradient per layer {when}")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax_ratio.axhline(1.0, color="grey", linestyle=":")
    ax_ratio.axhline(SHRINK, color="grey", linestyle="--", linewidth=0.8, label=f"shrink threshold {SHRINK}")
    ax_ratio.set(yscale="log", xlabel="depth (layers, log)", ylabel="first / last layer gradient (log)",
                 title="gradient ratio at init, per seed")
    plots.log_ticks(ax_ratio, depths)
    ax_ratio.legend(fontsize=7)
    return plots.save(fig, out, "q11_gradients.png")


def plot_training(results: dict[str, Any], out: Path) -> str:
    fig, (ax_loss, ax_default) = plots.figure(2)
    cells = results["cells"]
    depths = sorted({c["depth"] for c in cells})
    for i, wiring in enumerate(WIRINGS):
        color, offset = COLORS[wiring], (i - 1.5) * 0.15
        for j, d in enumerate(depths):
            runs = select(cells, *wiring, d)
            plots.seed_points(ax_loss, j + offset, [loss_or_chance(c) for c in runs], color, width=0.1,
                              label=wiring_name(*wiring) if j == 0 else None)
            ratios = [ratio(c["grads_default_init"]) for c in runs]
            ax_default.scatter([d] * len(ratios), ratios, color=color, s=12, alpha=0.7,
                               label=wiring_name(*wiring) if j == 0 else None)
    ax_loss.axhline(CHANCE, color="grey", linestyle=":", label=f"chance ln {TASK['symbols']}")
    ax_loss.set(xticks=range(len(depths)), xlabel="depth (layers)", ylabel="held-out loss (nats/token)",
                title="copy task after training, per seed")
    ax_loss.set_xticklabels([str(d) for d in depths])
    ax_default.axhline(1.0, color="grey", linestyle=":")
    ax_default.set(yscale="log", xlabel="depth (layers, log)", ylabel="first / last layer gradient (log)",
                   title=f"gradient ratio at init std {DEFAULT_INIT}")
    plots.log_ticks(ax_default, depths)
    for ax in (ax_loss, ax_default):
        ax.legend(fontsize=7)
    return plots.save(fig, out, "q11_training.png")


# -- verdict and tables ---------------------------------------------------------------------------


def training_part(cells: list[dict], depth: int) -> tuple[bool, str]:
    """Does the stack at ``depth`` train with the residual and not without it, in both placements?"""
    effects = residual_effects(cells, depth)
    needed = [f"{p}-LN" for p, e in effects.items() if e["needed"]]
    losses = "; ".join(f"{p}-LN {e['on']:.2f} with residual vs {e['off']:.2f} without (paired gap "
                       f"{e['gap']['mean']:+.2f} ± {e['gap']['sd']:.2f})" for p, e in effects.items())
    return len(needed) == len(effects), (f"at {depth} layers the residual is needed to train in "
                                         f"{' and '.join(needed) or 'neither placement'} (held-out loss, chance "
                                         f"{CHANCE:.2f} nats: {losses})")


def flow_part(cells: list[dict], depth: int, key: str, when: str) -> tuple[bool, str]:
    """Does the first layer's gradient vanish without the residual, and only without it, in both placements?"""
    g = {w: v["ratio"] for w, v in gradient_summary(cells, depth, key).items()}
    where = [f"{p}-LN" for p in ("post", "pre") if g[(p, False)] < VANISHED <= g[(p, True)]]
    return len(where) == 2, (f"{when} the first-layer gradient vanishes (first/last < {VANISHED:g}) without the "
                             f"residual and not with it in {' and '.join(where) or 'neither placement'} "
                             f"({g[('post', True)]:.3g} post-LN and {g[('pre', True)]:.3g} pre-LN with residual, "
                             f"{g[('post', False)]:.3g} and {g[('pre', False)]:.3g} without)")


def collapse_text(cells: list[dict], depth: int) -> str:
    similarity = {r: base.mean([c["token_similarity_init"] for p in ("post", "pre")
                                for c in select(cells, p, r, depth)]) for r in (True, False)}
    return (f"token cosine at the top at init {similarity[True]:.2f} with residual, "
            f"{similarity[False]:.2f} without")


def xiong_part(cells: list[dict], depth: int) -> tuple[bool, str]:
    """At init: post-LN's gradient shrinks toward the input, pre-LN's is even, beyond seed noise."""
    g = gradient_summary(cells, depth)
    post, pre = g[("post", True)], g[("pre", True)]
    gap = base.paired_effect(pre["log_ratios"], post["log_ratios"], N_SD, math.log(2))
    holds = post["ratio"] < SHRINK and pre["spread"] <= EVEN and gap["significant"]
    return holds, (f"at init post-LN's first/last-layer gradient is {post['ratio']:.3g} (shrinks below {SHRINK:g}) "
                   f"and pre-LN's {pre['ratio']:.3g} with max/min spread {pre['spread']:.2f} (even within {EVEN:g}×; "
                   f"log-ratio gap pre − post {gap['mean']:+.2f} ± {gap['sd']:.2f})")


def verdict(metrics: dict[str, Any]) -> tuple[str, str]:
    undecided = base.undecidable(metrics, MIN_SEEDS)
    if undecided:
        return undecided
    cells = metrics["results"]["cells"]
    deepest = max(c["depth"] for c in cells)
    trains = training_part(cells, deepest)
    if not any(e["gap"]["significant"] for e in residual_effects(cells, deepest).values()):
        return "refuted", f"removing the residual does not raise the loss beyond {N_SD:g} sd of seed noise: {trains[1]}"
    init_holds, init_text = flow_part(cells, deepest, "grads_init", "at init")
    parts = [trains, (init_holds, f"{init_text}; {collapse_text(cells, deepest)}"),
             flow_part(cells, deepest, "grads_trained", "after training"), xiong_part(cells, deepest)]
    if all(holds for holds, _ in parts):
        return "confirmed", "; ".join(text for _, text in parts)
    held = "; ".join(text for holds, text in parts if holds) or "no part"
    return "depends", (f"holds in full: {held}. Holds in part or not at all: "
                       + "; ".join(text for holds, text in parts if not holds))


def tables(metrics: dict[str, Any]) -> list[Table]:
    """Per wiring and depth: gradient ratios and spread (geometric means), token cosine, loss, accuracy."""
    cells = metrics["results"]["cells"]
    rows = []
    for d in sorted({c["depth"] for c in cells}):
        grads = {key: gradient_summary(cells, d, key) for key in ("grads_init", "grads_trained", "grads_default_init")}
        for wiring in WIRINGS:
            runs = select(cells, *wiring, d)
            accuracy = [c["accuracy"] for c in runs if c["accuracy"] is not None]
            rows.append([str(d), wiring_name(*wiring), fmt(grads["grads_init"][wiring]["ratio"]),
                         fmt(grads["grads_init"][wiring]["spread"]), fmt(grads["grads_trained"][wiring]["ratio"]),
                         fmt(grads["grads_default_init"][wiring]["ratio"]),
                         fmt(base.mean([c["token_similarity_init"] for c in runs])),
                         loss_text(runs), fmt(base.mean(accuracy)) if accuracy else "diverged"])
    first = (["depth", "wiring", "first/last grad, init", "max/min grad, init", "first/last grad, trained",
              f"first/last grad, init std {DEFAULT_INIT}", "token cosine, init", "held-out loss (mean ± sd)",
              "accuracy"], rows)
    gaps = []
    for d in sorted({c["depth"] for c in cells}):
        for placement, e in residual_effects(cells, d).items():
            gaps.append([str(d), f"{placement}-LN", f"{e['gap']['mean']:+.3f} ± {e['gap']['sd']:.3f}",
                         "yes" if e["on_trains"] else "no", "yes" if e["off_trains"] else "no"])
    second = (["depth", "placement", "loss without − with residual (paired)", "trains with residual",
               "trains without"], gaps)
    return [first, second]
