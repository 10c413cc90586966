"""Question 26: why is the Transformer more efficient than RNN/LSTM? (效率)

Claims under test (as commonly answered): the Transformer processes all positions at once
where an RNN steps through them, so it has the higher throughput — in training and in
inference — and the advantage grows with the sequence length.

Method (pure timing, random weights, one CPU thread; a "seed" is one timing round, every
setting measured once per round so that drift of the machine spreads over all; noise = sd over
rounds): a Transformer LM and an LSTM LM (``arch="lstm"``) with the same number of parameters
(the LSTM's width chosen to match). For sequence lengths 16 … 1,024 at batch 1 and batch 32:
tokens per second of a training step (forward + backward of the next-token loss) and of an
inference pass (forward, no gradients: scoring or prefill). Then batch-1 streaming: per-token
latency while generating 1,024 tokens, the Transformer with its KV cache, the LSTM one recurrent
step at a time. The ratio Transformer / LSTM throughput per setting says who wins; where it
crosses 1 (interpolated on log length or position) is where the claim stops being true.

Reproduce: ``qkv ask 26 --size full``.
"""

from __future__ import annotations

import math
import statistics
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..models import build_model
from . import base, plots
from .q17_parallelism import (VOCAB, binned, decode_latencies, lm_config, median_seconds, pm, summary,
                              train_step_seconds)
from .table import Table, fmt

NUMBER = 26
TITLE = "Why is the Transformer more efficient than RNN/LSTM?"
KEYWORD = "效率"
CLAIMS = [
    "A Transformer has a higher training throughput (tokens/s) than an LSTM of the same size.",
    "It has a higher inference throughput too, the more so the longer the sequence.",
    "It is the faster model for streaming generation, one token at a time at batch 1.",
]
ANSWER = """\
Per token, a Transformer layer and an LSTM layer of equal parameter count do about the same
matrix-multiply work (2 FLOPs per parameter); the Transformer adds attention, O(T·d) per token,
so O(T²·d) per sequence. What differs is the shape of the work. The Transformer's projections
are one (B·T × d)·(d × d') product per layer: large, dense, fast on any hardware with vector
units or many cores. The LSTM's input projection can be batched over time too, but its
recurrent product h_{t−1}·W_hh is T sequential (B × d)·(d × 4d) products — at batch 1 a
matrix-vector product per step, which runs far below the machine's peak. So the Transformer
can win when B·T is small per step for the LSTM (small batch, long sequence) and its own attention
term is still small; it loses its edge when the batch is large (the LSTM's per-step products get
big enough), when the sequence is so long that T² attention dominates, and in streaming
generation, where each Transformer step still runs every layer for one token and attends over
the whole cache while the LSTM step is one small fused cell with constant cost. The throughput
ratios measured at each length, batch and mode, and the streaming latencies per position, are
what show where each regime holds on this machine (one CPU thread: no parallel hardware, so
any win comes from the shape of the work alone; there the LSTM, with no attention and one fused
cell per step, came out ahead or level in every setting measured)."""
FULL_SEEDS = 4
SMOKE_SEEDS = 2
MIN_SEEDS = 3
N_SD = 2.0  # a ratio must clear its threshold by 2 sd over rounds
MIN_EFFECT = 0.10  # a throughput ratio within 10 % of 1 is a tie, however consistent
MODES = ("train", "infer")
SIZES = {
    "smoke": {"d_model": 32, "n_layers": 1, "n_heads": 2, "lengths": [8, 32], "batches": [1, 4], "reps": 1,
              "stream_tokens": 32, "bin": 8},
    "full": {"d_model": 128, "n_layers": 2, "n_heads": 4, "lengths": [16, 64, 256, 1024], "batches": [1, 32],
             "reps": 2, "stream_tokens": 1024, "bin": 64},
}


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def matched_lstm_width(s: dict, target: int, max_len: int) -> int:
    """The even LSTM width whose parameter count is nearest ``target`` (same depth; even because the
    config's checks want it for the sinusoidal table an LSTM never uses)."""
    best, width = None, s["d_model"]
    while True:
        count = n_params(build_model(lm_config({**s, "d_model": width, "n_heads": 1}, "lstm", max_len)))
        if best is None or abs(count - target) < abs(best[1] - target):
            best = (width, count)
        if count > target:
            return best[0]
        width += 2


