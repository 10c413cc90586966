"""Question 1: why multi-head attention, not one head? (多头)

Claims under test (as commonly answered):
1. Several heads attend to different positions (subspaces) at once, and that improves quality.
2. More heads are more efficient than one wide head (fewer FLOPs, or faster).
3. Grouped-query and multi-query attention (GQA/MQA: fewer key/value heads than query heads)
   shrink the KV cache at little quality cost.

Method. One-layer causal LMs with rotary positions, d_model 64, at 1, 2, 4, 8 and 16 heads
(d_head = 64 / heads, so all have the same parameters), and at 8 query heads with 2 (GQA) and 1
(MQA) key/value heads. Two synthetic tasks over 8 symbols, scored from position 5 on:

- two offsets: predict the pair (x_{t-2}, x_{t-5}) as one of 64 classes. One softmax gives one
  weighted mean of values; weighting both positions alike loses which symbol stood where, so a
  single head needs another way (unequal weights), while two heads can each fetch one.
- one offset (the control): predict x_{t-2}; one head suffices in principle.

Per seed (every model of a seed sees the same training batches, so comparisons are paired by
seed): held-out loss; on held-out inputs each head's attention entropy, its weight at each
offset, and the mean pairwise Jensen–Shannon divergence between the heads' attention rows.
Parameters counted; training-step FLOPs counted by torch's FlopCounterMode on the written-out
attention path (whose matmuls it sees); KV-cache bytes per token read from the model's KVCache
after a prefill; training-step throughput (tokens/s) on one thread, the models interleaved over
rounds, at the task's shape and at 256-token sequences, as ratios to 1 head within each round.

Reproduce: ``qkv ask 1 --size full``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode

from ..models import build_model
from ..nn.attention import MultiHeadAttention
from ..train import IGNORE_INDEX, TrainConfig, smoothed_cross_entropy
from . import base, plots, probe, shared
from .table import Table, fmt

NUMBER = 1
TITLE = "Why multi-head attention, not one head?"
KEYWORD = "多头"
CLAIMS = [
    "Multiple heads attend to different positions/subspaces at once and so improve quality over one head.",
    "More heads are more efficient than one wide head (fewer FLOPs or faster).",
    "GQA/MQA (fewer key/value heads) shrink the KV cache at little quality cost.",
]
ANSWER = """\
One head is one softmax: for each query it returns a single convex combination Σ_s p_s v_s of
the values. If the output needs two positions at once, one head must either split its weight,
and the mixture ½(v_a + v_b) no longer says which symbol stood where, or commit to one position
and lose the other. H heads compute H independent distributions per query and write their
results into separate slices of the output projection, so head 1 can fetch position a and head 2
position b. That expressivity, not compute, is the reason for multi-head attention (Vaswani et
al., 2017, §3.2.2: with one head, averaging inhibits attending to several subspaces at once).
In the measurements the single head mostly commits to one of the two offsets (a few seeds split
their weight) and its loss stays far above zero, close to ln 8 ≈ 2.08 nats, the cost of guessing
the symbol it does not see, while two or more heads put one head on each offset and solve the
task; on the control, where one position suffices, one head is as good as sixteen. So more heads
help when a query needs several positions at once, not in general.

It costs nothing in parameters or FLOPs at fixed d_model. With d_head = d/H the four projections
are d × (H·d_head) = d × d whatever H, so 4d² weights (plus biases); per token and layer the
projections cost 8d² FLOPs forward, the scores 2·S·H·d_head = 2·S·d and the weighted sum the
same, again independent of H. So "more heads are more efficient" is wrong on FLOPs; in wall time
more, narrower heads mean more, smaller matmuls and a (B, H, T, S) score tensor per head, which
ran slower here (CPU, one thread), the more so the longer the sequence. Narrow heads also cap
the rank of each head's score matrix at d_head, so very many heads can hurt (Bhojanapalli et
al., 2020).

