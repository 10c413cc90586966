"""Question 33: when is a Transformer not the best choice? (局限)

Claims under test (as commonly answered): a Transformer has little built-in bias about
sequences, so with little training data a recurrent model of the same size generalises
better, and the Transformer wins only once there is enough data; and for streaming — one
token at a time, batch 1, on a CPU — an LSTM is cheaper per token, its cost constant, while
even a Transformer with a KV cache pays for attention over a context that keeps growing.

Method, every number per seed:
1. Data-size sweep: the Transformer LM and the parameter-matched LSTM LM of question 21
   (d_model 64, 2 layers; the LSTM's width chosen to match the parameter count) train on the
   first 1%, 3%, 10%, 30% and 100% of the Tiny Shakespeare training bytes, the same number of
   steps and batches at every size (500 steps, context 64, batch 16, linear warm-up then
   cosine decay, no dropout in either, each architecture's learning rate from question 21).
   Held-out loss on the same first 16 k characters of the validation text, and loss on the
   first 16 k characters of the training slice (to show the overfitting). Per size, the paired
   difference Transformer − LSTM says which is better beyond seed noise; the crossover is
   where the better one changes. The small-data claim needs both: the LSTM better at the
   smallest size, and its lead there larger than at the full data (paired by seed) — an LSTM
   that is better by the same margin at every size says nothing about data size.
2. Streaming latency: the same two shapes (untrained: the cost does not depend on the weights)
   generate greedily at batch 1 on one CPU thread through ``qkv.generate.Stepper`` — the
   Transformer with its KV cache, the LSTM carrying its (h, c) — and every step is timed.
   Per seed: seven streams per model, the two alternating, and of these the one with the
   lowest median (the least disturbed by other work on the machine); its median ms/token over
   all steps, and over the first and last 32 steps (the plot: medians of blocks of 16 steps).

Reproduce: ``qkv ask 33 --size full``.
"""

from __future__ import annotations

import math
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ..generate.stepper import Stepper
from ..models import build_model, n_params
from . import base, plots, shared
from .q21_lstm import batch_stream, held_out_loss, lstm_config, matched_lstm_width, trainer, transformer_config
from .table import Table, fmt

NUMBER = 33
TITLE = "When is a Transformer not the best choice?"
KEYWORD = "局限"
CLAIMS = [
    "With little training data an LSTM of the same size reaches a lower held-out loss; "
    "the Transformer wins only with more data.",
    "Streaming at batch 1 on a CPU, an LSTM's per-token latency is lower and constant; "
    "a KV-cached Transformer's grows with the context.",
]
ANSWER = """\
A Transformer's prior about sequences is weak: every position may attend to every other,
order enters only through the positional encoding, and nothing favours the recent past. An
LSTM's recurrence builds in order and recency, and a fixed-size state that cannot memorise a
long span verbatim. With few training examples that bias is worth data, so the recurrent
model should overfit less; with enough data the Transformer's freedom should pay off. At
inference a KV-cached Transformer does, per new token, the same projections and feed-forward
as an LSTM does its gates, plus attention over the t cached keys — O(t·d) per layer and a
cache that grows by 2·d·layers numbers per token, where the LSTM's state stays (h, c). On a
CPU at batch 1 these are small matrix-vector products dominated by fixed per-operation
overhead, so which is faster is a matter of how many operations each step runs. The sweep
over training-set sizes with matched parameters, steps and held-out text, and the per-step
timings of both decoders, make each part an observed fact or not."""
FULL_SEEDS = 3
SMOKE_SEEDS = 1
MIN_SEEDS = 3
N_SD = 2.0
MIN_GAP = 0.02  # nats/char: a smaller held-out loss difference does not matter
MIN_SPEEDUP = 1.2  # a latency ratio below this does not matter for choosing a model
EDGE = 32  # steps at each end of the stream for the early/late latency
BLOCK = 16  # tokens per plotted latency median
MIN_GROWTH = 1.2  # late/early latency ratio that counts as growing with the context
ARCHS = ("transformer", "lstm")
SIZES = {
    "smoke": {"fractions": [0.01, 1.0], "d_model": 16, "n_layers": 1, "n_heads": 2, "context": 32, "batch": 4,
              "steps": 3, "dropout": 0.0, "val_chars": 1024, "train_eval_chars": 1024, "stream_tokens": 32, "rounds": 1},
    "full": {"fractions": [0.01, 0.03, 0.1, 0.3, 1.0], "d_model": 64, "n_layers": 2, "n_heads": 4, "context": 64,
             "batch": 16, "steps": 500, "dropout": 0.0, "val_chars": 16384, "train_eval_chars": 16384,
             "stream_tokens": 384, "rounds": 7},
}


