"""Question 3: why dot-product rather than additive attention; cost and quality? (点乘/加法)

Claims under test (Vaswani et al., 2017, §3.2.1): dot-product attention is "much faster and more
space-efficient in practice, since it can be implemented using highly optimized matrix
multiplication code"; additive attention outperforms dot-product attention without scaling
for larger d_k; with the 1/√d_k scale, dot-product attention matches additive attention.

Method, in two parts:
1. Cost: one qkv ``MultiHeadAttention`` layer, forward + backward, for sequence lengths
   32 … 512 and d_k 32 and 128, along three paths: additive scores (``attention="additive"``),
   dot-product scores on the same written-out path (scores materialised, softmax, one matmul
   with V; ``capture`` switches the module to it) and dot-product on qkv's default fused
   ``scaled_dot_product_attention`` path. Each seed is one timing round (all paths of a cell
   timed back to back, the best of a few repetitions, one CPU thread), so ratios are paired by
   round. Arithmetic is counted analytically (both scores are O(T·S·d_k)); memory is measured
   by watching every tensor the forward + backward allocates (peak live bytes, and the largest
   single tensor), next to the analytic size of the largest attention tensor: (B, H, T, S) for
   the dot product, (B, H, T, S, d_k) for the additive score.
2. Quality: the copy task (``lab/probe.py``) with one head of width d_k = 128, additive vs
   unscaled dot vs scaled dot, 5 seeds, held-out loss. Weights start so that q and k have
   about unit-variance components — the premise of the paper's variance argument (question 4).
   All variants of a seed share the batches, so differences are paired by seed.

The cost claim holds when, at the longest sequence and for every d_k, the additive layer takes
at least 2× the time of the written-out dot product (beyond round-to-round noise) and 2× its
peak memory; the quality claims are judged on the paired held-out losses. When only some
claims hold the verdict is "depends" and names them.

Reproduce: ``qkv ask 3 --size full``.
"""

from __future__ import annotations

import math
import time
import weakref
from pathlib import Path
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from ..config import ModelConfig
from ..nn.attention import MultiHeadAttention
from . import base, plots, probe
from .table import Table, fmt

NUMBER = 3
TITLE = "Why dot-product rather than additive attention; cost and quality?"
KEYWORD = "点乘/加法"
CLAIMS = [
    "Dot-product attention is much faster and more space-efficient than additive attention in practice "
    "(optimised matrix multiplication).",
    "Additive attention outperforms unscaled dot-product attention for large d_k.",
    "With the 1/√d_k scale, dot-product attention matches additive attention.",
]
ANSWER = """\
Arithmetic. Per head and per (query, key) pair the dot score q·k costs d_k multiply-adds
(2·d_k FLOPs). The additive score wᵀ tanh(q + k) (Bahdanau et al., 2015, with q = W_a s,
k = U_a h) costs an addition, a tanh and a multiply-add per component (4·d_k, a tanh counted
as one). With the p·v product both share, attention costs 4·d_k against 6·d_k per pair: the
same O(T·S·d_k), a ratio of 1.5 (table: "attention FLOPs / dot_reference"; less for the whole
layer, whose projections are the same for both). Counting operations, neither is cheaper by
more than a small constant.

Layout. All T·S dot products are one matrix product Q Kᵀ, (T×d_k)(d_k×S): it reads
(T + S)·d_k numbers and does T·S·d_k work, so a BLAS kernel reuses every value it loads about
d_k times and runs near the processor's peak; the only T×S object is the score matrix, and a
fused kernel (FlashAttention, PyTorch's SDPA) does not even store that. The additive score has
no such factorisation — the tanh sits between q and k — so q_i + k_j is formed for every pair:
a (B, H, T, S, d_k) tensor, d_k times larger than the score matrix, streamed through memory
by elementwise kernels (bandwidth-bound, each number touched once per op), and kept for the
backward pass (tanh' = 1 − tanh²). So the time ratio is far above the FLOP ratio, and the
memory ratio is about d_k. That is what "much faster and more space-efficient in practice"
means: same asymptotic arithmetic, different constant and a d_k-times-larger intermediate.

Quality. With unit-variance components q·k has variance d_k (question 4), so without the
scale wide heads start with a saturated softmax whose gradient vanishes. The additive score
cannot blow up that way: |wᵀ tanh(·)| ≤ ‖w‖₁ whatever the inputs, so it needs no scale. This
is why additive attention beat unscaled dot products at large d_k (Britz et al., 2017), and why
1/√d_k, which restores unit-variance scores, lets the dot product match it. The measurements
test all three statements; the verdict names those that hold."""
FULL_SEEDS = 5
SMOKE_SEEDS = 2
N_SD = 2.0  # an effect must exceed 2 standard deviations of the per-seed differences
MIN_SPEEDUP = 2.0  # "much faster": additive at least 2× the dot-product time at the longest sequence
MIN_MEMORY_RATIO = 2.0  # "more space-efficient": additive peak at least 2× the dot-product peak
MIN_LOSS_GAP = 0.05  # nats/token: smaller loss gaps do not matter even when consistent
MIN_SEEDS = 3  # fewer seeds cannot estimate the noise
PATHS = ("dot_fused", "dot_reference", "additive")
QUALITY = (("additive", "sqrt_dk"), ("dot", "none"), ("dot", "sqrt_dk"))  # (attention, attention_scale)
SIZES = {
    "smoke": {"lengths": [16, 32], "d_ks": [8, 16], "repeats": 1, "train_d_head": 16, "steps": 10},
    "full": {"lengths": [32, 64, 128, 256, 512], "d_ks": [32, 128], "repeats": 2, "train_d_head": 128,
             "steps": 300},
}
COST = {"batch": 1, "n_heads": 2, "d_model": 64}
TASK = {"n": 8, "symbols": 16, "batch": 32, "lr": 3e-3, "d_model": 64, "n_heads": 1, "n_layers": 2}
FLOAT_BYTES = 4


