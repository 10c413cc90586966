"""Question 8: why multiply the embeddings by √d_model? (embedding缩放)

Claims under test (as commonly answered): the token embeddings are multiplied by √d_model so
that they are not drowned by the positional encoding, which is added to them; with tied
input/output weights the table is initialised small (std ~0.02 or d_model^-½), so without the
multiplier the token signal would be a small fraction of the sum, and training suffers.

Method: the multiplier (``embed_scale`` on/off) and the table's init (``embed_init_std`` 0.02
or d_model^-½) are switched independently, four cells, tied weights and sinusoidal positions
throughout.
1. Norms: ‖√d·E[x]‖ (or ‖E[x]‖) over ‖PE(p)‖ — mean row norm of the token table (the rows
   the inputs use) over mean norm of the position vectors — at init for d_model 16 … 512, and
   at d_model 64 before and after training.
2. Training: a 2-layer LM on the copy task (predicting the second half needs the token n + 1
   positions back, so positions matter), 300 steps; training curve and held-out loss per cell
   and seed. The four cells of a seed share every other initial weight (the table is drawn
   last, so only its scale differs) and the batches, so comparisons are paired by seed. The
   linear layers start at std d_model^-½ as in question 4; at qkv's default 0.02 no cell learns
   the copy task within a CPU-sized budget.
The effect of the multiplier is measured at each init, and the effect of the init at each
multiplier, so the two are told apart.

Reproduce: ``qkv ask 8 --size full``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..models import build_model
from . import base, plots, probe
from .table import Table, fmt

NUMBER = 8
TITLE = "Why multiply embeddings by sqrt(d_model)?"
KEYWORD = "embedding缩放"
CLAIMS = [
    "Without √d_model, a small-initialised (tied) token embedding is drowned by the positional encoding.",
    "Multiplying by √d_model fixes this, and training is better with the multiplier.",
]
ANSWER = """\
A sinusoidal position vector has d/2 (sin, cos) pairs, each of squared norm 1, so
‖PE(p)‖ = √(d/2) at every position. A token row drawn with std σ has norm ≈ σ√d. Their ratio is

    ‖E[x]‖ / ‖PE‖ ≈ σ√2            (no multiplier)
    ‖√d·E[x]‖ / ‖PE‖ ≈ σ√(2d)       (with √d_model)

At σ = 0.02 (GPT/BERT init) the token part is 3 % of the position part whatever d is, and even
with √d it stays below 1 until d ≈ 1250. At σ = d^-½ (fairseq/Marian, qkv's default with the
multiplier) the ratio is √2 with the multiplier and √(2/d) without. So what decides whether the
tokens are drowned is the product σ·(multiplier), not the multiplier alone: √d with σ = 0.02
and no multiplier with σ = d^-½ give almost the same input. The two still differ in training:
with tied weights the output layer uses the raw table (small σ gives small logits), and under
Adam every entry moves by about the learning rate per step, so a multiplied table effectively
learns √d times faster on the input side.

