"""Question 14: which activation in the FFN, and what are the trade-offs? (激活函数)

Claims under test (as commonly answered): GELU and the gated variants (SwiGLU, GEGLU; Shazeer,
2020, arXiv:2002.05202) train better than ReLU, and ReLU units "die": once a unit's input is
negative for every token, its output and gradient are zero and it never recovers.

Method: a small character language model on Tiny Shakespeare (qkv's ``shakespeare_char``
preset shrunk: pre-LN, learned positions, no biases, no dropout) with FFN activation relu, gelu,
silu, swiglu or geglu, at EQUAL parameter count: a GLU has three FFN matrices where an MLP has
two, so its d_ff is 2/3 of the MLP's (the model's parameter count is recorded and checked). Every
activation trains at two learning rates, five seeds; a seed fixes the batches, which all
activations share, so comparisons are paired by seed. Measured per run: held-out loss on the
first characters of the validation split; the fraction of FFN hidden units that are never
positive on any held-out token (for ReLU these units are dead: zero output, zero gradient; for
the others the same statistic is reported for comparison, though a negative GELU/SiLU input
still passes a gradient), at initialisation and after training; and the median time of a
training step relative to ReLU, as CPU time of the one thread torch computes on (so other
processes on a shared machine do not inflate it).

Reproduce: ``qkv ask 14 --size full``.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ..config import ModelConfig
from ..data import load_shakespeare, random_lm_batch, sequential_lm_batches
from ..models import build_model
from ..models.common import n_params
from ..presets import shakespeare_char
from ..tasks.common import mean_token_loss
from ..train import TrainConfig, Trainer
from . import base, plots
from .table import Table, fmt

NUMBER = 14
TITLE = "FFN activation and its trade-offs"
KEYWORD = "激活函数"
CLAIMS = [
    "GELU and GLU variants (SwiGLU, GEGLU) train to a lower loss than ReLU at the same parameter count.",
    "ReLU units die: a sizeable fraction of FFN units is never active after training.",
]
ANSWER = """\
The FFN is FFN(x) = W2·act(W1·x + b1) + b2, applied to every position; the activation is the
block's only elementwise nonlinearity.

