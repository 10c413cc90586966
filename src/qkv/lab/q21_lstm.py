"""Question 21: Transformer vs RNN/LSTM: main differences (RNN/LSTM)

Claims under test (as commonly answered): a Transformer language model beats an LSTM of the
same size trained on the same data for the same number of steps; it also wins at equal
training time, because attention processes all positions in parallel where the recurrence
must go one step after another; and because attention reaches every earlier token in one
step (path length 1, not t), it makes more use of distant context — its loss keeps falling
with the position in the context where the LSTM's levels off.

Method, every number per seed: a pre-norm Transformer LM (d_model 64, 2 layers, 4 heads,
sinusoidal positions) and an LSTM LM (``arch="lstm"``, 2 layers) whose width is the one that
brings its parameter count closest to the Transformer's (tied embeddings in both). Both
train on Tiny Shakespeare bytes with the same initial seed and the same batches (context
128, batch 16), AdamW, warm-up then a constant learning rate — constant so that a run can
be continued for the equal-time comparison without a schedule that depends on its length.
The learning rates are each architecture's best of {1e-3, 3e-3, 6e-3} in a 600-step run
with seed 0 (Transformer 3e-3, LSTM 6e-3). Held-out loss (the first 16 k characters of the
validation text) is measured every ``eval_every`` steps, together with the training time
spent so far (evaluation not counted), all on one CPU thread.
1. Equal steps: held-out loss of each after ``steps`` updates.
2. Equal wall-clock: the faster of the two keeps training (the same batch stream) until
   its training time reaches the slower one's time for ``steps`` updates; held-out loss then.
3. Long-range use: per-position held-out loss (``qkv.train.per_position_loss``) over the
   whole validation text in windows of 128 at the equal-steps point, and the drop from the
   mean over positions 32–63 to the mean over 96–127: how much the last quarter of the
   context still lowers the loss.

Reproduce: ``qkv ask 21 --size full``.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any, Iterator

import torch
from torch import Tensor, nn

from ..config import ModelConfig
from ..data import random_lm_batch, sequential_lm_batches
from ..models import build_model, n_params
from ..tasks.common import mean_token_loss
from ..train import Trainer, TrainConfig, per_position_loss
from . import base, plots, shared
from .table import Table, fmt

NUMBER = 21
TITLE = "Transformer vs RNN/LSTM: main differences"
KEYWORD = "RNN/LSTM"
CLAIMS = [
    "At equal parameters, data and steps, a Transformer LM reaches a lower held-out loss than an LSTM LM.",
    "It also wins at equal training wall-clock time (attention is parallel over positions).",
    "It uses distant context more: its loss keeps falling with position where the LSTM's levels off.",
]
ANSWER = """\
An LSTM reads a sequence one token at a time and carries everything it knows about the past
in a fixed-size state (h, c): step t needs step t − 1, so training is sequential in time, and
information from k tokens back must survive k gated updates. Self-attention computes every
position at once from all earlier ones: the work per layer is one batch of matrix products
(parallel over positions, but O(T²) in the context), and any earlier token is one attention
hop away, with a positional encoding supplying the order the recurrence gets for free. So the
textbook expectation is a Transformer that trains faster per unit of hardware and uses long
contexts better, at the price of quadratic cost and weaker built-in bias towards recency.
Whether that turns into a better model at a small size and budget is an empirical matter,
and two things argue against it here. Parallelism over positions pays on hardware with many
parallel units; on one CPU thread only the amount of work and the number of operations
count, and a fused LSTM kernel runs fewer, larger operations per step than a Transformer
layer's attention, norms and feed-forward. And the LSTM's order and recency are built in,
while a Transformer must first learn from data to look back at the right tokens. The
measurements compare held-out loss at equal steps and at equal one-thread CPU time, with
parameter counts matched, and the per-position loss says how many characters of context
each model has learnt to use: a curve that stops falling after the first few positions is a
model that has not yet learnt to look further back, whatever its architecture allows."""
FULL_SEEDS = 3
SMOKE_SEEDS = 1
MIN_SEEDS = 3
N_SD = 2.0
MIN_GAP = 0.02  # nats/char: a smaller loss difference does not matter
MIN_RANGE_GAP = 0.01  # nats/char: a smaller difference in late-context gain does not matter
ARCHS = ("transformer", "lstm")
LR = {"transformer": 3e-3, "lstm": 6e-3}  # each one's best of {1e-3, 3e-3, 6e-3}, see the docstring
SIZES = {
    "smoke": {"d_model": 16, "n_layers": 1, "n_heads": 2, "context": 32, "batch": 4, "steps": 4, "eval_every": 2,
              "val_chars": 1024, "position_chars": 1024, "max_time_ratio": 2.0, "dropout": 0.0},
    "full": {"d_model": 64, "n_layers": 2, "n_heads": 4, "context": 128, "batch": 16, "steps": 1000,
             "eval_every": 100, "val_chars": 16384, "position_chars": None, "max_time_ratio": 3.0, "dropout": 0.0},
}


def transformer_config(s: dict) -> ModelConfig:
    return lm_config(s, "transformer", s["d_model"], s["n_heads"])


def lstm_config(s: dict, width: int) -> ModelConfig:
    # n_heads=1: the LSTM ignores it, but the config still asks it to divide d_model
    return lm_config(s, "lstm", width, 1)


def lm_config(s: dict, arch: str, width: int, n_heads: int) -> ModelConfig:
    return ModelConfig(family="lm", arch=arch, vocab_size=256 + shared.FIRST_BYTE, d_model=width,
                       n_layers=s["n_layers"], n_heads=n_heads, d_ff=4 * width, max_len=s["context"],
                       norm_placement="pre", dropout_embed=s["dropout"], dropout_residual=s["dropout"])


def matched_lstm_width(s: dict) -> int:
    """The even LSTM width whose parameter count is closest to the Transformer's (bisection:
    the count grows with the width)."""
    target = n_params(build_model(transformer_config(s)))
    count = lambda d: n_params(build_model(lstm_config(s, d)))  # noqa: E731
    lo, hi = 2, 2
    while count(hi) < target:
        lo, hi = hi, 2 * hi
    while hi - lo > 2:
        mid = (lo + hi) // 4 * 2  # even: the sinusoidal check on d_model wants it, the LSTM does not care
        lo, hi = (mid, hi) if count(mid) < target else (lo, mid)
    return min((lo, hi), key=lambda d: abs(count(d) - target))


def configs(s: dict) -> dict[str, ModelConfig]:
    return {"transformer": transformer_config(s), "lstm": lstm_config(s, matched_lstm_width(s))}


def trainer(model: nn.Module, arch: str, s: dict, seed: int, folder: str, schedule: str = "constant") -> Trainer:
    tcfg = TrainConfig(lr=LR[arch], schedule=schedule, warmup_steps=max(1, s["steps"] // 10),
                       max_steps=s["steps"], label_smoothing=0.0, precision="fp32", device="cpu", seed=seed,
                       log_every=10**9, weight_decay=0.0)
    return Trainer(model, tcfg, lambda epoch: [], folder, progress=False)


def batch_stream(stream: Tensor, s: dict, seed: int) -> Iterator[dict[str, Tensor]]:
    """The same endless batch sequence for both architectures of one seed."""
    gen = torch.Generator().manual_seed(10_000 + seed)
    while True:
        yield random_lm_batch(stream, s["context"], s["batch"], gen)


@torch.no_grad()
def held_out_loss(model: nn.Module, held_out: Tensor, context: int) -> float:
    model.eval()
    loss = mean_token_loss(model, sequential_lm_batches(held_out, context, 64))["loss"]
    model.train()
    return loss


@torch.no_grad()
def loss_by_position(model: nn.Module, text: Tensor, context: int) -> list[float]:
    """Mean held-out loss at each position 0 … context − 1 of non-overlapping windows (nats/char)."""
    model.eval()
    total, count = torch.zeros(context), torch.zeros(context)
    for batch in sequential_lm_batches(text, context, 64):
        summed, n = per_position_loss(model.forward_batch(batch), batch["labels"])  # (T,), (T,)
        total, count = total + summed, count + n
    return (total / count.clamp(min=1)).tolist()


def late_gain(curve: list[float]) -> float:
    """Mean loss over the second quarter of the positions minus the mean over the last quarter."""
    q = len(curve) // 4
    return base.mean(curve[q:2 * q]) - base.mean(curve[3 * q:])


def train_curve(arch: str, cfg: ModelConfig, s: dict, seed: int, stream: Tensor, held_out: Tensor,
                folder: str) -> tuple[nn.Module, Trainer, Iterator, list[dict[str, float]]]:
    """``steps`` updates, held-out loss every ``eval_every``; the curve's seconds are training only."""
    torch.manual_seed(seed)
    model = build_model(cfg)
    run, batches, seconds, curve = trainer(model, arch, s, seed, folder), batch_stream(stream, s, seed), 0.0, []
    for step in range(1, s["steps"] + 1):
        batch = next(batches)
        started = time.perf_counter()
        run.train_step([batch])
        seconds += time.perf_counter() - started
        if step % s["eval_every"] == 0 or step == s["steps"]:
            curve.append({"step": step, "seconds": seconds, "loss": held_out_loss(model, held_out, s["context"])})
    return model, run, batches, curve