@torch.no_grad()
def infer_seconds(model: nn.Module, batch: int, length: int, reps: int, gen: torch.Generator) -> float:
    """One forward pass over random ids ``(batch, length)`` without gradients."""
    ids = torch.randint(4, VOCAB, (batch, length), generator=gen)  # (B, T)
    model.eval()
    return median_seconds(lambda: model(ids), reps)


def throughput_round(models: dict[str, nn.Module], s: dict, r: int) -> list[dict[str, Any]]:
    """Tokens per second of every model in every (mode, batch, length), the model order alternating."""
    names = list(models) if r % 2 == 0 else list(models)[::-1]
    rows = []
    for mode in MODES:
        for batch in s["batches"]:
            for length in s["lengths"]:
                row: dict[str, Any] = {"round": r, "mode": mode, "batch": batch, "length": length}
                for name in names:
                    gen = torch.Generator().manual_seed(1000 * r + length)
                    timer = train_step_seconds if mode == "train" else infer_seconds
                    row[f"{name}_tokens_per_s"] = batch * length / timer(models[name], batch, length, s["reps"], gen)
                rows.append(row)
    return rows


def stream_round(models: dict[str, nn.Module], s: dict, r: int) -> dict[str, Any]:
    """Batch-1 per-token latencies (bins of ``s['bin']`` positions) while generating."""
    row: dict[str, Any] = {"round": r}
    for name in (list(models) if r % 2 == 0 else list(models)[::-1]):
        models[name].eval()
        seconds, _ = decode_latencies(models[name], s["stream_tokens"], 1, True, torch.Generator().manual_seed(r))
        row[f"{name}_bins"] = binned(seconds, s["bin"])
    return row


def run(size: str, seeds: int, out: Path) -> dict[str, Any]:
    started = time.perf_counter()
    s = SIZES[size]
    longest = max(s["lengths"] + [s["stream_tokens"] + 1])
    with base.one_thread():
        torch.manual_seed(0)
        transformer = build_model(lm_config(s, "transformer", longest))
        width = matched_lstm_width(s, n_params(transformer), longest)
        lstm = build_model(lm_config({**s, "d_model": width, "n_heads": 1}, "lstm", longest))
        models = {"transformer": transformer, "lstm": lstm}
        throughput, stream = [], []
        for r in range(seeds):
            throughput += throughput_round(models, s, r)
            stream.append(stream_round(models, s, r))
    results = {"throughput": throughput, "stream": stream,
               "params": {name: n_params(m) for name, m in models.items()}, "lstm_width": width}
    config = {**s, "vocab_size": VOCAB, "d_ff": 4 * s["d_model"], "lstm_width": width, "position": "sinusoidal",
              "norm": "pre", "weights": "random init (timing only)", "threads": 1, "precision": "fp32",
              "train": "forward + backward of cross-entropy, no optimizer", "infer": "forward, no_grad",
              "stream": "greedy generate, 1-token prompt, KV cache (Transformer) / recurrent state (LSTM)"}
    names = [plot(results, s, out)]
    return base.finish(verdict, base.record(NUMBER, size, seeds, out, config, results, names, started), out)


# -- what the numbers say -------------------------------------------------------------------------


def cell_ratios(results: dict[str, Any]) -> dict[tuple[str, int, int], dict[str, float]]:
    """(mode, batch, length) → Transformer / LSTM throughput, mean ± sd over rounds; the streaming
    cells are ("stream", 1, position of the bin's first token)."""
    groups: dict[tuple[str, int, int], list[float]] = {}
    for x in results["throughput"]:
        key = (x["mode"], x["batch"], x["length"])
        groups.setdefault(key, []).append(x["transformer_tokens_per_s"] / x["lstm_tokens_per_s"])
    for x in results["stream"]:
        width = results["stream_bin"]
        for j, (tf, lstm) in enumerate(zip(x["transformer_bins"], x["lstm_bins"])):
            groups.setdefault(("stream", 1, j * width), []).append(lstm / tf)  # tokens/s ratio = latency ratio⁻¹
    return {key: summary(values) for key, values in groups.items()}