# -- part 1: cost --------------------------------------------------------------------------------


class AllocationTracker(TorchDispatchMode):
    """Bytes of every storage the ops inside ``with`` create: live now, peak, largest tensor.

    A storage is counted when an op first returns it and released when it is freed (a weakref
    on the storage). Storages of the inputs an op received (views, in-place results) and tensors
    made outside the block (parameters, the input batch) are not counted.
    """

    def __init__(self) -> None:
        super().__init__()
        self.live: dict[int, int] = {}
        self.now = self.peak = self.largest = 0

    def _release(self, key: int) -> None:
        self.now -= self.live.pop(key, 0)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        inputs = {t.untyped_storage().data_ptr() for t in tree_leaves((args, kwargs)) if isinstance(t, torch.Tensor)}
        for t in tree_leaves(out):
            if not isinstance(t, torch.Tensor):
                continue
            storage = t.untyped_storage()
            key = storage.data_ptr()
            if key == 0 or key in inputs or key in self.live:
                continue
            self.largest = max(self.largest, storage.nbytes())
            self.live[key] = storage.nbytes()
            self.now += storage.nbytes()
            self.peak = max(self.peak, self.now)
            weakref.finalize(storage, self._release, key)
        return out




def attention_layer(path: str, d_k: int, length: int) -> MultiHeadAttention:
    cfg = ModelConfig(family="lm", vocab_size=16, d_model=COST["d_model"], n_heads=COST["n_heads"], d_head=d_k,
                      d_ff=4 * COST["d_model"], max_len=length, attention="additive" if path == "additive" else "dot")
    torch.manual_seed(0)
    layer = MultiHeadAttention(cfg)
    layer.capture = path == "dot_reference"  # the written-out path: (B, H, T, S) scores, softmax, one matmul
    return layer


def forward_backward(layer: MultiHeadAttention, x: torch.Tensor) -> None:
    layer(x).sum().backward()  # (B, T, d_model) -> (B, T, d_model); no mask: every pair is scored