def continue_until(run: Trainer, batches: Iterator, seconds: float, budget: float, max_steps: int) -> tuple[int, float]:
    """Keep training until the training time reaches ``budget`` s (or ``max_steps`` updates)."""
    step = run.state.step
    while seconds < budget and step < max_steps:
        batch = next(batches)
        started = time.perf_counter()
        run.train_step([batch])
        seconds += time.perf_counter() - started
        step += 1
    return step, seconds


def compare(seed: int, s: dict, cfgs: dict[str, ModelConfig], stream: Tensor, held_out: Tensor,
            position_text: Tensor) -> dict[str, Any]:
    row: dict[str, Any] = {"seed": seed}
    runs = {}
    with tempfile.TemporaryDirectory() as tmp:  # the trainers' logs; no checkpoint is kept
        for arch in ARCHS:
            model, run, batches, curve = train_curve(arch, cfgs[arch], s, seed, stream, held_out, f"{tmp}/{arch}")
            runs[arch] = (model, run, batches)
            row[f"{arch}_curve"], row[f"{arch}_equal_steps"] = curve, curve[-1]["loss"]
            row[f"{arch}_position_loss"] = [round(x, 5) for x in loss_by_position(model, position_text, s["context"])]
            row[f"{arch}_late_gain"] = late_gain(row[f"{arch}_position_loss"])
        budget = max(row[f"{a}_curve"][-1]["seconds"] for a in ARCHS)
        for arch in ARCHS:
            model, run, batches = runs[arch]
            step, seconds = continue_until(run, batches, row[f"{arch}_curve"][-1]["seconds"], budget,
                                           int(s["max_time_ratio"] * s["steps"]))
            loss = held_out_loss(model, held_out, s["context"]) if step > s["steps"] else row[f"{arch}_equal_steps"]
            row[f"{arch}_equal_time"] = {"step": step, "seconds": seconds, "loss": loss}
    return row


