"""Question 17: where is the parallelism; can the decoder be parallel? (并行)

Claims under test (as commonly answered): training is parallel over positions — teacher
forcing and the causal mask let one pass compute every position — while decoding is not, since
token t+1 needs token t; without a KV cache each new token recomputes the whole prefix, so the
total cost of N tokens grows as N²; the KV cache makes the per-token cost independent of the
length; and this parallelism is why a Transformer trains faster than an LSTM of the same width.

Method (pure timing, random weights, one CPU thread; a "seed" is one timing round, the rounds
interleaved so that drift of the machine spreads over every setting; noise = sd over rounds):
1. Training step (forward + backward of the next-token loss, no optimizer) vs sequence length
   64 … 1,024 at batch 8: a Transformer LM and an LSTM LM (``arch="lstm"``) of the same width
   d_model and depth. The LSTM's recurrence is T · L dependent steps; the Transformer's is L.
2. Decoding 1,024 tokens with ``qkv.generate`` from a one-token prompt, greedy, with the KV
   cache and with ``use_cache=False`` (every step reruns the whole prefix), timing every forward
   call: per-token latency vs position, and the total for N = 64 … 1,024 as the running sum.
   The cached decoding is also run with 16 prompts at once, where arithmetic, not per-call
   overhead, dominates a step. Cached and uncached must give the same tokens (checked).
3. The same decoder scoring N tokens in one teacher-forced pass vs generating them one by one:
   what the parallel pass saves.

Reproduce: ``qkv ask 17 --size full``.
"""

from __future__ import annotations

import math
import statistics
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
import torch.nn.functional as F
from torch import nn

from ..config import ModelConfig
from ..generate import generate
from ..models import build_model
from . import base, plots
from .table import Table, fmt

NUMBER = 17
TITLE = "Where is the parallelism; can the decoder be parallel?"
KEYWORD = "并行"
CLAIMS = [
    "Training is parallel over positions (one teacher-forced pass); decoding is not (one call per token).",
    "Without a KV cache the total cost of N generated tokens grows as N², with it as N.",
    "The KV cache makes the per-token decoding cost independent of the length.",
    "Because of that parallelism a Transformer trains faster than an LSTM of the same width.",
]
ANSWER = """\
In training the whole target is known, so teacher forcing feeds all T positions at once and the
causal mask keeps position t from reading t+1: every layer is a few (B·T × d) matrix products,
and the longest chain of dependent steps is the L layers. An LSTM must compute h_t from h_{t−1}:
T·L dependent steps whatever the hardware. The decoder is parallel in training and in scoring a
given text, but not in generation: token t+1 does not exist until token t is chosen, so N tokens
take N sequential forward calls. Without a cache, call t reruns the t-token prefix: Σt = O(N²)
token-layers (and O(N³) attention work). The KV cache keeps each layer's keys and values, so a
step processes one token — but it still attends over all t cached keys, O(t·d) per layer, so
per-token cost grows with t; it is flat only while the fixed per-step work (the d² projections,
per-call overhead) dwarfs attention. The timings make each point observable: the teacher-forced
pass against the same tokens generated, the per-token latency against position with and without
the cache, and the total's growth exponent. On one CPU thread there is no parallel hardware for
the Transformer's parallelism to use, so the LSTM of the same width, with fewer operations per
token, is measured against it as it is: parallelism pays off in wall time only on hardware that
runs the positions at once (see question 26)."""
FULL_SEEDS = 4
SMOKE_SEEDS = 2
MIN_SEEDS = 3
N_SD = 2.0  # a ratio must clear its threshold by 2 sd over rounds
MIN_PARALLEL_GAIN = 2.0  # generation must take at least 2× the teacher-forced pass to call decoding "not parallel"
MIN_GROWTH = 0.10  # a per-token latency rising by under 10 % from early to late counts as "flat"
MIN_EXPONENT_GAP = 0.5  # the uncached total must grow by at least N^0.5 more than the cached one
VOCAB = 260  # bytes plus four special ids, as the lab's Shakespeare LM
SIZES = {
    "smoke": {"d_model": 32, "n_layers": 1, "n_heads": 2, "batch": 2, "train_lengths": [16, 32], "reps": 1,
              "decode_tokens": 32, "bin": 8, "decode_batch": 4, "checkpoints": [8, 16, 32]},
    "full": {"d_model": 128, "n_layers": 2, "n_heads": 4, "batch": 8, "train_lengths": [64, 128, 256, 512, 1024],
             "reps": 3, "decode_tokens": 1024, "bin": 32, "decode_batch": 16, "checkpoints": [64, 128, 256, 512, 1024]},
}