ReLU, max(0, z): cheapest, exact zeros (sparse); its gradient is 0 for z < 0, so a unit whose
input is negative on every token gets no gradient and stays off ("dead") — most likely after
large updates, i.e. at a high learning rate. GELU, z·Φ(z) (BERT, GPT-2), and SiLU/Swish, z·σ(z):
smooth, slightly negative below 0, with a small but non-zero gradient there, so a unit can come
back. GLU variants (Shazeer, 2020): act(x·W_gate) ⊙ (x·W_up), then W_down — a multiplicative gate
(SwiGLU in LLaMA and PaLM, GEGLU in T5 v1.1). Three matrices instead of two, so at equal
parameters d_ff is 2/3 as wide (LLaMA's 8d/3 instead of 4d); in large models trained long they
reach a lower loss at the same compute, which is why recent LLMs use them.

Trade-offs: GELU/SiLU cost more per element (erf, exp) than ReLU, small next to the matmuls; a
GLU does three thinner matmuls instead of two wider ones (the same FLOPs) plus a product. A GLU
multiplies two projections that both start small, so its output at initialisation is about an
order of magnitude smaller than an MLP's (the table's FFN out/in RMS) and it starts slower: in a
short run the ranking can be the reverse of the one reported for long runs. ReLU's dead units are
real but depend on the learning rate. The numbers below are for a 0.1M-parameter character
model after a few hundred steps — read them as "what happens early in small models", not as a
ranking at scale."""
FULL_SEEDS = 5
SMOKE_SEEDS = 2
MIN_SEEDS = 3  # fewer seeds cannot estimate seed noise
N_SD = 2.0  # an effect must exceed 2 standard deviations of the per-seed differences
MIN_LOSS_GAP = 0.01  # nats/char: GELU's gain over ReLU in Shazeer (2020, Table 1) is 0.014
DEAD_MIN = 0.05  # a fraction of never-active ReLU units above this counts as "units die"
PARAM_TOLERANCE = 0.005  # relative: GLU and MLP models must have equal parameters to within this
ACTIVATIONS = ("relu", "gelu", "silu", "swiglu", "geglu")
GATED = ("swiglu", "geglu")
TASK = {"d_model": 64, "n_layers": 2, "n_heads": 4, "d_ff": 256, "context": 32, "batch": 16}
SIZES = {
    "smoke": {"steps": 6, "lrs": [1e-2], "eval_tokens": 1024},
    "full": {"steps": 200, "lrs": [3e-3, 1e-2], "eval_tokens": 16384},
}
FIRST_CHAR = 4  # ids 0-3 are the specials (pad, unk, bos, eos); characters follow


# -- data and model -----------------------------------------------------------------------------


def char_streams(eval_tokens: int) -> tuple[Tensor, Tensor, int]:
    """Tiny Shakespeare as character ids: (train stream (N,), held-out stream (eval_tokens + 1,), vocab)."""
    train, val = (torch.frombuffer(bytearray(load_shakespeare(s).encode()), dtype=torch.uint8).long()
                  for s in ("train", "val"))
    chars = torch.unique(train)  # (C,) byte values that occur in the training text
    lookup = torch.ones(256, dtype=torch.long)  # a byte never seen in training reads as unk (1)
    lookup[chars] = torch.arange(FIRST_CHAR, FIRST_CHAR + len(chars))
    return lookup[train], lookup[val[: eval_tokens + 1]], FIRST_CHAR + len(chars)


def d_ff_for(activation: str) -> int:
    """A GLU's three matrices at 2/3 of the MLP's width hold the MLP's two matrices' parameters."""
    return round(2 * TASK["d_ff"] / 3) if activation in GATED else TASK["d_ff"]


def model_config(activation: str, vocab: int) -> ModelConfig:
    return shakespeare_char(vocab_size=vocab, d_model=TASK["d_model"], n_layers=TASK["n_layers"],
                            n_heads=TASK["n_heads"], d_ff=d_ff_for(activation), max_len=TASK["context"],
                            activation=activation)


def first_ffn_matrix(ffn: nn.Module) -> nn.Linear:
    """The matrix whose output the activation reads: a GLU's gate, an MLP's up projection."""
    return ffn.gate if hasattr(ffn, "gate") else ffn.up


@torch.no_grad()
def held_out(model: nn.Module, val: Tensor) -> dict[str, Any]:
    """Held-out loss (nats/char); per layer, the fraction of FFN units never positive on it and
    the FFN's output RMS over its input RMS (how much the block adds to the residual stream)."""
    model.eval()
    layers: list[dict[str, Any]] = [{"gain": []} for _ in model.decoder.layers]
    hooks = []
    for layer, state in zip(model.decoder.layers, layers):
        hooks.append(first_ffn_matrix(layer.ffn).register_forward_hook(
            lambda m, a, z, state=state: state.update(  # "off" (d_ff,) bool: not positive on any token yet
                off=(z.flatten(0, -2) <= 0).all(0) & state.get("off", True))))
        hooks.append(layer.ffn.register_forward_hook(
            lambda m, a, y, state=state: state["gain"].append(float(rms(y) / rms(a[0])))))
    loss = mean_token_loss(model, sequential_lm_batches(val, TASK["context"], 64))["loss"]
    for hook in hooks:
        hook.remove()
    fractions = [float(state["off"].float().mean()) for state in layers]
    return {"loss": loss, "never_positive": fractions, "never_positive_mean": base.mean(fractions),
            "ffn_gain": base.mean([base.mean(state["gain"]) for state in layers])}


def rms(x: Tensor) -> Tensor:
    return x.pow(2).mean().sqrt()