def configs(s: dict) -> dict[str, Any]:
    return {"transformer": transformer_config(s), "lstm": lstm_config(s, matched_lstm_width(s))}


def train_on(arch: str, cfg, s: dict, seed: int, stream: Tensor) -> nn.Module:
    """``steps`` updates on ``stream``; the same initial seed and batch generator for both models."""
    torch.manual_seed(seed)
    model = build_model(cfg)
    batches = batch_stream(stream, s, seed)
    with tempfile.TemporaryDirectory() as tmp:  # the trainer's log; no checkpoint is kept
        run = trainer(model, arch, s, seed, tmp, schedule="cosine")
        for _ in range(s["steps"]):
            run.train_step([next(batches)])
    return model


def data_point(fraction: float, seed: int, s: dict, cfgs: dict, train: Tensor, held_out: Tensor) -> dict[str, Any]:
    stream = train[: max(int(len(train) * fraction), s["context"] + 2)]
    row: dict[str, Any] = {"fraction": fraction, "seed": seed, "train_chars": len(stream)}
    for arch in ARCHS:
        model = train_on(arch, cfgs[arch], s, seed, stream)
        row[f"{arch}_held_out"] = held_out_loss(model, held_out, s["context"])
        row[f"{arch}_train"] = held_out_loss(model, stream[: s["train_eval_chars"]], s["context"])
    return row


@torch.no_grad()
def step_latencies(model: nn.Module, n_tokens: int) -> list[float]:
    """Seconds per generated token, greedy, batch 1, after a one-token prompt."""
    model.eval()
    prompt = torch.tensor([[shared.FIRST_BYTE + ord("\n")]])  # (1, 1)
    stepper = Stepper(model, prompt, None, n_tokens)
    logits = stepper.prefill()  # (1, V)
    seconds = []
    for _ in range(n_tokens):
        token = logits.argmax(-1)  # (1,)
        started = time.perf_counter()
        logits = stepper.step(token)
        seconds.append(time.perf_counter() - started)
    return seconds


def median(xs: list[float]) -> float:
    ordered = sorted(xs)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def streaming(seed: int, s: dict, cfgs: dict) -> dict[str, Any]:
    """Per model, ``rounds`` timed streams, the two models alternating so that a busy spell of the
    machine hits both; the round with the lowest median is kept (the least disturbed one)."""
    row: dict[str, Any] = {"seed": seed}
    n = s["stream_tokens"]
    models = {}
    for arch in ARCHS:
        torch.manual_seed(seed)
        models[arch] = build_model(cfgs[arch].replace(max_len=n + 1))
        step_latencies(models[arch], EDGE)  # warm-up: first calls allocate
    rounds: dict[str, list[list[float]]] = {arch: [] for arch in ARCHS}
    for _ in range(s["rounds"]):
        for arch in ARCHS:
            rounds[arch].append([1000 * x for x in step_latencies(models[arch], n)])
    for arch in ARCHS:
        ms = min(rounds[arch], key=median)
        row[f"{arch}_ms"] = [round(x, 5) for x in ms]
        row[f"{arch}_round_medians_ms"] = [median(r) for r in rounds[arch]]
        row[f"{arch}_median_ms"], row[f"{arch}_early_ms"], row[f"{arch}_late_ms"] = (
            median(ms), median(ms[:EDGE]), median(ms[-EDGE:]))
    return row


def run(size: str, seeds: int, out: Path) -> dict[str, Any]:
    started = time.perf_counter()
    s = SIZES[size]
    with base.one_thread():
        train, held_out = shared.shakespeare_ids("train"), shared.shakespeare_ids("val")[: s["val_chars"]]
        cfgs = configs(s)
        sweep = [data_point(f, seed, s, cfgs, train, held_out) for f in s["fractions"] for seed in range(seeds)]
        stream = [streaming(seed, s, cfgs) for seed in range(seeds)]
    params = {arch: n_params(build_model(cfg)) for arch, cfg in cfgs.items()}
    results = {"sweep": sweep, "streaming": stream, "params": params, "lstm_width": cfgs["lstm"].d_model}
    config = {**s, "schedule": "linear warm-up (steps/10), cosine decay", "optimizer": "AdamW, no decay",
              "lr": "question 21's per-architecture rates", "data": "Tiny Shakespeare, bytes; a prefix of the training text",
              "held_out": f"first {len(held_out)} validation characters", "precision": "fp32",
              "streaming": "untrained models, greedy, batch 1, one thread, qkv.generate.Stepper"}
    names = [plot(results, out)]
    return base.finish(verdict, base.record(NUMBER, size, seeds, out, config, results, names, started), out)