The KV cache stores keys and values per layer and token: 2 · G · d_head · bytes, with G key/value
heads. MHA has G = H; GQA (Ainslie et al., 2023) shares each key/value head among H/G query heads
and MQA (Shazeer, 2019) uses G = 1, dividing the cache by H/G and also the k/v projection
parameters. The query heads still form H separate softmaxes, so positional selection survives;
what is lost is the variety of key and value projections, which this task does not need: here
GQA and MQA cost no measurable quality. Tasks that need many distinct value subspaces per layer,
or large pretrained models, can lose more (Ainslie et al. find MQA a little below MHA and GQA
close to it)."""
FULL_SEEDS = 5
SMOKE_SEEDS = 2
N_SD = 2.0  # an effect must exceed 2 standard deviations of the per-seed differences
MIN_LOSS_GAP = 0.05  # nats/token: smaller loss differences do not matter even when consistent
MIN_JS = 0.1  # nats (at most ln 2 ≈ 0.693): heads whose attention differs less look alike
MIN_SPEEDUP = 0.05  # a throughput ratio must differ from 1 by more than 5 % to count
FLOP_TOL = 0.01  # FLOP ratios within 1 % of 1 count as the same
MIN_SEEDS = 3  # fewer seeds cannot estimate the noise
TWO, ONE = "two_offsets", "one_offset"
PROFILE_OFFSETS = 8  # attention weight is recorded at offsets 0 … 7, on query rows t ≥ 7
TASK = {"symbols": 8, "length": 16, "offsets": [2, 5], "batch": 32, "lr": 3e-3, "d_model": 64, "d_ff": 128,
        "n_layers": 1, "position": "rope", "init_std": 64**-0.5}
SIZES = {
    "smoke": {"heads": [1, 2], "grouped": [[2, 1]], "control_heads": [1, 2], "steps": 4, "control_steps": 4,
              "timing_rounds": 2, "timing_steps": 1, "timing_shapes": {"task": [32, 16], "long": [1, 32]}},
    "full": {"heads": [1, 2, 4, 8, 16], "grouped": [[8, 2], [8, 1]], "control_heads": [1, 4, 16], "steps": 600,
             "control_steps": 300, "timing_rounds": 5, "timing_steps": 10,
             "timing_shapes": {"task": [32, 16], "long": [4, 256]}},
}
FIRST_PAIR = probe.FIRST_SYMBOL + TASK["symbols"]  # the 64 pair classes follow the 8 symbols
VOCAB = FIRST_PAIR + TASK["symbols"] ** 2


# -- tasks and models -----------------------------------------------------------------------------


def task_batch(task: str, g: torch.Generator, batch: int) -> dict[str, Tensor]:
    """input_ids ``(B, T)`` of random symbols; labels ``(B, T)``, -100 before the far offset."""
    K, T, (near, far) = TASK["symbols"], TASK["length"], TASK["offsets"]
    x = torch.randint(K, (batch, T), generator=g)  # (B, T) symbol indices 0 … K-1
    at_near, at_far = x[:, far - near : T - near], x[:, : T - far]  # x_{t-near}, x_{t-far} for t = far … T-1
    labels = torch.full((batch, T), IGNORE_INDEX)
    labels[:, far:] = FIRST_PAIR + K * at_near + at_far if task == TWO else probe.FIRST_SYMBOL + at_near
    return {"input_ids": x + probe.FIRST_SYMBOL, "labels": labels}


def model_config(n_heads: int, n_kv_heads: int, max_len: int = TASK["length"]):
    return probe.copy_model_config(TASK["symbols"], TASK["length"], vocab_size=VOCAB, d_model=TASK["d_model"],
                                   d_ff=TASK["d_ff"], n_layers=TASK["n_layers"], n_heads=n_heads,
                                   n_kv_heads=n_kv_heads, position=TASK["position"], max_len=max_len,
                                   init_std=TASK["init_std"])


def train(task: str, n_heads: int, n_kv_heads: int, seed: int, steps: int) -> tuple[nn.Module, list[float]]:
    """A fresh model trained with qkv's Trainer; the batches depend on the seed only."""
    torch.manual_seed(seed)
    model = build_model(model_config(n_heads, n_kv_heads))
    tcfg = TrainConfig(lr=TASK["lr"], schedule="cosine", warmup_steps=steps // 10, max_steps=steps,
                       label_smoothing=0.0, precision="fp32", device="cpu", seed=seed, log_every=steps + 1,
                       weight_decay=0.0)
    g = torch.Generator().manual_seed(10_000 + seed)
    curve = shared.train_steps(model, tcfg, (task_batch(task, g, TASK["batch"]) for _ in range(steps)))
    return model.eval(), curve