def train_cell(activation: str, lr: float, seed: int, s: dict, data: tuple[Tensor, Tensor, int]) -> dict[str, Any]:
    """Train one (activation, lr, seed) model; held-out numbers at init and after, step times."""
    train, val, vocab = data
    torch.manual_seed(seed)
    model = build_model(model_config(activation, vocab))
    at_init = held_out(model, val)
    model.train()
    steps = s["steps"]
    tcfg = TrainConfig(lr=lr, schedule="cosine", warmup_steps=steps // 10, max_steps=steps, label_smoothing=0.0,
                       precision="fp32", device="cpu", seed=seed, log_every=steps + 1, weight_decay=0.0)
    g = torch.Generator().manual_seed(10_000 + seed)  # the same batches for every activation
    times, curve = [], []
    with tempfile.TemporaryDirectory() as tmp:  # the trainer's log; no checkpoint is written
        trainer = Trainer(model, tcfg, lambda epoch: [], tmp, progress=False)
        for _ in range(steps):
            batch = random_lm_batch(train, TASK["context"], TASK["batch"], g)
            started = time.thread_time()  # CPU time of this thread: other processes do not inflate it
            curve.append(trainer.train_step([batch])["loss"])
            times.append(time.thread_time() - started)
    after = held_out(model, val)
    return {"activation": activation, "lr": lr, "seed": seed, "params": n_params(model),
            "d_ff": d_ff_for(activation), "final_loss": after["loss"], "never_positive": after["never_positive"],
            "never_positive_mean": after["never_positive_mean"], "init_loss": at_init["loss"],
            "init_never_positive_mean": at_init["never_positive_mean"], "init_ffn_gain": at_init["ffn_gain"],
            "ffn_gain": after["ffn_gain"],
            "step_time_s": statistics.median(times[steps // 10:] or times), "curve": curve[:: max(1, steps // 50)],
            "curve_every": max(1, steps // 50)}




def run(size: str, seeds: int, out: Path) -> dict[str, Any]:
    started = time.perf_counter()
    s = SIZES[size]
    with base.one_thread():
        data = char_streams(s["eval_tokens"])
        runs = [train_cell(act, lr, seed, s, data)
                for seed in range(seeds) for lr in s["lrs"] for act in ACTIVATIONS]
        config = {**s, **TASK, "activations": list(ACTIVATIONS), "d_ff_gated": d_ff_for(GATED[0]),
                  "vocab_size": data[2], "corpus": "tinyshakespeare (chars), validation prefix held out",
                  "model": "shakespeare_char preset: pre-LN, learned positions, no biases, no dropout",
                  "schedule": "cosine, 10% warm-up", "weight_decay": 0.0, "precision": "fp32", "threads": 1}
        results = {"runs": runs}
        names = [plot_runs(results, s["lrs"], out)]
        return base.finish(verdict, base.record(NUMBER, size, seeds, out, config, results, names, started), out)


# -- verdict ------------------------------------------------------------------------------------


def cells(metrics: dict[str, Any], activation: str, lr: float) -> list[dict]:
    return sorted((r for r in metrics["results"]["runs"] if r["activation"] == activation and r["lr"] == lr),
                  key=lambda r: r["seed"])


def lrs_of(metrics: dict[str, Any]) -> list[float]:
    return sorted({r["lr"] for r in metrics["results"]["runs"]})


def loss_gains(metrics: dict[str, Any]) -> dict[tuple[str, float], dict]:
    """Per (variant, lr): paired ReLU loss − variant loss, and whether it is a gain, a loss (the
    variant worse than ReLU beyond noise), no gain, or unclear."""
    out = {}
    for lr in lrs_of(metrics):
        relu = [r["final_loss"] for r in cells(metrics, "relu", lr)]
        for act in ACTIVATIONS[1:]:
            gain = base.paired_effect(relu, [r["final_loss"] for r in cells(metrics, act, lr)], N_SD, MIN_LOSS_GAP)
            # no gain: even the optimistic end (mean + N_SD sd) of the gain is below the minimum that matters
            small = gain["mean"] + N_SD * gain["sd"] < MIN_LOSS_GAP
            worse = -gain["mean"] > N_SD * gain["sd"] and -gain["mean"] > MIN_LOSS_GAP
            outcome = "gain" if gain["significant"] else "worse" if worse else "none" if small else "unclear"
            out[(act, lr)] = {**gain, "outcome": outcome}
    return out


def dead_units(metrics: dict[str, Any]) -> dict[float, dict]:
    """Per lr: the never-active fraction of ReLU units (mean, sd over seeds) and whether units die."""
    out = {}
    for lr in lrs_of(metrics):
        dead = [r["never_positive_mean"] for r in cells(metrics, "relu", lr)]
        m, sd = base.mean(dead), base.std(dead)
        outcome = "die" if m - N_SD * sd > DEAD_MIN else "none" if m + N_SD * sd < DEAD_MIN else "unclear"
        init = base.mean([r["init_never_positive_mean"] for r in cells(metrics, "relu", lr)])
        out[lr] = {"mean": m, "sd": sd, "init": init, "outcome": outcome}
    return out


def claim_outcome(outcomes: list[str], positive: str) -> str:
    """All ``positive`` → holds; all "none" or "worse", or no positive but a "worse" (a variant
    measurably worse than ReLU) → fails; unclear ones with no positive → unclear; else partial."""
    if all(o == positive for o in outcomes):
        return "holds"
    if all(o in ("none", "worse") for o in outcomes) or ("worse" in outcomes and positive not in outcomes):
        return "fails"  # nowhere the claimed gain, and somewhere its opposite measured
    return "unclear" if positive not in outcomes and "unclear" in outcomes else "partial"


def unequal_params(metrics: dict[str, Any]) -> list[str]:
    runs = metrics["results"]["runs"]
    reference = next(r["params"] for r in runs if r["activation"] == "relu")
    return sorted({f"{r['activation']} {r['params']:,}" for r in runs
                   if abs(r["params"] - reference) > PARAM_TOLERANCE * reference})


def describe(metrics: dict[str, Any], gains: dict, dead: dict) -> str:
    lrs = lrs_of(metrics)
    per_lr = {lr: ", ".join(f"{act} {gains[(act, lr)]['mean']:+.3f} ± {gains[(act, lr)]['sd']:.3f}"
                            for act in ACTIVATIONS[1:]) for lr in lrs}
    gain_text = "; ".join(f"lr {lr:g}: {text}" for lr, text in per_lr.items())
    dead_text = ", ".join(f"{d['mean']:.1%} ± {d['sd']:.1%} at lr {lr:g} (init {d['init']:.1%})"
                          for lr, d in dead.items())
    ratios = ", ".join(f"{act} ×{time_ratio(metrics, act):.2f}" for act in ACTIVATIONS[1:])
    return (f"ReLU loss − variant loss (nats/char, mean ± sd over seeds) {gain_text}; never-active ReLU units "
            f"{dead_text}; step time vs ReLU {ratios}")


def claim_texts(outcomes: tuple[str, str], gains: dict, dead: dict) -> list[str]:
    """One clause per claim, for its outcome, naming the settings where it holds."""
    won = [f"{act} at lr {lr:g}" for (act, lr), g in gains.items() if g["outcome"] == "gain"]
    lost = [f"{act} at lr {lr:g}" for (act, lr), g in gains.items() if g["outcome"] == "worse"]
    died = [f"{lr:g}" for lr, d in dead.items() if d["outcome"] == "die"]
    better = {"holds": f"every variant beats ReLU by more than {N_SD:g} sd of seed noise at every lr",
              "fails": f"no variant beats ReLU by {MIN_LOSS_GAP} nats/char beyond seed noise at any lr",
              "unclear": "whether the variants beat ReLU is within seed noise",
              "partial": f"variants beat ReLU beyond seed noise only for {', '.join(won)}"}
    dies = {"holds": f"more than {DEAD_MIN:.0%} of ReLU units die at every lr",
            "fails": f"fewer than {DEAD_MIN:.0%} of ReLU units die at any lr",
            "unclear": "whether ReLU units die is within seed noise",
            "partial": f"more than {DEAD_MIN:.0%} of ReLU units die only at lr {', '.join(died)}"}
    texts = [better[outcomes[0]], dies[outcomes[1]]]
    if lost:  # the opposite of the claim, measured: say so rather than fold it into "no gain"
        texts[0] += f"; ReLU is better beyond {N_SD:g} sd of seed noise than {', '.join(lost)}"
    return texts


def verdict(metrics: dict[str, Any]) -> tuple[str, str]:
    undecided = base.undecidable(metrics, MIN_SEEDS)
    if undecided:
        return undecided
    unequal = unequal_params(metrics)
    if unequal:
        return "inconclusive", (f"the models do not have equal parameters (within {PARAM_TOLERANCE:.1%}): "
                                f"{', '.join(unequal)}")
    gains, dead = loss_gains(metrics), dead_units(metrics)
    outcomes = (claim_outcome([g["outcome"] for g in gains.values()], "gain"),
                claim_outcome([d["outcome"] for d in dead.values()], "die"))
    reason = "; ".join(claim_texts(outcomes, gains, dead)) + f" ({describe(metrics, gains, dead)})"
    if outcomes == ("holds", "holds"):
        return "confirmed", reason
    if outcomes == ("fails", "fails"):
        return "refuted", reason
    if "unclear" in outcomes:
        return "inconclusive", reason
    return "depends", reason


def time_ratio(metrics: dict[str, Any], activation: str) -> float:
    """Median over (lr, seed) of this activation's step time / ReLU's step time in the same cell."""
    ratios = [a["step_time_s"] / r["step_time_s"] for lr in lrs_of(metrics)
              for a, r in zip(cells(metrics, activation, lr), cells(metrics, "relu", lr))]
    return statistics.median(ratios)


# -- plots and tables ---------------------------------------------------------------------------


def plot_runs(results: dict[str, Any], lrs: list[float], out: Path) -> str:
    fig, (ax_loss, ax_dead, ax_time, ax_curve) = plots.figure(4)
    metrics = {"results": results}
    for j, lr in enumerate(lrs):
        relu = cells(metrics, "relu", lr)
        for i, act in enumerate(ACTIVATIONS):
            runs, x = cells(metrics, act, lr), i + 0.4 * (j - (len(lrs) - 1) / 2)
            label = f"lr {lr:g}" if i == 0 else None
            plots.seed_points(ax_loss, x, [r["final_loss"] for r in runs], f"C{j}", label=label, width=0.25)
            plots.seed_points(ax_dead, x, [100 * r["never_positive_mean"] for r in runs], f"C{j}", label=label,
                              width=0.25)
            plots.seed_points(ax_time, x, [a["step_time_s"] / b["step_time_s"] for a, b in zip(runs, relu)],
                              f"C{j}", label=label, width=0.25)
    ax_dead.axhline(100 * DEAD_MIN, color="grey", linestyle=":", label=f"{DEAD_MIN:.0%} threshold")
    ax_time.axhline(1.0, color="grey", linestyle=":")
    for ax, ylabel, title in ((ax_loss, "held-out loss (nats/char)", "final loss, each seed a point"),
                              (ax_dead, "FFN units never positive (%)", "never-active units (dead for relu)"),
                              (ax_time, "step CPU time / relu's", "training step cost, 1 thread")):
        ax.set(xticks=range(len(ACTIVATIONS)), xlabel="FFN activation (equal parameters)", ylabel=ylabel, title=title)
        ax.set_xticklabels(ACTIVATIONS)
        ax.legend(fontsize=7)
    plot_curves(ax_curve, metrics, max(lrs))
    return plots.save(fig, out, "q14_activation.png")


def plot_curves(ax, metrics: dict[str, Any], lr: float) -> None:
    """Training loss of every seed at one lr, one colour per activation."""
    steps = max(1, metrics["results"]["runs"][0].get("curve_every", 1))
    for i, act in enumerate(ACTIVATIONS):
        for k, r in enumerate(cells(metrics, act, lr)):
            ax.plot([steps * t for t in range(len(r["curve"]))], r["curve"], color=f"C{i + 2}", alpha=0.7,
                    linewidth=0.8, label=act if k == 0 else None)
    ax.set(xlabel="training step", ylabel="training loss (nats/char)", title=f"training curves at lr {lr:g}")
    ax.legend(fontsize=7)


def table_row(runs: list[dict], gain: dict | None) -> list[str]:
    """One (lr, activation) cell over its seeds: sizes, loss, gain over ReLU, units, FFN scale, cost."""
    avg = lambda key, scale=1.0: base.mean([scale * r[key] for r in runs])  # noqa: E731
    losses, dead = [r["final_loss"] for r in runs], [100 * r["never_positive_mean"] for r in runs]
    return [f"{runs[0]['lr']:g}", runs[0]["activation"], str(runs[0]["d_ff"]), f"{runs[0]['params']:,}",
            f"{base.mean(losses):.3f} ± {base.std(losses):.3f}",
            f"{gain['mean']:+.3f} ± {gain['sd']:.3f} ({gain['outcome']})" if gain else "",
            f"{base.mean(dead):.1f} ± {base.std(dead):.1f}", fmt(avg("init_never_positive_mean", 100)),
            f"{avg('init_ffn_gain'):.3f} → {avg('ffn_gain'):.3f}", f"{avg('step_time_s', 1000):.1f}"]


def tables(metrics: dict[str, Any]) -> list[Table]:
    """Per (lr, activation): loss, gain over ReLU, never-active units, FFN output scale, step cost."""
    gains = loss_gains(metrics)
    rows = [table_row(cells(metrics, act, lr), gains.get((act, lr))) for lr in lrs_of(metrics) for act in ACTIVATIONS]
    columns = ["lr", "activation", "d_ff", "parameters", "held-out loss (mean ± sd)", "ReLU − this (paired)",
               "never positive after, % (mean ± sd)", "never positive at init, %",
               "FFN out/in RMS, init → trained", "step CPU time (ms)"]
    return [(columns, rows)]