def run(size: str, seeds: int, out: Path) -> dict[str, Any]:
    started = time.perf_counter()
    s = SIZES[size]
    with base.one_thread():
        stream, val = shared.shakespeare_ids("train"), shared.shakespeare_ids("val")
        held_out, position_text = val[: s["val_chars"]], val[: s["position_chars"]]
        cfgs = configs(s)
        rows = [compare(seed, s, cfgs, stream, held_out, position_text) for seed in range(seeds)]
    params = {arch: n_params(build_model(cfg)) for arch, cfg in cfgs.items()}
    results = {"runs": rows, "params": params, "lstm_width": cfgs["lstm"].d_model}
    config = {**s, "lr": LR, "schedule": "linear warm-up (steps/10), then constant", "optimizer": "AdamW, no decay",
              "data": "Tiny Shakespeare, bytes", "held_out": f"first {len(held_out)} validation characters",
              "position_text": f"first {len(position_text)} validation characters", "precision": "fp32",
              "transformer": "pre-norm, sinusoidal positions, d_ff 4·d, tied embeddings",
              "lstm": f"{cfgs['lstm'].n_layers} layers, width {cfgs['lstm'].d_model}, tied embeddings"}
    names = [plot(results, out)]
    return base.finish(verdict, base.record(NUMBER, size, seeds, out, config, results, names, started), out)


COLORS = {"transformer": "C0", "lstm": "C1"}