@torch.no_grad()
def held_out(model: nn.Module, task: str, batches: int = 4, batch: int = 64) -> dict[str, float]:
    """Mean loss (nats/token) and accuracy on the same held-out batches for every model."""
    g = torch.Generator().manual_seed(999)
    loss_sum, tokens, correct = 0.0, 0, 0
    for _ in range(batches):
        b = task_batch(task, g, batch)
        logits = model.forward_batch(b)  # (B, T, V)
        summed, count = smoothed_cross_entropy(logits, b["labels"])
        keep = b["labels"] != IGNORE_INDEX
        loss_sum, tokens = loss_sum + float(summed), tokens + int(count)
        correct += int((logits.argmax(-1)[keep] == b["labels"][keep]).sum())
    return {"loss": loss_sum / tokens, "accuracy": correct / tokens}


# -- what the heads attend to ---------------------------------------------------------------------


def attention_layers(model: nn.Module) -> list[MultiHeadAttention]:
    return [m for m in model.modules() if isinstance(m, MultiHeadAttention)]


def mean_pairwise_js(rows: Tensor) -> float | None:
    """Mean Jensen–Shannon divergence (nats) between the attention rows of every two heads.

    rows ``(N, H, S)``, each row a distribution; None for a single head."""
    H = rows.shape[1]
    if H < 2:
        return None
    p, q = rows[:, :, None, :], rows[:, None, :, :]  # (N, H, 1, S), (N, 1, H, S)
    log_m = ((p + q) / 2).clamp_min(1e-30).log()  # (N, H, H, S)
    kl = lambda a: (a * (a.clamp_min(1e-30).log() - log_m)).sum(-1)  # noqa: E731  (N, H, H)
    js = 0.5 * kl(p) + 0.5 * kl(q)  # (N, H, H)
    return float(js[:, ~torch.eye(H, dtype=torch.bool)].mean())


@torch.no_grad()
def attention_stats(model: nn.Module, task: str) -> dict[str, Any]:
    """Per head: entropy (nats) and mean weight at offsets 0 … 7; across heads: mean pairwise JS."""
    attn = attention_layers(model)[0]
    attn.capture = True  # the reference path, which keeps the weights
    model(task_batch(task, torch.Generator().manual_seed(998), 64)["input_ids"])
    weights, attn.capture, attn.weights = attn.weights, False, None  # (B, H, T, S)
    t = torch.arange(PROFILE_OFFSETS - 1, TASK["length"])  # query rows that can reach every offset
    rows = weights[:, :, t, :].transpose(1, 2).flatten(0, 1)  # (B·rows, H, S)
    entropy = -(rows * rows.clamp_min(1e-30).log()).sum(-1).mean(0)  # (H,)
    profile = torch.stack([weights[:, :, t, t - o].mean((0, 2)) for o in range(PROFILE_OFFSETS)], -1)  # (H, O)
    return {"entropy": entropy.tolist(), "js": mean_pairwise_js(rows), "profile": profile.tolist()}