def winner(stat: dict[str, float]) -> str:
    if stat["mean"] - N_SD * stat["sd"] > 1 + MIN_EFFECT:
        return "transformer"
    if stat["mean"] + N_SD * stat["sd"] < 1 / (1 + MIN_EFFECT):
        return "lstm"
    return "tie"


def crossings(ratios: dict[tuple[str, int, int], dict[str, float]]) -> dict[str, list[float]]:
    """Per (mode, batch): the lengths (positions) where the mean ratio crosses 1, log-interpolated."""
    found: dict[str, list[float]] = {}
    for mode, batch in sorted({(m, b) for m, b, _ in ratios}):
        xs = sorted(t for m, b, t in ratios if (m, b) == (mode, batch))
        points = [(max(t, 1), ratios[(mode, batch, t)]["mean"]) for t in xs]
        cross = []
        for (t0, r0), (t1, r1) in zip(points, points[1:]):
            if (r0 - 1) * (r1 - 1) < 0:  # the sign of log(ratio) changes between t0 and t1
                f = math.log(r0) / (math.log(r0) - math.log(r1))
                cross.append(round(math.exp(math.log(t0) + f * (math.log(t1) - math.log(t0))), 1))
        found[f"{mode}, batch {batch}"] = cross
    return found


def with_bin(metrics: dict[str, Any]) -> dict[str, Any]:
    return {**metrics["results"], "stream_bin": metrics["config"]["bin"]}


def verdict(metrics: dict[str, Any]) -> tuple[str, str]:
    undecided = base.undecidable(metrics, MIN_SEEDS)
    if undecided:
        return undecided
    ratios = cell_ratios(with_bin(metrics))
    wins = {key: winner(stat) for key, stat in ratios.items()}
    count = {who: sum(w == who for w in wins.values()) for who in ("transformer", "lstm", "tie")}
    best = max(ratios, key=lambda k: ratios[k]["mean"])
    worst = min(ratios, key=lambda k: ratios[k]["mean"])
    where = "; ".join(f"{group}: {', '.join(f'{c:g}' for c in cs) if cs else 'none'}"
                      for group, cs in crossings(ratios).items())
    numbers = (f"Transformer/LSTM throughput from {pm(ratios[worst])} ({label(worst)}) to {pm(ratios[best])} "
               f"({label(best)}); of {len(wins)} settings the Transformer wins {count['transformer']}, the LSTM "
               f"{count['lstm']}, {count['tie']} within {MIN_EFFECT:.0%} or noise; mean ratio crosses 1 at — {where}")
    if count["transformer"] == len(wins):
        return "confirmed", f"the Transformer is faster in every setting beyond {N_SD:g} sd: {numbers}"
    if count["lstm"] == len(wins):
        return "refuted", f"the LSTM is faster in every setting beyond {N_SD:g} sd: {numbers}"
    if count["tie"] == len(wins):
        return "inconclusive", f"no setting separates the two beyond noise: {numbers}"
    if count["transformer"] == 0:  # where they differ the LSTM wins; nowhere the claimed advantage
        return "refuted", f"the Transformer is faster in no setting beyond {N_SD:g} sd, the LSTM in some: {numbers}"
    if count["lstm"] == 0:
        return "confirmed", f"the Transformer is faster wherever the two differ beyond {N_SD:g} sd: {numbers}"
    return "depends", f"the winner depends on the setting: {numbers}"


def label(key: tuple[str, int, int]) -> str:
    mode, batch, t = key
    return f"stream from position {t}" if mode == "stream" else f"{mode}, batch {batch}, T={t}"


