"""Question 31: the Transformer's memory and compute problems, and their fixes (显存/计算)

Claims under test (as commonly answered): attention costs O(n²) time and memory, so long
sequences run out of memory; the fused kernel (FlashAttention-style) removes the n² memory; a
sliding window makes attention O(n·w); gradient checkpointing trades compute for memory;
gradient accumulation cuts memory per step at the same result; bf16 halves activation memory;
Transformer-XL's segments keep training memory flat in the text's length.

Method: one training step (forward + backward of the LM loss) of a small rotary LM over one
sequence of T tokens, for T from short to long, with each fix switched on alone against the
plain fused, ``is_causal`` path. Two numbers per (fix, T):
* time per step, the median over rounds (each round runs every variant once, interleaved, so
  a slow moment of the machine hits all of them; "seeds" are these rounds here);
* activation memory: the bytes of the tensors autograd keeps for the backward pass, counted
  by ``torch.autograd.graph.saved_tensors_hooks`` (each storage once). This is what grows with
  T and what the fixes act on; weights, gradients and optimiser state do not depend on T.
  Checkpointing keeps its layers' inputs outside the hooks; they are added (one (B, T, d)
  tensor per layer).
The table gives each fix's saving (peer ÷ fix) and cost at every length.

Reproduce: ``qkv ask 31 --size full``.
"""

from __future__ import annotations

import time
from contextlib import nullcontext
from pathlib import Path
from statistics import median
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..config import ModelConfig
from ..models import build_model
from ..train.runtime import cpu_has_fast_bf16
from . import base, plots
from .table import Table, fmt

NUMBER = 31
TITLE = "Memory and compute problems and fixes"
KEYWORD = "显存/计算"
CLAIMS = [
    "The reference (materialised) attention's memory grows as n²; the fused kernel's does not.",
    "A sliding window computed in blocks saves time and memory against the same window as a mask.",
    "Gradient checkpointing cuts activation memory and costs time.",
    "Gradient accumulation over micro-batches cuts activation memory per step.",
    "Transformer-XL segments keep activation memory flat as the text gets longer.",
]
ANSWER = """\
A training step keeps every activation the backward pass will need. Per layer that is O(T·d)
for the projections and feed-forward, plus whatever attention keeps: the reference path keeps
the (T, T) weights of every head — O(T²) — while a fused kernel keeps only its output and the
softmax's log-sum-exp and recomputes the rest in backward, so its memory is O(T) (its time is
still O(T²)). A sliding window of w makes both O(T·w) only if the kernel skips what the window
excludes; as a mask over full attention it still does all the work. Checkpointing keeps only each
layer's input and recomputes the layer in backward: memory down by the per-layer activations,
time up by about one more forward. Accumulation splits a batch into micro-batches whose
activations live one at a time. Segments with a detached memory (Transformer-XL) back-propagate
one segment at a time, so memory is that of one segment whatever the text's length. bf16 halves
the bytes of what it casts. The measurement counts the saved bytes exactly and times each
step, so every trade-off is a number at every length."""
FULL_SEEDS = 5
SMOKE_SEEDS = 1
MIN_SEEDS = 3
N_SD = 2.0
MIN_RATIO = 1.2  # a saving must be at least 20% to count
VARIANTS = ("is_causal", "reference", "window", "window_mask", "checkpoint", "accumulate", "batch2", "xl", "bf16")
PEERS = {"reference": "is_causal", "window": "window_mask", "checkpoint": "is_causal", "accumulate": "batch2",
         "xl": "is_causal", "bf16": "is_causal"}  # fix → what it is measured against
SIZES = {
    "smoke": {"d_model": 32, "n_layers": 1, "lengths": [32, 64], "window": 16, "segment": 32},
    "full": {"d_model": 128, "n_layers": 2, "lengths": [256, 1024, 4096], "window": 128, "segment": 256},
}


def config(s: dict, T: int, **changes: Any) -> ModelConfig:
    return ModelConfig(family="lm", vocab_size=256, d_model=s["d_model"], n_layers=s["n_layers"],
                       n_heads=4 if s["d_model"] >= 64 else 2, d_ff=4 * s["d_model"], max_len=T, position="rope",
                       dropout_embed=0.0, dropout_residual=0.0, **changes)