def lm_config(s: dict, arch: str, max_len: int) -> ModelConfig:
    return ModelConfig(family="lm", arch=arch, vocab_size=VOCAB, d_model=s["d_model"], n_layers=s["n_layers"],
                       n_heads=s["n_heads"], d_ff=4 * s["d_model"], max_len=max_len, norm_placement="pre",
                       dropout_embed=0.0, dropout_residual=0.0, dropout_attention=0.0, dropout_activation=0.0)


def median_seconds(fn: Callable[[], Any], reps: int) -> float:
    """Median wall time of ``fn`` over ``reps`` calls, after one untimed warm-up call."""
    fn()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def train_step_seconds(model: nn.Module, batch: int, length: int, reps: int, gen: torch.Generator) -> float:
    """Forward + backward of the next-token loss on random ids ``(batch, length)``."""
    ids = torch.randint(4, VOCAB, (batch, length + 1), generator=gen)  # (B, T + 1)

    def step() -> None:
        model.zero_grad(set_to_none=True)
        logits = model(ids[:, :-1])  # (B, T, V)
        F.cross_entropy(logits.flatten(0, 1), ids[:, 1:].flatten()).backward()

    model.train()
    return median_seconds(step, reps)


@contextmanager
def forward_timer(model: nn.Module) -> Iterator[list[float]]:
    """Seconds of each forward call of ``model`` while inside (one call per generated token)."""
    seconds: list[float] = []

    def start(module, args):
        seconds.append(-time.perf_counter())

    def stop(module, args, output):
        seconds[-1] += time.perf_counter()

    handles = [model.register_forward_pre_hook(start), model.register_forward_hook(stop)]
    try:
        yield seconds
    finally:
        for handle in handles:
            handle.remove()


def decode_latencies(model: nn.Module, n: int, batch: int, use_cache: bool,
                     gen: torch.Generator) -> tuple[list[float], torch.Tensor]:
    """Per-token forward seconds ``[n]`` (call i predicts token i + 1) and the tokens generated."""
    prompt = torch.randint(4, VOCAB, (batch, 1), generator=gen)  # (B, 1)
    with forward_timer(model) as seconds:
        tokens = generate(model, prompt, max_new_tokens=n, eos_id=None, use_cache=use_cache)
    return seconds, tokens


def binned(values: list[float], width: int) -> list[float]:
    """Means over consecutive bins of ``width`` values."""
    return [statistics.fmean(values[i: i + width]) for i in range(0, len(values), width)]


def running_totals(values: list[float], checkpoints: list[int]) -> list[float]:
    """Sum of the first N values for each N in ``checkpoints``."""
    return [math.fsum(values[:n]) for n in checkpoints]


def training_round(models: dict[str, nn.Module], s: dict, r: int) -> list[dict[str, Any]]:
    """One round of training-step times at every length, the order of the models alternating."""
    names = list(models) if r % 2 == 0 else list(models)[::-1]
    rows = []
    for length in s["train_lengths"]:
        row: dict[str, Any] = {"round": r, "length": length}
        for name in names:
            gen = torch.Generator().manual_seed(1000 * r + length)
            row[f"{name}_s"] = train_step_seconds(models[name], s["batch"], length, s["reps"], gen)
        rows.append(row)
    return rows