# -- tables and plot ------------------------------------------------------------------------------


def tables(metrics: dict[str, Any]) -> list[Table]:
    r = with_bin(metrics)
    ratios = cell_ratios(r)
    rows = []
    for mode in MODES:
        for batch in metrics["config"]["batches"]:
            for t in metrics["config"]["lengths"]:
                cell = [x for x in r["throughput"] if (x["mode"], x["batch"], x["length"]) == (mode, batch, t)]
                tf = summary([x["transformer_tokens_per_s"] for x in cell])
                lstm = summary([x["lstm_tokens_per_s"] for x in cell])
                stat = ratios[(mode, batch, t)]
                rows.append([mode, str(batch), str(t), pm(tf, 0), pm(lstm, 0), pm(stat), winner(stat)])
    first = (["mode", "batch", "T", "Transformer tokens/s", "LSTM tokens/s", "Transformer / LSTM", "faster"], rows)
    stream_rows = []
    for key in sorted(k for k in ratios if k[0] == "stream"):
        j = key[2] // r["stream_bin"]
        tf = summary([x["transformer_bins"][j] * 1e3 for x in r["stream"]])
        lstm = summary([x["lstm_bins"][j] * 1e3 for x in r["stream"]])
        stream_rows.append([f"{key[2]}–{key[2] + r['stream_bin'] - 1}", pm(tf, 3), pm(lstm, 3), pm(ratios[key]),
                            winner(ratios[key])])
    second = (["positions", "Transformer ms/token (KV cache)", "LSTM ms/token", "LSTM / Transformer latency",
               "faster"], stream_rows)
    third = (["quantity", "value"],
             [["parameters (Transformer, LSTM)", f"{r['params']['transformer']}, {r['params']['lstm']}"],
              ["LSTM width (Transformer d_model)", f"{r['lstm_width']} ({metrics['config']['d_model']})"],
              *[[f"mean ratio crosses 1, {group}", ", ".join(fmt(c) for c in cs) or "none"]
                for group, cs in crossings(ratios).items()]])
    return [first, second, third]


def plot(results: dict[str, Any], s: dict, out: Path) -> str:
    fig, axes = plots.figure(3)
    for ax, mode in zip(axes, MODES):
        for batch, marker in zip(s["batches"], ("o", "s")):
            for name, color in (("transformer", "C0"), ("lstm", "C1")):
                cell = [x for x in results["throughput"] if (x["mode"], x["batch"]) == (mode, batch)]
                shown = "Transformer" if name == "transformer" else "LSTM"
                ax.scatter([x["length"] for x in cell], [x[f"{name}_tokens_per_s"] for x in cell], color=color,
                           marker=marker, s=14, alpha=0.7, label=f"{shown}, batch {batch}")
                means = [statistics.fmean(x[f"{name}_tokens_per_s"] for x in cell if x["length"] == t)
                         for t in s["lengths"]]
                ax.plot(s["lengths"], means, color=color, linestyle="-" if batch == s["batches"][0] else "--")
        plots.log_ticks(ax, s["lengths"])
        ax.set(yscale="log", xlabel="sequence length T", ylabel="tokens / s",
               title=f"{'training (fwd + bwd)' if mode == 'train' else 'inference (forward)'}, 1 thread")
        ax.legend(fontsize=7)
    ax = axes[2]
    for name, color in (("transformer", "C0"), ("lstm", "C1")):
        for i, x in enumerate(results["stream"]):
            centres = [(j + 0.5) * s["bin"] for j in range(len(x[f"{name}_bins"]))]
            ax.plot(centres, [v * 1e3 for v in x[f"{name}_bins"]], color=color, alpha=0.6,
                    label=("Transformer + KV cache" if name == "transformer" else "LSTM step") if i == 0 else None)
    ax.set(yscale="log", xlabel="position of the generated token", ylabel="per-token latency (ms)",
           title="batch-1 streaming, each round a line")
    ax.legend(fontsize=8)
    return plots.save(fig, out, "q26_efficiency.png")