def analytic(path: str, length: int, d_k: int) -> dict[str, float]:
    """Forward FLOPs of the layer and of its attention alone (a tanh counted as one), and the
    bytes of the largest attention tensor."""
    B, H, d = COST["batch"], COST["n_heads"], COST["d_model"]
    pairs = B * H * length * length
    projections = 8 * B * length * d * H * d_k  # q, k, v and output: 4 matmuls of (B·T, d) × (d, H·d_k)
    # per pair, dot: q·k and p·v, 2·d_k each; additive: q + k, tanh, w-weighted sum (4·d_k), then p·v
    attention = {"dot_fused": 4, "dot_reference": 4, "additive": 6}[path] * d_k * pairs
    largest = {"dot_fused": B * H * length * d_k,  # the kernel works in tiles: no T×S tensor at all
               "dot_reference": pairs, "additive": pairs * d_k}[path]
    return {"forward_flops": projections + attention, "attention_flops": attention,
            "largest_bytes": largest * FLOAT_BYTES}


def measure_memory(layer: MultiHeadAttention, x: torch.Tensor) -> dict[str, int]:
    with AllocationTracker() as tracker:
        forward_backward(layer, x)
    return {"peak_bytes": tracker.peak, "largest_tensor_bytes": tracker.largest}


def best_time(layer: MultiHeadAttention, x: torch.Tensor, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        forward_backward(layer, x)
        times.append(time.perf_counter() - start)
    return min(times)  # the least-disturbed repetition: other load only ever adds time


def cost_cells(s: dict[str, Any], rounds: int) -> list[dict[str, Any]]:
    """One record per (length, d_k, path): analytic counts, measured memory, time per round."""
    cells = []
    for length in s["lengths"]:
        for d_k in s["d_ks"]:
            x = torch.randn(COST["batch"], length, COST["d_model"], generator=torch.Generator().manual_seed(length),
                            requires_grad=True)  # (B, T, d_model)
            for path in PATHS:
                layer = attention_layer(path, d_k, length)
                memory = measure_memory(layer, x)  # also the warm-up step
                cells.append({"length": length, "d_k": d_k, "path": path, **analytic(path, length, d_k), **memory,
                              "layer": layer, "x": x, "times_s": []})
    with base.one_thread():
        for _ in range(rounds):  # a round times every cell once, so slow spells hit all paths alike
            for c in cells:
                c["times_s"].append(best_time(c["layer"], c["x"], s["repeats"]))
    for c in cells:
        del c["layer"], c["x"]
    return cells


# -- part 2: quality -----------------------------------------------------------------------------


def variant_name(attention: str, scale: str) -> str:
    return "additive" if attention == "additive" else f"dot_{scale}"


def train_variant(attention: str, scale: str, d_head: int, seed: int, steps: int) -> dict[str, Any]:
    """The copy task at one (score, scale, seed): held-out loss and accuracy, the training curve."""
    # init_std = d_model^-1/2 gives q and k components of about unit variance: the premise of §3.2.1
    cfg = probe.copy_model_config(TASK["symbols"], TASK["n"], d_model=TASK["d_model"], n_heads=TASK["n_heads"],
                                  n_layers=TASK["n_layers"], d_head=d_head, attention=attention,
                                  attention_scale=scale, init_std=TASK["d_model"] ** -0.5)
    model, curve = probe.train_copy(cfg, steps=steps, seed=seed, n=TASK["n"], symbols=TASK["symbols"],
                                    batch=TASK["batch"], lr=TASK["lr"])
    held_out = probe.copy_eval(model, n=TASK["n"], symbols=TASK["symbols"])
    return {"variant": variant_name(attention, scale), "d_head": d_head, "seed": seed, "final_loss": held_out["loss"],
            "accuracy": held_out["accuracy"], "curve": curve[:: max(1, steps // 50)]}


def run(size: str, seeds: int, out: Path) -> dict[str, Any]:
    started = time.perf_counter()
    s = SIZES[size]
    results = {"cost": cost_cells(s, seeds),
               "quality": [train_variant(a, scale, s["train_d_head"], seed, s["steps"])
                           for seed in range(seeds) for a, scale in QUALITY]}
    config = {**s, "cost": {**COST, "threads": 1, "mask": "none", "timing": "best of repeats, per round"},
              "task": "copy", **TASK, "init_std": TASK["d_model"] ** -0.5, "schedule": "cosine, 10% warm-up",
              "precision": "fp32", "flops": "analytic, forward, tanh counted as one"}
    names = [plot_cost(results, out), plot_quality(results, s["steps"], out)]
    return base.finish(verdict, base.record(NUMBER, size, seeds, out, config, results, names, started), out)


# -- reading the numbers -------------------------------------------------------------------------


def cell(metrics: dict[str, Any], length: int, d_k: int, path: str) -> dict[str, Any]:
    return next(c for c in metrics["results"]["cost"]
                if c["length"] == length and c["d_k"] == d_k and c["path"] == path)


def grid(metrics: dict[str, Any]) -> tuple[list[int], list[int]]:
    cost = metrics["results"]["cost"]
    return sorted({c["length"] for c in cost}), sorted({c["d_k"] for c in cost})


def cost_claim(metrics: dict[str, Any]) -> dict[int, dict[str, Any]]:
    """Per d_k at the longest sequence: additive vs written-out dot time (paired by round) and peak."""
    lengths, d_ks = grid(metrics)
    out = {}
    for d_k in d_ks:
        add, dot = cell(metrics, lengths[-1], d_k, "additive"), cell(metrics, lengths[-1], d_k, "dot_reference")
        log_ratio = base.paired_effect([math.log(t) for t in add["times_s"]], [math.log(t) for t in dot["times_s"]],
                                       N_SD, math.log(MIN_SPEEDUP))
        out[d_k] = {"time_ratio": math.exp(log_ratio["mean"]), "speed": status(log_ratio, math.log(MIN_SPEEDUP)),
                    "memory_ratio": add["peak_bytes"] / dot["peak_bytes"],
                    "flop_ratio": add["forward_flops"] / dot["forward_flops"]}
        out[d_k]["memory"] = "holds" if out[d_k]["memory_ratio"] >= MIN_MEMORY_RATIO else "fails"
    return out


def status(effect: dict[str, Any], min_effect: float) -> str:
    """holds: beyond noise and large enough; noisy: large on average but within noise; fails: small."""
    if effect["significant"]:
        return "holds"
    return "noisy" if effect["mean"] > min_effect else "fails"


def losses(metrics: dict[str, Any], variant: str) -> list[float]:
    runs = sorted((r for r in metrics["results"]["quality"] if r["variant"] == variant), key=lambda r: r["seed"])
    return [r["final_loss"] for r in runs]


def quality_claims(metrics: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Paired by seed: unscaled dot minus additive (claim 2), scaled dot minus additive (claim 3)."""
    additive = losses(metrics, "additive")
    unscaled = base.paired_effect(losses(metrics, "dot_none"), additive, N_SD, MIN_LOSS_GAP)
    scaled = base.paired_effect(losses(metrics, "dot_sqrt_dk"), additive, N_SD, MIN_LOSS_GAP)
    worse = status(scaled, MIN_LOSS_GAP)  # scaled dot worse than additive beyond noise: claim 3 fails
    return {"unscaled": {**unscaled, "status": status(unscaled, MIN_LOSS_GAP)},
            "scaled": {**scaled, "status": {"holds": "fails", "noisy": "noisy", "fails": "holds"}[worse]}}


def combined(statuses: list[str]) -> str:
    """A claim tested in several cells: fails if any cell fails, else noisy if any is, else holds."""
    return next((s for s in ("fails", "noisy") if s in statuses), "holds")


def verdict(metrics: dict[str, Any]) -> tuple[str, str]:
    undecided = base.undecidable(metrics, MIN_SEEDS)
    if undecided:
        return undecided
    cost, quality = cost_claim(metrics), quality_claims(metrics)
    d_head = metrics["results"]["quality"][0]["d_head"]
    claims = {"dot is much faster and smaller": combined([c[k] for c in cost.values() for k in ("speed", "memory")]),
              "additive beats unscaled dot": quality["unscaled"]["status"],
              "scaled dot matches additive": quality["scaled"]["status"]}
    cost_text = "; ".join(f"d_k {d}: additive / dot time {c['time_ratio']:.1f}× for {c['flop_ratio']:.2f}× the "
                          f"FLOPs, peak memory {c['memory_ratio']:.1f}×" for d, c in cost.items())
    quality_text = (f"at d_k {d_head} held-out loss unscaled dot − additive = {quality['unscaled']['mean']:+.3f} ± "
                    f"{quality['unscaled']['sd']:.3f} nats, scaled dot − additive = {quality['scaled']['mean']:+.3f} "
                    f"± {quality['scaled']['sd']:.3f} nats")
    numbers = f"at T={grid(metrics)[0][-1]}, {cost_text}; {quality_text}"
    named = lambda wanted: ", ".join(name for name, s in claims.items() if s == wanted)  # noqa: E731
    if "noisy" in claims.values():
        return "inconclusive", f"within seed noise ({N_SD:g} sd): {named('noisy')}; {numbers}"
    if all(s == "holds" for s in claims.values()):
        return "confirmed", f"all three claims hold: {numbers}"
    if all(s == "fails" for s in claims.values()):
        return "refuted", f"none of the claims holds: {numbers}"
    return "depends", f"holds: {named('holds')}; does not hold: {named('fails')}; {numbers}"


# -- tables and figures --------------------------------------------------------------------------


def cost_row(c: dict[str, Any], dot: dict[str, Any]) -> list[str]:
    """One cell of part 1 against the written-out dot product at the same length and d_k."""
    t = c["times_s"]
    # forward + backward is about three forward passes of arithmetic (the backward's two matmuls per one)
    throughput = 3 * c["forward_flops"] / base.mean(t) / 1e9
    return [str(c["length"]), str(c["d_k"]), c["path"], f"{1e3 * base.mean(t):.3g} ± {1e3 * base.std(t):.2g}",
            fmt(base.mean(t) / base.mean(dot["times_s"])), fmt(c["attention_flops"] / dot["attention_flops"]),
            fmt(c["forward_flops"] / dot["forward_flops"]), fmt(throughput), fmt(c["peak_bytes"] / 1e6),
            fmt(c["largest_tensor_bytes"] / 1e6), fmt(c["largest_bytes"] / 1e6)]


def tables(metrics: dict[str, Any]) -> list[Table]:
    """Per (length, d_k, path): time, FLOPs, throughput, memory; per quality variant: held-out loss."""
    lengths, d_ks = grid(metrics)
    rows = [cost_row(cell(metrics, n, d_k, path), cell(metrics, n, d_k, "dot_reference"))
            for n in lengths for d_k in d_ks for path in PATHS]
    cost = (["T = S", "d_k", "path", "fwd+bwd ms (mean ± sd)", "time / dot_reference",
             "attention FLOPs / dot_reference", "layer FLOPs / dot_reference",
             "GFLOP/s (3× fwd FLOPs)", "peak MB", "largest tensor MB", "largest attention tensor MB (analytic)"],
            rows)
    additive = losses(metrics, "additive")
    quality = []
    for variant in ("additive", "dot_none", "dot_sqrt_dk"):
        runs = [r for r in metrics["results"]["quality"] if r["variant"] == variant]
        loss = losses(metrics, variant)
        gap = base.paired_effect(loss, additive, N_SD, MIN_LOSS_GAP)
        quality.append([variant, str(runs[0]["d_head"]), f"{base.mean(loss):.3f} ± {base.std(loss):.3f}",
                        fmt(base.mean([r["accuracy"] for r in runs])),
                        "" if variant == "additive" else f"{gap['mean']:+.3f} ± {gap['sd']:.3f}"])
    return [cost, (["score", "d_k", "held-out loss (mean ± sd)", "accuracy", "loss − additive (paired)"], quality)]


PATH_STYLE = {"dot_fused": ("C2", "dot, fused SDPA"), "dot_reference": ("C0", "dot, written out"),
              "additive": ("C3", "additive")}
D_K_STYLE = (("o", "-"), ("s", "--"), ("^", ":"), ("D", "-."))  # (marker, line) per d_k


def plot_cost(results: dict[str, Any], out: Path) -> str:
    fig, (ax_t, ax_m, ax_r) = plots.figure(3)
    metrics = {"results": results}
    lengths, d_ks = grid(metrics)
    for d_k, (marker, line) in zip(d_ks, D_K_STYLE):
        for path, (color, label) in PATH_STYLE.items():
            cells = [cell(metrics, n, d_k, path) for n in lengths]
            for n, c in zip(lengths, cells):
                ax_t.scatter([n] * len(c["times_s"]), [1e3 * t for t in c["times_s"]], color=color, marker=marker,
                             s=12, alpha=0.6)
            ax_t.plot(lengths, [1e3 * base.mean(c["times_s"]) for c in cells], color=color, linewidth=1,
                      linestyle=line, label=f"{label}, d_k {d_k}")
            ax_m.plot(lengths, [c["peak_bytes"] / 1e6 for c in cells], color=color, marker=marker, markersize=4,
                      linewidth=1, linestyle=line, label=f"{label}, d_k {d_k}")
        ratio_cells = [(cell(metrics, n, d_k, "additive"), cell(metrics, n, d_k, "dot_reference")) for n in lengths]
        for n, (a, d) in zip(lengths, ratio_cells):
            ax_r.scatter([n] * len(a["times_s"]), [x / y for x, y in zip(a["times_s"], d["times_s"])], color="C3",
                         marker=marker, s=12, alpha=0.6)
        ax_r.plot(lengths, [a["peak_bytes"] / d["peak_bytes"] for a, d in ratio_cells], color="C4", marker=marker,
                  markersize=4, linewidth=1, linestyle=line, label=f"peak memory, d_k {d_k}")
        ax_r.plot(lengths, [a["forward_flops"] / d["forward_flops"] for a, d in ratio_cells], color="grey",
                  marker=marker, markersize=4, linewidth=1, linestyle=line, label=f"FLOPs (analytic), d_k {d_k}")
        ax_r.scatter([], [], color="C3", marker=marker, s=12, label=f"time, per round, d_k {d_k}")
    ax_t.set(yscale="log", xlabel="sequence length T = S (log)", ylabel="forward + backward time (ms, log)",
             title="one attention layer, 1 thread")
    ax_m.set(yscale="log", xlabel="sequence length T = S (log)", ylabel="peak allocated (MB, log)",
             title="memory allocated by forward + backward")
    ax_r.axhline(MIN_SPEEDUP, color="black", linestyle=":", linewidth=1, label=f"threshold {MIN_SPEEDUP:g}×")
    ax_r.set(yscale="log", xlabel="sequence length T = S (log)", ylabel="additive / written-out dot (×, log)",
             title="ratios: time, memory, arithmetic")
    for ax in (ax_t, ax_m, ax_r):
        plots.log_ticks(ax, lengths)
        ax.legend(fontsize=6)
    return plots.save(fig, out, "q03_cost.png")


QUALITY_STYLE = {"additive": ("C3", "additive"), "dot_none": ("C1", "dot, no scale"),
                 "dot_sqrt_dk": ("C0", "dot, 1/√d_k")}


def plot_quality(results: dict[str, Any], steps: int, out: Path) -> str:
    fig, (ax_l, ax_c) = plots.figure(2)
    for i, (variant, (color, label)) in enumerate(QUALITY_STYLE.items()):
        runs = [r for r in results["quality"] if r["variant"] == variant]
        plots.seed_points(ax_l, i, [r["final_loss"] for r in runs], color, width=0.3)
        for r in runs:
            ax_c.plot(r["curve"], color=color, alpha=0.35)
        ax_c.plot([], [], color=color, label=label)
    d_head = results["quality"][0]["d_head"]
    ax_l.set(xticks=range(len(QUALITY_STYLE)), ylabel="held-out loss (nats/token)",
             title=f"copy task, d_k {d_head}: final loss per seed")
    ax_l.set_xticklabels([label for _, label in QUALITY_STYLE.values()], fontsize=8)
    ax_c.set(xlabel=f"step (×{max(1, steps // 50)})", ylabel="training loss (nats/token)", title="training curves")
    ax_c.legend(fontsize=8)
    return plots.save(fig, out, "q03_quality.png")