COLORS = {"transformer": "C0", "lstm": "C1"}


def plot(results: dict[str, Any], out: Path) -> str:
    fig, (ax_loss, ax_diff, ax_lat) = plots.figure(3, width=4.0)
    fractions = sorted({r["fraction"] for r in results["sweep"]})
    for arch, dx in (("transformer", -0.04), ("lstm", 0.04)):
        for i, f in enumerate(fractions):
            values = [r[f"{arch}_held_out"] for r in results["sweep"] if r["fraction"] == f]
            ax_loss.scatter([f * 10 ** dx] * len(values), values, s=14, color=COLORS[arch], alpha=0.7,
                            label=arch if i == 0 else None)
        means = [base.mean([r[f"{arch}_held_out"] for r in results["sweep"] if r["fraction"] == f]) for f in fractions]
        ax_loss.plot(fractions, means, color=COLORS[arch], lw=1)
    ax_loss.set(xscale="log", xlabel="share of the training text (log)", ylabel="held-out loss (nats/char)",
                title="same steps, same held-out text")
    diffs = [[r["transformer_held_out"] - r["lstm_held_out"] for r in results["sweep"] if r["fraction"] == f]
             for f in fractions]
    ax_diff.errorbar(fractions, [base.mean(d) for d in diffs], yerr=[N_SD * base.std(d) for d in diffs],
                     fmt="o-", color="k", capsize=3, label=f"mean ± {N_SD:g} sd of seeds")
    ax_diff.axhline(0, color="grey", lw=0.8)
    ax_diff.set(xscale="log", xlabel="share of the training text (log)",
                ylabel="Transformer − LSTM loss (nats/char)", title="> 0: the LSTM is better")
    for arch in ARCHS:
        for i, r in enumerate(results["streaming"]):
            blocks = block_medians(r[f"{arch}_ms"], BLOCK)
            ax_lat.plot([BLOCK * (j + 0.5) for j in range(len(blocks))], blocks, "o-", ms=2, lw=0.8, alpha=0.6,
                        color=COLORS[arch], label=arch if i == 0 else None)
    ax_lat.set(xlabel="generated token (context length)", ylabel=f"latency per token (ms, median of {BLOCK})",
               ylim=(0, None), title="streaming, batch 1, 1 CPU thread")
    for ax in (ax_loss, ax_diff, ax_lat):
        ax.legend(fontsize=8)
    return plots.save(fig, out, "q33_not_transformer.png")


def block_medians(xs: list[float], size: int) -> list[float]:
    """The median of each run of ``size`` values: what a step costs without the machine's hiccups."""
    return [median(xs[i:i + size]) for i in range(0, len(xs) - size + 1, size)]


def better(transformer: list[float], lstm: list[float], min_effect: float) -> dict[str, Any]:
    """Which has the lower value beyond seed noise (paired by seed): "lstm", "transformer" or "neither"."""
    e = base.paired_effect(transformer, lstm, N_SD, min_effect)  # > 0: the LSTM is lower
    reverse = base.paired_effect(lstm, transformer, N_SD, min_effect)["significant"]
    return {**e, "side": "lstm" if e["significant"] else "transformer" if reverse else "neither"}


def data_effects(metrics: dict[str, Any]) -> list[dict[str, Any]]:
    """Per training-set share, ascending: Transformer − LSTM held-out loss and the better side."""
    sweep = metrics["results"]["sweep"]
    out = []
    for f in sorted({r["fraction"] for r in sweep}):
        rows = sorted((r for r in sweep if r["fraction"] == f), key=lambda r: r["seed"])
        e = better([r["transformer_held_out"] for r in rows], [r["lstm_held_out"] for r in rows], MIN_GAP)
        out.append({"fraction": f, **e})
    return out


def crossover(points: list[dict[str, Any]]) -> tuple[float, float] | None:
    """(largest share where the LSTM is better, next share where the Transformer is), if the better
    side changes from LSTM to Transformer as the data grows."""
    lstm = [p["fraction"] for p in points if p["side"] == "lstm"]
    transformer = [p["fraction"] for p in points if p["side"] == "transformer"]
    if not lstm or not transformer or min(transformer) < max(lstm):
        return None
    return max(lstm), min(transformer)