def plot(results: dict[str, Any], out: Path) -> str:
    fig, (ax_steps, ax_time, ax_pos) = plots.figure(3, width=4.0)
    for arch in ARCHS:
        for i, r in enumerate(results["runs"]):
            curve, label = r[f"{arch}_curve"], arch if i == 0 else None
            ax_steps.plot([p["step"] for p in curve], [p["loss"] for p in curve], "o-", ms=3, alpha=0.6,
                          color=COLORS[arch], label=label)
            end = r[f"{arch}_equal_time"]
            ax_time.plot([p["seconds"] for p in curve] + [end["seconds"]], [p["loss"] for p in curve] + [end["loss"]],
                         "o-", ms=3, alpha=0.6, color=COLORS[arch], label=label)
            ax_pos.plot(range(1, len(r[f"{arch}_position_loss"]) + 1), r[f"{arch}_position_loss"], alpha=0.5,
                        lw=1, color=COLORS[arch], label=label)
    ax_steps.set(xlabel="training steps", ylabel="held-out loss (nats/char)", title="equal steps")
    ax_time.set(xlabel="training time (s, 1 CPU thread)", ylabel="held-out loss (nats/char)",
                title="equal wall-clock (last point: time-matched)")
    ax_pos.set(xlabel="position in the context (characters seen)", ylabel="held-out loss (nats/char)",
               xscale="log", title="loss by position, each seed")
    for ax in (ax_steps, ax_time, ax_pos):
        ax.legend(fontsize=8)
    return plots.save(fig, out, "q21_lstm.png")


def effects(metrics: dict[str, Any]) -> dict[str, dict]:
    """Each claim as a paired effect, positive when the Transformer is the better one."""
    rows = sorted(metrics["results"]["runs"], key=lambda r: r["seed"])
    col = lambda key: [r[key] for r in rows]  # noqa: E731
    steps = (col("lstm_equal_steps"), col("transformer_equal_steps"))
    times = ([r["lstm_equal_time"]["loss"] for r in rows], [r["transformer_equal_time"]["loss"] for r in rows])
    ranges = (col("transformer_late_gain"), col("lstm_late_gain"))
    return {"equal_steps": two_sided(*steps, MIN_GAP), "equal_time": two_sided(*times, MIN_GAP),
            "long_range": two_sided(*ranges, MIN_RANGE_GAP)}


def two_sided(a: list[float], b: list[float], min_effect: float) -> dict[str, Any]:
    """``a − b`` paired by seed, with which side (if any) wins beyond seed noise."""
    e = base.paired_effect(a, b, N_SD, min_effect)
    reverse = base.paired_effect(b, a, N_SD, min_effect)["significant"]
    return {**e, "side": "transformer" if e["significant"] else "lstm" if reverse else "neither"}


def verdict(metrics: dict[str, Any]) -> tuple[str, str]:
    undecided = base.undecidable(metrics, MIN_SEEDS)
    if undecided:
        return undecided
    e = effects(metrics)
    p = metrics["results"]["params"]
    numbers = (f"LSTM − Transformer held-out loss at equal steps {e['equal_steps']['mean']:+.3f} ± "
               f"{e['equal_steps']['sd']:.3f}, at equal time {e['equal_time']['mean']:+.3f} ± {e['equal_time']['sd']:.3f} "
               f"nats/char; late-context gain Transformer − LSTM {e['long_range']['mean']:+.3f} ± "
               f"{e['long_range']['sd']:.3f} nats/char ({p['transformer']} vs {p['lstm']} parameters)")
    sides = {name: x["side"] for name, x in e.items()}
    held = [name for name, side in sides.items() if side == "transformer"]
    reversed_ = [name for name, side in sides.items() if side == "lstm"]
    if len(held) == len(sides):
        return "confirmed", f"the Transformer is better on every count beyond {N_SD:g} sd of seed noise: {numbers}"
    if not held and reversed_:
        return "refuted", f"the LSTM is better beyond seed noise on {', '.join(reversed_)}, the Transformer on none: {numbers}"
    if not held:
        return "inconclusive", f"no difference beyond {N_SD:g} sd of seed noise: {numbers}"
    return "depends", (f"the Transformer wins on {', '.join(held)}, the LSTM on {', '.join(reversed_) or 'none'}, "
                       f"within noise otherwise: {numbers}")


def tables(metrics: dict[str, Any]) -> list[Table]:
    r = metrics["results"]
    rows = []
    for x in sorted(r["runs"], key=lambda x: x["seed"]):
        for arch in ARCHS:
            t = x[f"{arch}_equal_time"]
            rows.append([str(x["seed"]), arch, str(r["params"][arch]), fmt(x[f"{arch}_equal_steps"]),
                         fmt(x[f"{arch}_curve"][-1]["seconds"]), str(t["step"]), fmt(t["seconds"]), fmt(t["loss"]),
                         fmt(x[f"{arch}_late_gain"])])
    columns = ["seed", "model", "parameters", "loss, equal steps", "train s to that point", "steps, equal time",
               "train s, equal time", "loss, equal time", "late-context gain (pos 32–63 − 96–127)"]
    return [(columns, rows)]