def train_cell(task: str, n_heads: int, n_kv_heads: int, seed: int, steps: int) -> dict[str, Any]:
    model, curve = train(task, n_heads, n_kv_heads, seed, steps)
    return {"task": task, "n_heads": n_heads, "n_kv_heads": n_kv_heads, "seed": seed, **held_out(model, task),
            "curve": curve[:: max(1, steps // 50)], **attention_stats(model, task)}


# -- cost: parameters, FLOPs, KV cache, throughput -----------------------------------------------


def step_batch(batch: int, length: int) -> dict[str, Tensor]:
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(probe.FIRST_SYMBOL, VOCAB, (batch, length), generator=g)  # (B, T)
    return {"input_ids": ids, "labels": torch.randint(probe.FIRST_SYMBOL, VOCAB, (batch, length), generator=g)}


def loss_backward(model: nn.Module, b: dict[str, Tensor]) -> None:
    logits = model.forward_batch(b)  # (B, T, V)
    F.cross_entropy(logits.flatten(0, 1), b["labels"].flatten()).backward()


def counted_flops(model: nn.Module, batch: int, length: int) -> dict[str, float]:
    """FLOPs per token of one forward + backward, counted by torch, total and in the attention
    matmuls (q·kᵀ and p·v, batched over heads: aten.bmm); the written-out attention path."""
    for attn in attention_layers(model):
        attn.capture = True  # the fused CPU kernel is invisible to FlopCounterMode; its matmuls are not
    counter = FlopCounterMode(display=False)
    with counter:
        loss_backward(model, step_batch(batch, length))
    for attn in attention_layers(model):
        attn.capture, attn.weights = False, None
    model.zero_grad(set_to_none=True)
    counts = {str(op): n for op, n in counter.get_flop_counts()["Global"].items()}
    tokens = batch * length
    return {"total": counter.get_total_flops() / tokens, "attention": counts.get("aten.bmm", 0) / tokens}


@torch.no_grad()
def kv_bytes_per_token(model: nn.Module) -> float:
    """Bytes the model's KVCache holds per cached token (all layers, keys and values)."""
    batch, length = 2, TASK["length"]
    cache = model.new_cache(length)  # preallocated to `length` positions, which the prefill fills
    model(step_batch(batch, length)["input_ids"], cache=cache)
    return sum(c.k.nbytes + c.v.nbytes for c in cache.self_attn) / (batch * length)


def cost_cell(n_heads: int, n_kv_heads: int, shapes: dict[str, list[int]]) -> dict[str, Any]:
    longest = max(length for _, length in shapes.values())
    torch.manual_seed(0)
    model = build_model(model_config(n_heads, n_kv_heads, max_len=max(longest, TASK["length"])))
    attention_params = sum(p.numel() for a in attention_layers(model) for p in a.parameters())
    return {"n_heads": n_heads, "n_kv_heads": n_kv_heads, "d_head": TASK["d_model"] // n_heads,
            "params": sum(p.numel() for p in model.parameters()), "attention_params": attention_params,
            "flops": {name: counted_flops(model, b, t) for name, (b, t) in shapes.items()},
            "kv_bytes_per_token": kv_bytes_per_token(model)}




def training_step(n_heads: int, n_kv_heads: int, batch: int, length: int):
    """A closure running one AdamW training step of a fresh model on a fixed batch."""
    torch.manual_seed(0)
    model = build_model(model_config(n_heads, n_kv_heads, max_len=length)).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    b = step_batch(batch, length)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        loss_backward(model, b)
        optimizer.step()

    step()  # the first step allocates the optimizer state: keep it out of the timing
    return step


def throughput(configs: list[tuple[int, int]], shapes: dict[str, list[int]], rounds: int,
               steps: int) -> list[dict[str, Any]]:
    """Tokens/s of training steps; each round times every model once, in a rotated order."""
    out = []
    for shape, (batch, length) in shapes.items():
        steppers = {c: training_step(*c, batch, length) for c in configs}
        for r in range(rounds):
            for h, g in configs[r % len(configs):] + configs[: r % len(configs)]:
                started = time.perf_counter()
                for _ in range(steps):
                    steppers[(h, g)]()
                seconds = time.perf_counter() - started
                out.append({"shape": shape, "round": r, "n_heads": h, "n_kv_heads": g,
                            "tokens_per_s": batch * length * steps / seconds})
    return out


def run(size: str, seeds: int, out: Path) -> dict[str, Any]:
    started = time.perf_counter()
    with base.one_thread():  # every model, trained or timed, gets one core whatever else runs
        s = SIZES[size]
        configs = [(h, h) for h in s["heads"]] + [(h, g) for h, g in s["grouped"]]
        runs = [train_cell(TWO, h, g, seed, s["steps"]) for seed in range(seeds) for h, g in configs]
        runs += [train_cell(ONE, h, h, seed, s["control_steps"]) for seed in range(seeds) for h in s["control_heads"]]
        results = {"timing_shapes": s["timing_shapes"], "runs": runs,
                   "cost": [cost_cell(h, g, s["timing_shapes"]) for h, g in configs],
                   "throughput": throughput(configs, s["timing_shapes"], s["timing_rounds"], s["timing_steps"])}
        config = {**s, **TASK, "vocab_size": VOCAB, "tasks": [TWO, ONE], "schedule": "cosine, 10% warm-up",
                  "precision": "fp32", "threads": 1}
        names = [plot_quality(results, out), plot_cost(results, out)]
        return base.finish(verdict, base.record(NUMBER, size, seeds, out, config, results, names, started), out)


# -- reading the numbers --------------------------------------------------------------------------


def name(h: int, g: int) -> str:
    if g == h:
        return f"{h} head" + ("s" if h > 1 else "")
    return f"{h} q/{g} kv heads ({'MQA' if g == 1 else 'GQA'})"


def order(config: tuple[int, int]) -> tuple:
    """Plain MHA by head count first, then GQA/MQA by query heads and falling key/value heads."""
    h, g = config
    return (g < h, h, -g)


def cells(metrics: dict[str, Any], task: str) -> dict[tuple[int, int], list[dict]]:
    """(n_heads, n_kv_heads) → that configuration's runs on ``task``, sorted by seed."""
    out: dict[tuple[int, int], list[dict]] = {}
    for r in sorted(metrics["results"]["runs"], key=lambda r: r["seed"]):
        if r["task"] == task:
            out.setdefault((r["n_heads"], r["n_kv_heads"]), []).append(r)
    return dict(sorted(out.items(), key=lambda item: order(item[0])))


def losses(runs: list[dict]) -> list[float]:
    return [r["loss"] for r in runs]


def quality_gains(metrics: dict[str, Any], task: str) -> dict[int, dict[str, dict]]:
    """Per head count > 1 (plain MHA): loss of 1 head minus loss of H heads, paired by seed."""
    by = cells(metrics, task)
    one = losses(by[(1, 1)])
    return {h: {"gain": base.paired_effect(one, losses(runs), N_SD, MIN_LOSS_GAP),
                "harm": base.paired_effect(losses(runs), one, N_SD, MIN_LOSS_GAP)}
            for (h, g), runs in by.items() if g == h and h > 1}


def mean_js(runs: list[dict]) -> float:
    return base.mean([r["js"] for r in runs])


def heads_claim(metrics: dict[str, Any]) -> tuple[str, str]:
    """holds / depends / fails, and the sentence with the numbers."""
    by_two = cells(metrics, TWO)
    parts, helped = [], {}
    for task in (TWO, ONE):
        gains = quality_gains(metrics, task)
        helped[task] = [h for h, e in gains.items() if e["gain"]["significant"]]
        harmed = [h for h, e in gains.items() if e["harm"]["significant"]]
        listed = ", ".join(f"{h}: {e['gain']['mean']:+.3f} ± {e['gain']['sd']:.3f}" for h, e in gains.items())
        one = base.mean(losses(cells(metrics, task)[(1, 1)]))
        parts.append(f"{task.replace('_', ' ')} task: 1 head {one:.3f} nats, loss of 1 head − H heads {listed}"
                     + (f", worse at {', '.join(map(str, harmed))} heads" if harmed else ""))
    js = {h: mean_js(by_two[(h, h)]) for h in helped[TWO]}
    diverse = bool(js) and min(js.values()) >= MIN_JS
    if js:
        parts.append("head diversity (mean pairwise JS) " + ", ".join(f"{h} heads {v:.3f}" for h, v in js.items())
                     + f" nats (threshold {MIN_JS})")
    if helped[TWO] and helped[ONE] and diverse:
        status = "holds"
    elif not helped[TWO] and not helped[ONE]:
        status = "fails"
    else:
        status = "depends"
    return status, "; ".join(parts)


def speed_ratios(metrics: dict[str, Any], shape: str, h: int, g: int) -> list[float]:
    """Per timing round: tokens/s of (h, g) over tokens/s of 1 head."""
    rows = [r for r in metrics["results"]["throughput"] if r["shape"] == shape]
    rate = {(r["round"], r["n_heads"], r["n_kv_heads"]): r["tokens_per_s"] for r in rows}
    return [rate[(k, h, g)] / rate[(k, 1, 1)] for k in sorted({r["round"] for r in rows})]


def cost_by_config(metrics: dict[str, Any]) -> dict[tuple[int, int], dict]:
    by = {(c["n_heads"], c["n_kv_heads"]): c for c in metrics["results"]["cost"]}
    return dict(sorted(by.items(), key=lambda item: order(item[0])))


def efficiency_claim(metrics: dict[str, Any]) -> tuple[str, str]:
    cost = cost_by_config(metrics)
    most = max(h for h, g in cost if g == h)
    one, many = cost[(1, 1)], cost[(most, most)]
    shapes = list(one["flops"])
    flop_ratio = {s: many["flops"][s]["total"] / one["flops"][s]["total"] for s in shapes}
    fewer = all(r < 1 - FLOP_TOL for r in flop_ratio.values())
    faster, slower, speed = [], [], []
    for s in shapes:
        ratios = speed_ratios(metrics, s, most, most)
        ones = [1.0] * len(ratios)
        if base.paired_effect(ratios, ones, N_SD, MIN_SPEEDUP)["significant"]:
            faster.append(s)
        if base.paired_effect(ones, ratios, N_SD, MIN_SPEEDUP)["significant"]:
            slower.append(s)
        speed.append(f"{base.mean(ratios):.2f} ± {base.std(ratios):.2f} ({s} shape)")
    text = (f"parameters {one['params']} at 1 head and {many['params']} at {most} heads; training FLOPs per "
            f"token {most} heads / 1 head = " + ", ".join(f"{r:.3f} ({s} shape)" for s, r in flop_ratio.items())
            + f"; tokens/s {most} heads / 1 head = " + ", ".join(speed))
    if (fewer or len(faster) == len(shapes)) and not slower:
        return "holds", text
    if not fewer and not faster:
        return "fails", text
    return "depends", text


def grouped_claim(metrics: dict[str, Any]) -> tuple[str, str]:
    cost, by = cost_by_config(metrics), cells(metrics, TWO)
    grouped = [(h, g) for h, g in by if g < h and (h, h) in by]
    parts, shrinks, costly = [], [], []
    for h, g in grouped:
        ratio = cost[(h, g)]["kv_bytes_per_token"] / cost[(h, h)]["kv_bytes_per_token"]
        loss_cost = base.paired_effect(losses(by[(h, g)]), losses(by[(h, h)]), N_SD, MIN_LOSS_GAP)
        shrinks.append(ratio < 1)
        costly.append(loss_cost["significant"])
        parts.append(f"{name(h, g)}: KV cache {cost[(h, g)]['kv_bytes_per_token']:.0f} vs "
                     f"{cost[(h, h)]['kv_bytes_per_token']:.0f} B/token (×{ratio:.3f}), loss − {h}-head MHA "
                     f"{loss_cost['mean']:+.3f} ± {loss_cost['sd']:.3f} nats")
    text = "; ".join(parts)
    if all(shrinks) and not any(costly):
        return "holds", text
    if not any(shrinks) or all(costly):
        return "fails", text
    return "depends", text


def verdict(metrics: dict[str, Any]) -> tuple[str, str]:
    undecided = base.undecidable(metrics, MIN_SEEDS)
    if undecided:
        return undecided
    claims = {"more heads improve quality": heads_claim(metrics), "more heads are more efficient":
              efficiency_claim(metrics), "GQA/MQA shrink the cache cheaply": grouped_claim(metrics)}
    statuses = [status for status, _ in claims.values()]
    reason = "; ".join(f"“{claim}” {status} ({text})" for claim, (status, text) in claims.items())
    if all(s == "holds" for s in statuses):
        return "confirmed", f"all three claims hold beyond {N_SD:g} sd of seed noise: {reason}"
    if all(s == "fails" for s in statuses):
        return "refuted", f"none of the claims holds: {reason}"
    return "depends", reason


# -- tables and plots -----------------------------------------------------------------------------


def offset_weight(runs: list[dict], offset: int) -> float:
    """Mean over seeds of the largest weight any head puts at ``offset``."""
    return base.mean([max(head[offset] for head in r["profile"]) for r in runs])


def quality_row(task: str, h: int, g: int, runs: list[dict], reference: list[dict] | None) -> list[str]:
    loss = losses(runs)
    gap = ""
    if reference is not None and g == h:  # plain MHA: how much worse is 1 head
        e = base.paired_effect(losses(reference), loss, N_SD, MIN_LOSS_GAP)
        gap = f"1 head − this {e['mean']:+.3f} ± {e['sd']:.3f}"
    elif reference is not None:  # grouped: how much worse than MHA with as many query heads
        e = base.paired_effect(loss, losses(reference), N_SD, MIN_LOSS_GAP)
        gap = f"this − MHA {e['mean']:+.3f} ± {e['sd']:.3f}"
    js = [r["js"] for r in runs if r["js"] is not None]
    near, far = TASK["offsets"]
    return [task.replace("_", " "), name(h, g), f"{base.mean(loss):.3f} ± {base.std(loss):.3f}",
            fmt(base.mean([r["accuracy"] for r in runs])), gap,
            fmt(base.mean([base.mean(r["entropy"]) for r in runs])), fmt(base.mean(js)) if js else "—",
            fmt(offset_weight(runs, near)), fmt(offset_weight(runs, far))]


def tables(metrics: dict[str, Any]) -> list[Table]:
    """Quality and attention per task and configuration; then parameters, FLOPs, cache, speed."""
    near, far = TASK["offsets"]
    rows = []
    for task in (TWO, ONE):
        by = cells(metrics, task)
        for (h, g), runs in by.items():
            reference = by.get((1, 1)) if g == h and h > 1 else by.get((h, h)) if g < h else None
            rows.append(quality_row(task, h, g, runs, reference))
    quality = (["task", "heads", "held-out loss (mean ± sd)", "accuracy", "paired loss gap (nats)",
                "mean head entropy (nats)", "head diversity JS (nats)", f"top weight at offset {near}",
                f"top weight at offset {far}"], rows)
    cost_rows = []
    for (h, g), c in cost_by_config(metrics).items():
        shapes = list(c["flops"])
        flops = [fmt(c["flops"][s][k]) for s in shapes for k in ("total", "attention")]
        speed = [f"{base.mean(r):.2f} ± {base.std(r):.2f}" for r in (speed_ratios(metrics, s, h, g) for s in shapes)]
        cost_rows.append([name(h, g), str(c["d_head"]), str(c["params"]), str(c["attention_params"]), *flops,
                          fmt(c["kv_bytes_per_token"]), *speed])
    shape_of = {s: "×".join(map(str, bt)) for s, bt in metrics["results"]["timing_shapes"].items()}
    columns = (["heads", "d_head", "parameters", "attention parameters"]
               + [f"{what} FLOPs/token, {s} (B×T {shape_of[s]})" for s in shape_of
                  for what in ("training", "attention")]
               + ["KV cache (bytes/token)"] + [f"tokens/s ÷ 1 head, {s}" for s in shape_of])
    return [quality, (columns, cost_rows)]


def configuration_axis(ax, configs: list[tuple[int, int]]) -> None:
    ax.set_xticks(range(len(configs)))
    ax.set_xticklabels([f"{h}" if g == h else f"{h}q/{g}kv" for h, g in configs], fontsize=8)
    ax.set_xlabel("heads (query/key-value heads for GQA, MQA)")


def plot_quality(results: dict[str, Any], out: Path) -> str:
    metrics = {"results": results}
    fig, (ax_l, ax_d, ax_p) = plots.figure(3)
    two, one = cells(metrics, TWO), cells(metrics, ONE)
    configs = list(two)
    for i, c in enumerate(configs):
        plots.seed_points(ax_l, i - 0.12, losses(two[c]), "C0", "two offsets" if i == 0 else None, width=0.2)
        if c in one:
            plots.seed_points(ax_l, i + 0.12, losses(one[c]), "C1", "one offset (control)" if i == 0 else None,
                              width=0.2)
        if c[0] > 1:
            plots.seed_points(ax_d, i - 0.12, [r["js"] for r in two[c]], "C2",
                              "JS between heads" if i == 1 else None, width=0.2)
        plots.seed_points(ax_d, i + 0.12, [base.mean(r["entropy"]) for r in two[c]], "C4",
                          "mean head entropy" if i == 0 else None, width=0.2)
    ax_l.set(yscale="log", ylabel="held-out loss (nats/token, log)", title="quality per seed")
    ax_d.axhline(MIN_JS, color="grey", linestyle=":", label=f"JS threshold {MIN_JS}")
    ax_d.set(ylabel="nats", title="attention per head (two-offset task)")
    for ax in (ax_l, ax_d):
        configuration_axis(ax, configs)
        ax.legend(fontsize=7)
    plot_profiles(ax_p, two)
    return plots.save(fig, out, "q01_quality.png")


def plot_profiles(ax, two: dict[tuple[int, int], list[dict]]) -> None:
    """Attention weight against offset: every seed's single head, and every head of 2-head models."""
    offsets = list(range(PROFILE_OFFSETS))
    for style, (c, color) in enumerate((((1, 1), "k"), ((2, 2), "C3"))):
        for i, r in enumerate(two.get(c, [])):
            for j, head in enumerate(r["profile"]):
                ax.plot(offsets, head, color=color, alpha=0.5, marker="o", markersize=3,
                        linestyle="-" if style == 0 else "--", label=name(*c) if i == j == 0 else None)
    for o in TASK["offsets"]:
        ax.axvline(o, color="grey", linestyle=":", linewidth=1)
    ax.set(xlabel="offset t − s (positions back)", ylabel="mean attention weight",
           title="where heads look (every seed, every head)")
    ax.legend(fontsize=7)


def plot_cost(results: dict[str, Any], out: Path) -> str:
    metrics = {"results": results}
    fig, (ax_s, ax_f, ax_k) = plots.figure(3)
    cost = cost_by_config(metrics)
    configs, shapes = list(cost), list(results["cost"][0]["flops"])
    for i, (h, g) in enumerate(configs):
        for j, s in enumerate(shapes):
            plots.seed_points(ax_s, i + 0.15 * (2 * j - 1), speed_ratios(metrics, s, h, g), f"C{j}",
                              f"{s} shape" if i == 0 else None, width=0.2)
            ratio = cost[(h, g)]["flops"][s]["total"] / cost[(1, 1)]["flops"][s]["total"]
            ax_f.scatter([i + 0.15 * (2 * j - 1)], [ratio], color=f"C{j}", marker="s", s=18,
                         label=f"training FLOPs, {s} shape" if i == 0 else None)
        ax_f.scatter([i], [cost[(h, g)]["params"] / cost[(1, 1)]["params"]], color="k", marker="x", s=24,
                     label="parameters" if i == 0 else None)
    ax_k.bar(range(len(configs)), [cost[c]["kv_bytes_per_token"] for c in configs], color="C2")
    ax_s.axhline(1, color="grey", linestyle=":")
    ax_s.set(ylabel="tokens/s ÷ tokens/s of 1 head", title="training throughput (per round, 1 thread)")
    ax_f.set(ylabel="ratio to 1 head", title="parameters and FLOPs (counted)")
    ax_k.set(ylabel="KV cache (bytes per token, fp32)", title="KV cache per token (from KVCache)")
    for ax in (ax_s, ax_f, ax_k):
        configuration_axis(ax, configs)
    ax_s.legend(fontsize=7)
    ax_f.legend(fontsize=7)
    return plots.save(fig, out, "q01_cost.png")