def latency_effect(metrics: dict[str, Any]) -> dict[str, Any]:
    """log(Transformer / LSTM) median ms per token, paired by seed: the LSTM's speed-up."""
    rows = sorted(metrics["results"]["streaming"], key=lambda r: r["seed"])
    logs = lambda arch: [math.log(r[f"{arch}_median_ms"]) for r in rows]  # noqa: E731
    e = better(logs("transformer"), logs("lstm"), math.log(MIN_SPEEDUP))
    growth = {arch: base.mean([r[f"{arch}_late_ms"] / r[f"{arch}_early_ms"] for r in rows]) for arch in ARCHS}
    return {**e, "speedup": math.exp(e["mean"]), "growth": growth}


def data_trend(metrics: dict[str, Any]) -> dict[str, Any]:
    """(T − L at the smallest share) − (T − L at the full data), paired by seed: > 0 when the
    LSTM's lead shrinks (or the Transformer's grows) with more data."""
    sweep = metrics["results"]["sweep"]
    ends = min(r["fraction"] for r in sweep), max(r["fraction"] for r in sweep)
    gap = lambda f: [r["transformer_held_out"] - r["lstm_held_out"]  # noqa: E731
                     for r in sorted(sweep, key=lambda r: r["seed"]) if r["fraction"] == f]
    return base.paired_effect(gap(ends[0]), gap(ends[1]), N_SD, MIN_GAP)


def verdict(metrics: dict[str, Any]) -> tuple[str, str]:
    undecided = base.undecidable(metrics, MIN_SEEDS)
    if undecided:
        return undecided
    points, lat, trend = data_effects(metrics), latency_effect(metrics), data_trend(metrics)
    small, large, cross = points[0], points[-1], crossover(points)
    numbers = (f"Transformer − LSTM held-out loss {small['mean']:+.3f} ± {small['sd']:.3f} nats/char at "
               f"{small['fraction']:.0%} of the data, {large['mean']:+.3f} ± {large['sd']:.3f} at {large['fraction']:.0%} "
               f"(change {trend['mean']:+.3f} ± {trend['sd']:.3f}); "
               + (f"crossover between {cross[0]:.0%} and {cross[1]:.0%}; " if cross else "no crossover; ")
               + f"streaming: Transformer/LSTM ms per token ×{lat['speedup']:.2f} (log sd {lat['sd']:.3f}), "
               f"late/early ×{lat['growth']['transformer']:.2f} Transformer, ×{lat['growth']['lstm']:.2f} LSTM")
    grows = lat["growth"]["transformer"] >= MIN_GROWTH
    numbers += (f"; the Transformer's per-token latency {'grew' if grows else 'did not grow'} with the context "
                f"(threshold ×{MIN_GROWTH:g} from the first to the last {EDGE} tokens)")
    small_data = small["side"] == "lstm" and trend["significant"]
    held = [name for name, ok in (("small data", small_data), ("streaming", lat["side"] == "lstm")) if ok]
    against = small["side"] == "transformer" or lat["side"] == "transformer"
    if len(held) == 2:
        return "confirmed", f"the LSTM is the better choice on small data and for streaming, beyond seed noise: {numbers}"
    if held:
        return "depends", f"only {held[0]} favours the LSTM beyond seed noise: {numbers}"
    if against:
        return "refuted", f"the Transformer is no worse on small data and in streaming, better beyond noise in one: {numbers}"
    return "inconclusive", f"no data-size or latency effect beyond {N_SD:g} sd of seed noise: {numbers}"


def stat(xs: list[float]) -> str:
    return f"{base.mean(xs):.3f} ± {base.std(xs):.3f}"


def tables(metrics: dict[str, Any]) -> list[Table]:
    r = metrics["results"]
    rows = []
    for p in data_effects(metrics):
        group = [x for x in r["sweep"] if x["fraction"] == p["fraction"]]
        col = lambda key: [x[key] for x in group]  # noqa: E731
        rows.append([f"{p['fraction']:.0%}", str(group[0]["train_chars"]), stat(col("transformer_held_out")),
                     stat(col("lstm_held_out")), f"{p['mean']:+.3f} ± {p['sd']:.3f}", p["side"],
                     stat(col("transformer_train")), stat(col("lstm_train"))])
    sweep = (["share of training text", "characters", "Transformer held-out", "LSTM held-out",
              "Transformer − LSTM", "better beyond noise", "Transformer train-slice loss", "LSTM train-slice loss"], rows)
    lat_rows = [[str(x["seed"]), arch, fmt(x[f"{arch}_median_ms"]), fmt(x[f"{arch}_early_ms"]), fmt(x[f"{arch}_late_ms"])]
                for x in sorted(r["streaming"], key=lambda x: x["seed"]) for arch in ARCHS]
    latency = (["seed", "model", "median ms/token", f"first {EDGE} tokens", f"last {EDGE} tokens"], lat_rows)
    return [sweep, latency]