The measurements answer the question cell by cell: the norm ratio at init (against d_model) and
after training, and the copy-task loss with and without the multiplier at each init. If the
multiplier only matters for the 0.02 init, its role is to undo a small init, not a law of the
architecture; the verdict says which cells it helps."""
FULL_SEEDS = 5
SMOKE_SEEDS = 1
N_SD = 2.0  # an effect must exceed 2 standard deviations of the per-seed differences
MIN_LOSS_GAP = 0.05  # nats/token: smaller gaps do not matter even when consistent
DROWNED = 0.5  # token : position norm ratio below this counts as drowned
MIN_SEEDS = 3  # fewer seeds cannot estimate the noise
INITS = ("0.02", "d^-1/2")  # the table's init std: fixed, or d_model^-½
SCALES = (True, False)
SIZES = {
    "smoke": {"d_models": [16, 64], "steps": 5},
    "full": {"d_models": [16, 32, 64, 128, 256, 512], "steps": 300},
}
TASK = {"n": 8, "symbols": 16, "batch": 32, "lr": 3e-3, "d_model": 64, "n_heads": 2, "n_layers": 2}


def init_std(init: str, d_model: int) -> float:
    return 0.02 if init == "0.02" else d_model**-0.5


def model_config(scale: bool, init: str, d_model: int, n_layers: int):
    return probe.copy_model_config(TASK["symbols"], TASK["n"], d_model=d_model, n_heads=TASK["n_heads"],
                                   n_layers=n_layers, embed_scale=scale, embed_init_std=init_std(init, d_model),
                                   init_std=d_model**-0.5)


@torch.no_grad()
def norm_ratio(model: nn.Module) -> dict[str, float]:
    """Mean norm of the (multiplied) token rows the inputs use over the mean norm of PE(p)."""
    stack = model.decoder
    rows = stack.embed.weight[probe.SEP:] * stack.embed_scale  # (SEP and symbols, d)
    pe = stack.position.absolute(torch.arange(2 * TASK["n"])[None])[0]  # (2n, d)
    token, position = float(rows.norm(dim=-1).mean()), float(pe.norm(dim=-1).mean())
    return {"token_norm": token, "position_norm": position, "ratio": token / position}


def init_norms(d_model: int, seed: int) -> list[dict[str, Any]]:
    """Part 1 at one d_model: the norm ratio of a freshly built model in each cell."""
    rows = []
    for scale in SCALES:
        for init in INITS:
            torch.manual_seed(seed)
            model = build_model(model_config(scale, init, d_model, n_layers=1))
            rows.append({"d_model": d_model, "seed": seed, "scale": scale, "init": init, **norm_ratio(model)})
    return rows


def train_cell(scale: bool, init: str, seed: int, steps: int) -> dict[str, Any]:
    """Part 2 at one cell and seed: norm ratio before and after training, curve, held-out loss."""
    cfg = model_config(scale, init, TASK["d_model"], TASK["n_layers"])
    torch.manual_seed(seed)  # the same draws train_copy makes, so this is its initial model
    before = norm_ratio(build_model(cfg))
    model, curve = probe.train_copy(cfg, steps=steps, seed=seed, n=TASK["n"], symbols=TASK["symbols"],
                                    batch=TASK["batch"], lr=TASK["lr"])
    held_out = probe.copy_eval(model, n=TASK["n"], symbols=TASK["symbols"])
    return {"scale": scale, "init": init, "seed": seed, "ratio_init": before["ratio"],
            "ratio_trained": norm_ratio(model)["ratio"], "final_loss": held_out["loss"],
            "accuracy": held_out["accuracy"], "curve": curve[:: max(1, steps // 50)]}


def run(size: str, seeds: int, out: Path) -> dict[str, Any]:
    started = time.perf_counter()
    s = SIZES[size]
    norms = [row for seed in range(seeds) for d in s["d_models"] for row in init_norms(d, seed)]
    training = [train_cell(scale, init, seed, s["steps"]) for seed in range(seeds)
                for scale in SCALES for init in INITS]
    results = {"init_norms": norms, "training": training}
    config = {**s, "task": "copy", **TASK, "position": "sinusoidal", "tie_embeddings": True,
              "init_std": "d_model^-1/2 (linear layers)", "embed_init_std": list(INITS),
              "schedule": "cosine, 10% warm-up", "precision": "fp32"}
    names = [plot_norms(results, out), plot_training(results, s["steps"], out)]
    return base.finish(verdict, base.record(NUMBER, size, seeds, out, config, results, names, started), out)


def cell_name(scale: bool, init: str) -> str:
    return f"{'√d' if scale else 'no √d'}, std {init}"


CELLS = [(scale, init) for scale in SCALES for init in INITS]
COLORS = {cell: f"C{i}" for i, cell in enumerate(CELLS)}


def select(items: list[dict], scale: bool, init: str) -> list[dict]:
    return sorted((r for r in items if r["scale"] == scale and r["init"] == init), key=lambda r: r["seed"])


def plot_norms(results: dict[str, Any], out: Path) -> str:
    fig, (ax_d, ax_t) = plots.figure(2)
    d_models = sorted({r["d_model"] for r in results["init_norms"]})
    for i, (scale, init) in enumerate(CELLS):
        rows = select(results["init_norms"], scale, init)
        ax_d.scatter([r["d_model"] for r in rows], [r["ratio"] for r in rows], color=COLORS[scale, init], s=12)
        means = [base.mean([r["ratio"] for r in rows if r["d_model"] == d]) for d in d_models]
        ax_d.plot(d_models, means, color=COLORS[scale, init], label=cell_name(scale, init))
        runs = select(results["training"], scale, init)
        plots.seed_points(ax_t, i - 0.17, [r["ratio_init"] for r in runs], COLORS[scale, init], width=0.25)
        plots.seed_points(ax_t, i + 0.17, [r["ratio_trained"] for r in runs], COLORS[scale, init], width=0.25)
    for ax in (ax_d, ax_t):
        ax.axhline(1.0, color="grey", linestyle=":", linewidth=1)
        ax.axhline(DROWNED, color="C3", linestyle="--", linewidth=1, label=f"drowned below {DROWNED}")
        ax.set_yscale("log")
    plots.log_ticks(ax_d, d_models)
    ax_d.set(xlabel="d_model (log)", ylabel="‖token embedding‖ / ‖PE‖ (log)", title="at init, per seed")
    ax_d.legend(fontsize=7)
    ax_t.set(xticks=range(len(CELLS)), ylabel="‖token embedding‖ / ‖PE‖ (log)",
             title=f"d_model {TASK['d_model']}: left init, right trained")
    ax_t.set_xticklabels([cell_name(*c).replace(", ", "\n") for c in CELLS], fontsize=8)
    ax_t.legend(fontsize=7)
    return plots.save(fig, out, "q08_norms.png")


def plot_training(results: dict[str, Any], steps: int, out: Path) -> str:
    fig, (ax_l, ax_c) = plots.figure(2)
    every = max(1, steps // 50)
    for i, (scale, init) in enumerate(CELLS):
        runs = select(results["training"], scale, init)
        plots.seed_points(ax_l, i, [r["final_loss"] for r in runs], COLORS[scale, init], width=0.3)
        for r in runs:
            ax_c.plot([every * j for j in range(len(r["curve"]))], r["curve"], color=COLORS[scale, init], alpha=0.4)
        ax_c.plot([], [], color=COLORS[scale, init], label=cell_name(scale, init))
    ax_l.set(xticks=range(len(CELLS)), yscale="log", ylabel="held-out loss (nats/token, log)",
             title="copy task: final loss per seed")
    ax_l.set_xticklabels([cell_name(*c).replace(", ", "\n") for c in CELLS], fontsize=8)
    ax_c.set(yscale="log", xlabel="step", ylabel="training loss (nats/token, log)", title="training curves, every seed")
    ax_c.legend(fontsize=7)
    return plots.save(fig, out, "q08_training.png")


def losses(metrics: dict[str, Any], scale: bool, init: str) -> list[float]:
    return [r["final_loss"] for r in select(metrics["results"]["training"], scale, init)]


def effects(metrics: dict[str, Any]) -> dict[str, dict]:
    """Paired by seed: the multiplier at each init (loss without − with), the init at each
    multiplier (loss at 0.02 − at d^-½); each with its "helps" and "hurts" significance."""
    def both(a: list[float], b: list[float]) -> dict:
        return {"helps": base.paired_effect(a, b, N_SD, MIN_LOSS_GAP),
                "hurts": base.paired_effect(b, a, N_SD, MIN_LOSS_GAP)}
    scale = {init: both(losses(metrics, False, init), losses(metrics, True, init)) for init in INITS}
    init = {str(s): both(losses(metrics, s, "0.02"), losses(metrics, s, "d^-1/2")) for s in SCALES}
    return {"scale": scale, "init": init}


def init_ratio(metrics: dict[str, Any], scale: bool, init: str) -> float:
    """Mean token : position norm ratio at init of one training cell."""
    return base.mean([r["ratio_init"] for r in select(metrics["results"]["training"], scale, init)])


def gap_text(e: dict) -> str:
    return f"{e['helps']['mean']:+.3f} ± {e['helps']['sd']:.3f}"


def verdict(metrics: dict[str, Any]) -> tuple[str, str]:
    undecided = base.undecidable(metrics, MIN_SEEDS)
    if undecided:
        return undecided
    ratio, e = init_ratio(metrics, False, "0.02"), effects(metrics)
    gaps = "; ".join(f"at std {init}: loss without − with √d = {gap_text(e['scale'][init])} nats"
                     for init in INITS)
    init_gaps = "; ".join(f"{'with' if s == 'True' else 'without'} √d, loss at std 0.02 − at d^-1/2 = "
                          f"{gap_text(x)}" for s, x in e["init"].items())
    drowned = f"without √d a std-0.02 table has {ratio:.3f} of the PE's norm at init"
    if ratio >= DROWNED:
        return "refuted", f"not drowned: {drowned} (threshold {DROWNED}); {gaps}"
    helped = [init for init in INITS if e["scale"][init]["helps"]["significant"]]
    if len(helped) == len(INITS):
        return "confirmed", f"{drowned}; √d lowers the loss beyond {N_SD:g} sd of seed noise at both inits ({gaps})"
    if helped:
        other = [init for init in INITS if init not in helped][0]
        hurt = " (it hurts there)" if e["scale"][other]["hurts"]["significant"] else ""
        return "depends", (f"{drowned}; √d helps only when the table starts at std {helped[0]}, "
                           f"not at std {other}{hurt}, where the table without √d has "
                           f"{init_ratio(metrics, False, other):.3f} of the PE's norm, so the init is what "
                           f"matters ({gaps}; {init_gaps})")
    noisy = [init for init in INITS if e["scale"][init]["helps"]["mean"] > MIN_LOSS_GAP]
    if noisy:
        return "inconclusive", (f"{drowned}; √d lowers the mean loss at std {', '.join(noisy)} "
                                f"but within seed noise ({gaps})")
    return "refuted", (f"{drowned}, yet √d does not lower the loss beyond {N_SD:g} sd of seed noise "
                       f"at either init ({gaps})")


def tables(metrics: dict[str, Any]) -> list[Table]:
    """Norm ratio at init per d_model and cell; per cell at d_model 64: ratios, loss, accuracy, gaps."""
    r = metrics["results"]
    d_models = sorted({x["d_model"] for x in r["init_norms"]})
    first = (["d_model", *[cell_name(*c) for c in CELLS]],
             [[str(d), *[fmt(base.mean([x["ratio"] for x in select(r["init_norms"], *c) if x["d_model"] == d]))
                         for c in CELLS]] for d in d_models])
    e = effects(metrics)
    rows = []
    for scale, init in CELLS:
        runs = select(r["training"], scale, init)
        loss = [x["final_loss"] for x in runs]
        rows.append([cell_name(scale, init), fmt(base.mean([x["ratio_init"] for x in runs])),
                     fmt(base.mean([x["ratio_trained"] for x in runs])),
                     f"{base.mean(loss):.4f} ± {base.std(loss):.4f}", fmt(base.mean([x["accuracy"] for x in runs])),
                     gap_text(e["scale"][init]) if not scale else ""])
    second = (["cell", "ratio at init", "ratio trained", "held-out loss (mean ± sd)", "accuracy",
               "loss no √d − √d (paired)"], rows)
    return [first, second]