class SavedBytes:
    """Bytes of the tensors autograd saves for backward (each storage counted once); ``done()``
    closes one forward whose saved tensors are then freed by its backward, keeping the peak."""

    def __init__(self) -> None:
        self.storages: dict[int, int] = {}
        self.peak = 0

    def pack(self, t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        self.storages[storage.data_ptr()] = storage.nbytes()
        return t

    def hooks(self):
        return torch.autograd.graph.saved_tensors_hooks(self.pack, lambda t: t)

    def done(self) -> None:
        self.peak, self.storages = max(self.peak, sum(self.storages.values())), {}


def loss_of(model: nn.Module, ids: torch.Tensor, cache=None) -> torch.Tensor:
    logits = model(ids[:, :-1], cache=cache) if cache is not None else model(ids[:, :-1])  # (B, T, V)
    return F.cross_entropy(logits.flatten(0, 1), ids[:, 1:].flatten())


def build(variant: str, s: dict, T: int) -> nn.Module:
    changes = {"window": s["window"]} if variant in ("window", "window_mask") else {}
    changes = {"xl_memory": s["segment"]} if variant == "xl" else changes
    torch.manual_seed(0)
    model = build_model(config(s, T, **changes))
    for layer in model.decoder.layers:
        layer.self_attn.capture = variant == "reference"
    model.decoder.gradient_checkpointing = variant == "checkpoint"
    if variant == "window_mask":  # any hook keeps the stack off the block path: the band as a (T, T) mask
        model.decoder.mask_hook = lambda allowed, T_, S_: allowed
    return model


def pieces(variant: str, s: dict, ids: torch.Tensor) -> list[tuple[torch.Tensor, bool]]:
    """The forwards one step makes: (ids, carries the memory) — one, one per row, or one per segment."""
    if variant == "accumulate":
        return [(ids[row:row + 1], False) for row in range(ids.shape[0])]
    if variant == "xl":
        return [(ids[:, start:start + s["segment"] + 1], True) for start in range(0, ids.shape[1] - 1, s["segment"])]
    return [(ids, False)]


def step_fn(variant: str, s: dict, T: int) -> Callable[[SavedBytes], None]:
    """One forward + backward of ``variant`` at length T; saved tensors go to the given counter."""
    model = build(variant, s, T)
    ids = torch.randint(0, 256, (2 if variant in ("accumulate", "batch2") else 1, T + 1))
    autocast = torch.autocast("cpu", dtype=torch.bfloat16) if variant == "bf16" else nullcontext()
    parts = pieces(variant, s, ids)

    def step(counter: SavedBytes) -> None:
        memory = model.new_cache(max_len=s["segment"]) if variant == "xl" else None
        for part, carries in parts:
            with autocast, counter.hooks():
                loss = loss_of(model, part, cache=memory if carries else None) / len(parts)
            counter.done()
            loss.backward()  # frees what this forward saved before the next one runs
        model.zero_grad(set_to_none=True)

    return step


def measure(s: dict, T: int, rounds: int, variants: list[str]) -> list[dict[str, Any]]:
    """Per variant: saved MiB (deterministic) and the step time of each round (interleaved)."""
    steps = {v: step_fn(v, s, T) for v in variants}
    rows = {v: {"variant": v, "T": T, "times_s": []} for v in variants}
    for v, step in steps.items():  # the first call: warm-up and the memory count
        counter = SavedBytes()
        step(counter)
        kept_inputs = 4 * T * s["d_model"] * s["n_layers"] if v == "checkpoint" else 0  # (1, T, d) per layer
        rows[v]["saved_mib"] = (counter.peak + kept_inputs) / 2**20
    for _ in range(rounds):
        for v, step in steps.items():
            start = time.perf_counter()
            step(SavedBytes())
            rows[v]["times_s"].append(time.perf_counter() - start)
    return list(rows.values())


def run(size: str, seeds: int, out: Path) -> dict[str, Any]:
    started = time.perf_counter()
    s = SIZES[size]
    variants = [v for v in VARIANTS if v != "bf16" or cpu_has_fast_bf16()]
    with base.one_thread():
        rows = [row for T in s["lengths"] for row in measure(s, T, seeds, variants)]
    results = {"runs": rows, "bf16_measured": "bf16" in variants}
    config_record = {**s, "model": "LM, rope, pre-LN, d_ff 4d, vocab 256, batch 1 (2 for accumulate/batch2)",
                     "work": "forward + backward of the LM loss", "threads": 1, "peers": PEERS,
                     "memory": "bytes autograd saves for backward (saved_tensors_hooks), per storage"}
    names = [plot(results, s, out)]
    return base.finish(verdict, base.record(NUMBER, size, seeds, out, config_record, results, names, started), out)


# -- verdict ------------------------------------------------------------------------------------


def row(metrics: dict[str, Any], variant: str, T: int) -> dict[str, Any]:
    return next(r for r in metrics["results"]["runs"] if r["variant"] == variant and r["T"] == T)


def saving(metrics: dict[str, Any], fix: str, T: int) -> dict[str, float]:
    """peer ÷ fix for memory and for time (time: paired by round, mean ± sd of the ratio)."""
    mine, peer = row(metrics, fix, T), row(metrics, PEERS[fix], T)
    ratios = [p / m for p, m in zip(peer["times_s"], mine["times_s"])]
    return {"memory": peer["saved_mib"] / max(mine["saved_mib"], 1e-9), "time": base.mean(ratios),
            "time_sd": base.std(ratios)}


def faster(x: dict[str, float]) -> bool:
    return x["time"] > MIN_RATIO and x["time"] - N_SD * x["time_sd"] > 1.0


def slower(x: dict[str, float]) -> bool:
    return x["time"] < 1 / MIN_RATIO and x["time"] + N_SD * x["time_sd"] < 1.0


def claim_results(metrics: dict[str, Any]) -> dict[str, bool]:
    lengths = sorted({r["T"] for r in metrics["results"]["runs"]})
    short, long = lengths[0], lengths[-1]
    grow = lambda v: row(metrics, v, long)["saved_mib"] / row(metrics, v, short)["saved_mib"]  # noqa: E731
    # what the reference path keeps beyond the fused one: the attention weights, the n² term
    extra = lambda T: row(metrics, "reference", T)["saved_mib"] - row(metrics, "is_causal", T)["saved_mib"]  # noqa: E731
    n2, n1 = (long / short) ** 2, long / short
    return {
        "reference memory grows as n², fused does not": extra(short) > 0 and extra(long) / extra(short) > 0.5 * n2
        and grow("is_causal") < 1.5 * n1,
        "block window saves time and memory vs the mask": faster(saving(metrics, "window", long))
        and saving(metrics, "window", long)["memory"] >= 1.0,
        "checkpointing cuts memory and costs time": saving(metrics, "checkpoint", long)["memory"] > MIN_RATIO
        and slower(saving(metrics, "checkpoint", long)),
        "accumulation cuts memory per step": saving(metrics, "accumulate", long)["memory"] > MIN_RATIO,
        "XL segments keep memory flat": grow("xl") < MIN_RATIO and saving(metrics, "xl", long)["memory"] > MIN_RATIO,
    }


def verdict(metrics: dict[str, Any]) -> tuple[str, str]:
    undecided = base.undecidable(metrics, MIN_SEEDS)
    if undecided:
        return undecided
    held = claim_results(metrics)
    long = max(r["T"] for r in metrics["results"]["runs"])
    numbers = "; ".join(f"{fix} vs {PEERS[fix]} at {long}: memory ÷{x['memory']:.2f}, time ÷{x['time']:.2f} ± "
                        f"{x['time_sd']:.2f}" for fix in PEERS if any(r["variant"] == fix for r in metrics["results"]["runs"])
                        for x in [saving(metrics, fix, long)])
    ok = [c for c, v in held.items() if v]
    if len(ok) == len(held):
        return "confirmed", f"every claim holds (savings as peer ÷ fix): {numbers}"
    if not ok:
        return "refuted", f"no claim holds: {numbers}"
    failed = ", ".join(c for c, v in held.items() if not v)
    return "depends", f"not every claim holds — not: {failed}; {numbers}"


# -- table and plot -------------------------------------------------------------------------------


def tables(metrics: dict[str, Any]) -> list[Table]:
    out = []
    for r in metrics["results"]["runs"]:
        peer = PEERS.get(r["variant"])
        x = saving(metrics, r["variant"], r["T"]) if peer else None
        out.append([r["variant"], str(r["T"]), fmt(1e3 * median(r["times_s"])), fmt(r["saved_mib"]),
                    peer or "—", f"÷{x['memory']:.2f}" if x else "—",
                    f"÷{x['time']:.2f} ± {x['time_sd']:.2f}" if x else "—"])
    claims = [[c, "holds" if v else "does not hold"] for c, v in claim_results(metrics).items()] \
        if metrics["seeds"] >= 1 else []
    return [(["variant", "T", "step ms (median)", "saved for backward (MiB)", "against", "memory saving",
              "time saving"], out), (["claim", "outcome"], claims)]


def plot(results: dict[str, Any], s: dict, out: Path) -> str:
    fig, (ax_mem, ax_time) = plots.figure(2, width=5.0)
    variants = sorted({r["variant"] for r in results["runs"]}, key=VARIANTS.index)
    for i, v in enumerate(variants):
        rows = sorted((r for r in results["runs"] if r["variant"] == v), key=lambda r: r["T"])
        Ts = [r["T"] for r in rows]
        ax_mem.plot(Ts, [r["saved_mib"] for r in rows], marker="o", color=f"C{i}", label=v)
        for r in rows:
            ax_time.scatter([r["T"]] * len(r["times_s"]), [1e3 * t for t in r["times_s"]], s=8, color=f"C{i}", alpha=0.6)
        ax_time.plot(Ts, [1e3 * median(r["times_s"]) for r in rows], color=f"C{i}", label=v)
    for ax in (ax_mem, ax_time):
        plots.log_ticks(ax, s["lengths"])
        ax.set(yscale="log", xlabel="sequence length T (tokens)")
    ax_mem.set(ylabel="activations saved for backward (MiB)", title="memory per training step")
    ax_time.set(ylabel="ms per step (points: rounds)", title="time per training step (1 thread)")
    ax_mem.legend(fontsize=7)
    return plots.save(fig, out, "q31_memory_compute.png")