@torch.no_grad()
def decoding_round(model: nn.Module, s: dict, r: int) -> dict[str, Any]:
    """Per-token latencies with and without the cache, and the one-pass scoring of the same text."""
    model.eval()
    n, row = s["decode_tokens"], {"round": r}
    modes = [("cached", True, 1), ("uncached", False, 1), ("cached_batch", True, s["decode_batch"])]
    tokens = {}
    for name, use_cache, batch in (modes if r % 2 == 0 else modes[::-1]):
        seconds, tokens[name] = decode_latencies(model, n, batch, use_cache, torch.Generator().manual_seed(r))
        row[f"{name}_bins"] = binned(seconds, s["bin"])
        row[f"{name}_totals"] = running_totals(seconds, s["checkpoints"])
    row["same_tokens"] = torch.equal(tokens["cached"], tokens["uncached"])
    text = tokens["cached"]  # (1, 1 + n): prompt and generated tokens
    row["pass_s"] = [median_seconds(lambda k=k: model(text[:, :k]), s["reps"]) for k in s["checkpoints"]]
    return row


def run(size: str, seeds: int, out: Path) -> dict[str, Any]:
    started = time.perf_counter()
    s = SIZES[size]
    with base.one_thread():
        torch.manual_seed(0)
        longest = max(s["train_lengths"] + [s["decode_tokens"] + 1])
        models = {arch: build_model(lm_config(s, arch, longest)) for arch in ("transformer", "lstm")}
        params = {arch: sum(p.numel() for p in m.parameters()) for arch, m in models.items()}
        train, decode = [], []
        for r in range(seeds):  # rounds interleave every setting, so drift of the machine hits all alike
            train += training_round(models, s, r)
            decode.append(decoding_round(models["transformer"], s, r))
    results = {"train": train, "decode": decode, "params": params,
               "sequential_steps": {"transformer": s["n_layers"],
                                    "lstm": {str(t): t * s["n_layers"] for t in s["train_lengths"]}}}
    config = {**s, "vocab_size": VOCAB, "d_ff": 4 * s["d_model"], "position": "sinusoidal", "norm": "pre",
              "weights": "random init (timing only)", "decoding": "greedy, 1-token prompt, eos off",
              "train_step": "forward + backward of cross-entropy, no optimizer", "threads": 1, "precision": "fp32"}
    names = [plot(results, s, out)]
    return base.finish(verdict, base.record(NUMBER, size, seeds, out, config, results, names, started), out)


# -- what the numbers say -------------------------------------------------------------------------


def growth_exponent(totals: list[float], checkpoints: list[int]) -> float:
    """log-log slope of total time vs N over the last two octaves of ``checkpoints``."""
    i = max(0, len(checkpoints) - 3)
    return math.log(totals[-1] / totals[i]) / math.log(checkpoints[-1] / checkpoints[i])


def late_over_early(bins: list[float]) -> float:
    """Per-token latency over the last two bins / over bins 1–2 (bin 0 holds the prefill)."""
    return statistics.fmean(bins[-2:]) / statistics.fmean(bins[1:3])


def summary(values: list[float]) -> dict[str, float]:
    return {"mean": base.mean(values), "sd": base.std(values)}


def above(stat: dict[str, float], threshold: float) -> bool:
    return stat["mean"] - N_SD * stat["sd"] > threshold


def below(stat: dict[str, float], threshold: float) -> bool:
    return stat["mean"] + N_SD * stat["sd"] < threshold


def effects(metrics: dict[str, Any]) -> dict[str, Any]:
    """Each claim's deciding ratio, mean ± sd over rounds."""
    r, checkpoints = metrics["results"], metrics["config"]["checkpoints"]
    rows = r["decode"]
    lengths = sorted({x["length"] for x in r["train"]})
    lstm_over_tf = {t: summary([x["lstm_s"] / x["transformer_s"] for x in r["train"] if x["length"] == t])
                    for t in lengths}
    return {
        "gen_over_pass": summary([x["cached_totals"][-1] / x["pass_s"][-1] for x in rows]),
        "exponent_cached": summary([growth_exponent(x["cached_totals"], checkpoints) for x in rows]),
        "exponent_uncached": summary([growth_exponent(x["uncached_totals"], checkpoints) for x in rows]),
        "exponent_gap": summary([growth_exponent(x["uncached_totals"], checkpoints)
                                 - growth_exponent(x["cached_totals"], checkpoints) for x in rows]),
        "growth_cached": summary([late_over_early(x["cached_bins"]) for x in rows]),
        "growth_cached_batch": summary([late_over_early(x["cached_batch_bins"]) for x in rows]),
        "growth_uncached": summary([late_over_early(x["uncached_bins"]) for x in rows]),
        "lstm_over_transformer": lstm_over_tf,
        "same_tokens": all(x["same_tokens"] for x in rows),
    }


def pm(stat: dict[str, float], digits: int = 2) -> str:
    return f"{stat['mean']:.{digits}f} ± {stat['sd']:.{digits}f}"


def claim_outcomes(e: dict[str, Any]) -> dict[str, str]:
    """"held", "failed" or "unclear" per claim, from the ratios and their noise."""
    def side(held: bool, failed: bool) -> str:
        return "held" if held else "failed" if failed else "unclear"

    growth = [e["growth_cached"], e["growth_cached_batch"]]
    speed = list(e["lstm_over_transformer"].values())
    return {
        "parallel_training": side(above(e["gen_over_pass"], MIN_PARALLEL_GAIN),
                                  below(e["gen_over_pass"], MIN_PARALLEL_GAIN)),
        "quadratic_without_cache": side(above(e["exponent_gap"], MIN_EXPONENT_GAP),
                                        below(e["exponent_gap"], MIN_EXPONENT_GAP)),
        "flat_with_cache": side(all(below(g, 1 + MIN_GROWTH) for g in growth),
                                any(above(g, 1 + MIN_GROWTH) for g in growth)),
        "faster_than_lstm": side(all(above(x, 1.0) for x in speed), all(below(x, 1.0) for x in speed)),
    }


def verdict(metrics: dict[str, Any]) -> tuple[str, str]:
    undecided = base.undecidable(metrics, MIN_SEEDS)
    if undecided:
        return undecided
    e = effects(metrics)
    outcome = claim_outcomes(e)
    speed = e["lstm_over_transformer"]
    numbers = (f"generating N={metrics['config']['checkpoints'][-1]} tokens takes {pm(e['gen_over_pass'], 1)}× the "
               f"teacher-forced pass; total-time exponent {pm(e['exponent_uncached'])} without the cache vs "
               f"{pm(e['exponent_cached'])} with it; cached per-token latency late/early {pm(e['growth_cached'])} "
               f"at batch 1 and {pm(e['growth_cached_batch'])} at batch {metrics['config']['decode_batch']}; "
               f"LSTM/Transformer training-step time {pm(speed[min(speed)])} at T={min(speed)} to "
               f"{pm(speed[max(speed)])} at T={max(speed)} (same width, 1 CPU thread)")
    if not e["same_tokens"]:
        return "inconclusive", (f"cached and uncached decoding gave different tokens, so the timings "
                                f"compare unlike work; {numbers}")
    held = [k for k, v in outcome.items() if v == "held"]
    failed = [k for k, v in outcome.items() if v == "failed"]
    if len(held) == len(outcome):
        return "confirmed", f"every claim held beyond {N_SD:g} sd of round-to-round noise: {numbers}"
    if len(failed) == len(outcome):
        return "refuted", f"every claim failed beyond {N_SD:g} sd of round-to-round noise: {numbers}"
    if not held and not failed:
        return "inconclusive", f"no claim clears round-to-round noise: {numbers}"
    unclear = [k for k, v in outcome.items() if v == "unclear"]
    parts = [f"held: {', '.join(held) or 'none'}", f"failed: {', '.join(failed) or 'none'}"]
    parts += [f"unclear: {', '.join(unclear)}"] if unclear else []
    return "depends", f"{'; '.join(parts)} — {numbers}"


# -- tables and plot ------------------------------------------------------------------------------


def tables(metrics: dict[str, Any]) -> list[Table]:
    r, cfg = metrics["results"], metrics["config"]
    train_rows = []
    for t in sorted({x["length"] for x in r["train"]}):
        cell = [x for x in r["train"] if x["length"] == t]
        tf, lstm = summary([x["transformer_s"] * 1e3 for x in cell]), summary([x["lstm_s"] * 1e3 for x in cell])
        ratio = summary([x["lstm_s"] / x["transformer_s"] for x in cell])
        train_rows.append([str(t), pm(tf, 1), pm(lstm, 1), pm(ratio), str(cfg["n_layers"]), str(t * cfg["n_layers"])])
    first = (["T", "Transformer step (ms)", "LSTM step (ms)", "LSTM / Transformer", "Transformer sequential steps",
              "LSTM sequential steps"], train_rows)
    decode_rows = []
    for i, n in enumerate(cfg["checkpoints"]):
        col = lambda key: summary([x[key][i] * 1e3 for x in r["decode"]])  # noqa: E731
        gain = summary([x["cached_totals"][i] / x["pass_s"][i] for x in r["decode"]])
        decode_rows.append([str(n), pm(col("cached_totals"), 1), pm(col("uncached_totals"), 1),
                            pm(col("cached_batch_totals"), 1), pm(col("pass_s"), 2), pm(gain, 1)])
    second = (["N tokens", "cached total (ms)", "uncached total (ms)", f"cached, batch {cfg['decode_batch']} (ms)",
               "teacher-forced pass (ms)", "generate / pass"], decode_rows)
    e = effects(metrics)
    third = (["quantity", "mean ± sd over rounds"],
             [["total-time exponent, cached", pm(e["exponent_cached"])],
              ["total-time exponent, uncached", pm(e["exponent_uncached"])],
              ["per-token latency late/early, cached batch 1", pm(e["growth_cached"])],
              [f"per-token latency late/early, cached batch {cfg['decode_batch']}", pm(e["growth_cached_batch"])],
              ["per-token latency late/early, uncached", pm(e["growth_uncached"])],
              ["cached tokens = uncached tokens", str(e["same_tokens"])],
              ["parameters (Transformer, LSTM)", f"{r['params']['transformer']}, {r['params']['lstm']}"]])
    return [first, second, third]


def plot(results: dict[str, Any], s: dict, out: Path) -> str:
    fig, (ax_train, ax_token, ax_total) = plots.figure(3)
    for name, color in (("transformer", "C0"), ("lstm", "C1")):
        for x in results["train"]:
            ax_train.scatter(x["length"], x[f"{name}_s"] * 1e3, color=color, s=12, alpha=0.7)
        ax_train.plot([], [], "o", color=color, label="Transformer" if name == "transformer" else "LSTM")
    plots.log_ticks(ax_train, s["train_lengths"])
    ax_train.set(yscale="log", xlabel="sequence length T", ylabel="training step, fwd + bwd (ms)",
                 title=f"batch {s['batch']}, d_model {s['d_model']}, 1 thread")
    ax_train.legend(fontsize=8)
    modes = (("cached", "C2", "KV cache, batch 1"), ("uncached", "C3", "no cache, batch 1"),
             ("cached_batch", "C4", f"KV cache, batch {s['decode_batch']}"))
    for key, color, label in modes:
        for i, x in enumerate(results["decode"]):
            centres = [(j + 0.5) * s["bin"] for j in range(len(x[f"{key}_bins"]))]
            ax_token.plot(centres, [v * 1e3 for v in x[f"{key}_bins"]], color=color, alpha=0.6,
                          label=label if i == 0 else None)
            ax_total.plot(s["checkpoints"], [v for v in x[f"{key}_totals"]], "o-", color=color, alpha=0.6,
                          markersize=3, label=label if i == 0 else None)
    ax_token.set(yscale="log", xlabel="position of the generated token", ylabel="per-token latency (ms)",
                 title=f"bins of {s['bin']} tokens, each round a line")
    ax_token.legend(fontsize=8)
    plots.log_ticks(ax_total, s["checkpoints"])
    ax_total.set(yscale="log", xlabel="tokens generated N", ylabel="total decoding time (s)",
                 title="slope 1 = linear, 2 = quadratic")
    ax_total.legend(fontsize=8)
    return plots.save(fig, out, "q17_parallelism.png")
