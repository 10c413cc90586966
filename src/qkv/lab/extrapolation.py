"""Length extrapolation of every position kind: train at length L, score each position up to 4L.

Shared by questions 9 and 10. The task is offset copy: a sequence of uniform random symbols
whose label at position t is the symbol ``OFFSET`` positions back, x_{t-OFFSET}. Every labelled
position is equally hard (one uniform symbol to recall, chance loss ln(symbols)), and the
answer depends only on where a token sits relative to the query, so a model without position
information cannot solve it. Each model is a small causal LM built with ``max_len = 4L``
(learned positions beyond L are then rows no gradient ever reaches: they keep their initial
N(0, init_std) values) and trained on length L with qkv's Trainer; then it is scored per
position with ``qkv.train.per_position_loss`` on held-out sequences of length L, 2L and 4L,
the same sequences for every kind. The CPU time of each training step is the cost.
"""

from __future__ import annotations

import math
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ..config import ModelConfig
from ..models import build_model
from ..nn.position import Learned
from ..train import IGNORE_INDEX, Trainer, TrainConfig, per_position_loss
from . import base, plots
from .table import Table, fmt

KINDS = ("sinusoidal", "learned", "shaw", "t5_bias", "rope", "alibi", "none")
ABSOLUTE = ("sinusoidal", "learned")
RELATIVE = ("shaw", "t5_bias", "rope", "alibi")
FACTORS = (1, 2, 4)  # evaluation lengths, in multiples of the training length L
OFFSET = 2  # the label at t is x_{t-2}: an exact offset, and the query's own token (offset 0) is no help
FIRST_SYMBOL = 4  # ids 0-3 are the specials of ModelConfig
# Pre-norm with lr 0.02 and init_std 0.05 (qkv's default is 0.02, for every kind alike): the
# learned table then starts large enough to be shaped within 500 steps; with less, learned
# positions often had not solved the task inside L, and post-norm at this lr did not train.
TASK = {"symbols": 16, "d_model": 32, "n_heads": 4, "n_layers": 2, "d_ff": 64, "batch": 32, "lr": 0.02,
        "init_std": 0.05, "norm_placement": "pre", "eval_batch": 64}
COLORS = {kind: f"C{i}" for i, kind in enumerate(KINDS)}
WIDE = {"d_model": 128, "length": 256, "batch": 4, "steps": 3}  # the full size's second cost measurement
CHANCE = math.log(TASK["symbols"])  # nats/token of a uniform guess


def offset_copy_batch(g: torch.Generator, batch: int, length: int) -> dict[str, Tensor]:
    """input_ids ``(B, T)`` of uniform symbols and labels ``(B, T)``: x_{t-OFFSET}, -100 before."""
    x = torch.randint(FIRST_SYMBOL, FIRST_SYMBOL + TASK["symbols"], (batch, length), generator=g)  # (B, T)
    labels = torch.full_like(x, IGNORE_INDEX)
    labels[:, OFFSET:] = x[:, :-OFFSET]
    return {"input_ids": x, "labels": labels}


def model_config(kind: str, train_len: int) -> ModelConfig:
    """A small causal LM; dropout off so seeds differ only in init and data."""
    return ModelConfig(family="lm", vocab_size=FIRST_SYMBOL + TASK["symbols"], d_model=TASK["d_model"],
                       n_layers=TASK["n_layers"], n_heads=TASK["n_heads"], d_ff=TASK["d_ff"],
                       max_len=max(FACTORS) * train_len, position=kind, norm_placement=TASK["norm_placement"],
                       init_std=TASK["init_std"], dropout_embed=0.0, dropout_residual=0.0, dropout_attention=0.0,
                       dropout_activation=0.0)


def trainer_for(model: nn.Module, steps: int, seed: int, log_dir: str) -> Trainer:
    tcfg = TrainConfig(lr=TASK["lr"], schedule="cosine", warmup_steps=steps // 10, max_steps=steps,
                       label_smoothing=0.0, precision="fp32", device="cpu", seed=seed, log_every=steps + 1,
                       weight_decay=0.0)
    return Trainer(model, tcfg, lambda epoch: [], log_dir, progress=False)


def train(kind: str, seed: int, train_len: int, steps: int) -> tuple[nn.Module, list[float], float]:
    """Train one model at length ``train_len``; returns (model, loss per step, CPU seconds per step).

    CPU time of this process, not wall time: other programs on the machine do not count.
    """
    torch.manual_seed(seed)
    model = build_model(model_config(kind, train_len))
    g = torch.Generator().manual_seed(10_000 + seed)  # the same batches for every kind of a seed
    batches = [offset_copy_batch(g, TASK["batch"], train_len) for _ in range(steps)]
    with tempfile.TemporaryDirectory() as tmp:  # the trainer's log; no checkpoint is written
        trainer = trainer_for(model, steps, seed, tmp)
        curve = [trainer.train_step([batches[0]])["loss"]]  # allocates the optimizer state: not timed
        started = time.process_time()
        curve += [trainer.train_step([b])["loss"] for b in batches[1:]]
        seconds = (time.process_time() - started) / (steps - 1)
    return model.eval(), curve, seconds


def wide_step_cost(kind: str, seed: int, wide: dict[str, int]) -> float:
    """CPU seconds of one training step of a wider model on longer sequences (shape ``wide``),
    where the position scheme's extra work weighs against real matrix products, not per-op overhead."""
    torch.manual_seed(seed)
    cfg = model_config(kind, wide["length"]).replace(d_model=wide["d_model"], d_ff=4 * wide["d_model"],
                                                       max_len=wide["length"])
    model = build_model(cfg)
    batch = offset_copy_batch(torch.Generator().manual_seed(seed), wide["batch"], wide["length"])
    with tempfile.TemporaryDirectory() as tmp:
        trainer = trainer_for(model, wide["steps"] + 1, seed, tmp)
        trainer.train_step([batch])  # the first step allocates optimizer state: not timed
        started = time.process_time()
        for _ in range(wide["steps"]):
            trainer.train_step([batch])
    return (time.process_time() - started) / wide["steps"]




@torch.no_grad()
def loss_by_position(model: nn.Module, length: int, batches: int) -> tuple[list[float], float]:
    """Mean held-out loss (nats) at each position ``(length,)`` (None where no label exists), and
    the CPU seconds of one forward pass; the sequences depend on ``length`` only."""
    g = torch.Generator().manual_seed(999 + length)
    loss_sum, count, seconds = torch.zeros(length), torch.zeros(length), 0.0
    for _ in range(batches):
        b = offset_copy_batch(g, TASK["eval_batch"], length)
        started = time.process_time()
        logits = model.forward_batch(b)  # (B, T, V)
        seconds += time.process_time() - started
        summed, n = per_position_loss(logits, b["labels"])  # (T,), (T,)
        loss_sum, count = loss_sum + summed, count + n
    per_position = (loss_sum / count.clamp_min(1)).tolist()  # (T,)
    return [x if n > 0 else None for x, n in zip(per_position, count.tolist())], seconds / batches


def learned_rows(model: nn.Module, train_len: int) -> dict[str, float] | None:
    """For learned positions: mean row norm of the table inside and beyond the training length."""
    position = model.decoder.position
    if not isinstance(position, Learned):
        return None
    table = position.table.weight.detach()  # (max_len, d)
    norms = table.norm(dim=-1)  # (max_len,)
    return {"trained_rows": float(norms[:train_len].mean()), "beyond_rows": float(norms[train_len:].mean()),
            "init_expected": model.config.init_std * math.sqrt(table.shape[-1])}


def run_cell(kind: str, seed: int, size: dict[str, Any]) -> dict[str, Any]:
    """One (kind, seed): training curve, costs and per-position loss at every length."""
    train_len, steps = size["train_len"], size["steps"]
    model, curve, step_s = train(kind, seed, train_len, steps)
    losses, forward_s = {}, {}
    for factor in FACTORS:
        length = factor * train_len
        losses[str(length)], forward_s[factor] = loss_by_position(model, length, size["eval_batches"])
    cost = {"train_step": step_s, "forward_4L": forward_s[max(FACTORS)],
            "wide_step": wide_step_cost(kind, seed, size["wide"])}
    return {"kind": kind, "seed": seed, "cost_cpu_s": cost, "curve": curve[:: max(1, steps // 50)],
            "loss_by_position": losses, "learned_rows": learned_rows(model, train_len)}


def measure(size: dict[str, Any], seeds: int) -> dict[str, Any]:
    """Every kind for every seed, kinds interleaved within a seed so that costs are compared
    over the same minutes of machine time."""
    with base.one_thread():
        cells = [run_cell(kind, seed, size) for seed in range(seeds) for kind in KINDS]
    return {"train_len": size["train_len"], "wide": size["wide"], "cells": cells}


def config(size: dict[str, Any]) -> dict[str, Any]:
    return {**size, "task": "offset copy", "offset": OFFSET, **TASK,
            "eval_lengths": [f * size["train_len"] for f in FACTORS], "max_len": max(FACTORS) * size["train_len"],
            "threads": 1,
            "schedule": "cosine, 10% warm-up", "precision": "fp32", "cost_clock": "process CPU time"}


# -- reading the cells back ----------------------------------------------------------------------


def ranges(train_len: int) -> dict[str, tuple[int, int, int]]:
    """name → (evaluation length, first position, end): the reference inside L and the two beyond.

    The reference is the second half of [0, L): positions with many keys, like those beyond L.
    """
    L = train_len
    return {"within": (L, L // 2, L), "2L": (2 * L, L, 2 * L), "4L": (4 * L, 2 * L, 4 * L)}


def range_loss(cell: dict[str, Any], train_len: int, name: str) -> float:
    length, start, end = ranges(train_len)[name]
    return base.mean(cell["loss_by_position"][str(length)][start:end])


def of_kind(cells: list[dict], kind: str) -> list[dict]:
    return sorted((c for c in cells if c["kind"] == kind), key=lambda c: c["seed"])


def per_seed(cells: list[dict], kind: str, train_len: int, name: str) -> list[float]:
    return [range_loss(c, train_len, name) for c in of_kind(cells, kind)]


def excess(cells: list[dict], kind: str, train_len: int, name: str) -> list[float]:
    """Per seed: loss in range ``name`` minus the within-L reference (nats/token)."""
    return [range_loss(c, train_len, name) - range_loss(c, train_len, "within") for c in of_kind(cells, kind)]


def cost_ratios(cells: list[dict], kind: str, key: str = "train_step") -> list[float]:
    """Per seed: CPU time of ``key`` (train_step, wide_step, forward_4L) over sinusoidal's in that seed."""
    return [c["cost_cpu_s"][key] / ref["cost_cpu_s"][key]
            for c, ref in zip(of_kind(cells, kind), of_kind(cells, "sinusoidal"))]


def extrapolation_status(cells: list[dict], kind: str, train_len: int, name: str, n_sd: float,
                         tolerance: float) -> tuple[str, dict[str, float | bool]]:
    """("fails" | "holds" | "unclear", paired effect) for range ``name`` against within L.

    fails: the excess is larger than ``tolerance`` and than ``n_sd`` sd of seed noise;
    holds: even mean + ``n_sd`` sd of the excess stays below ``tolerance``.
    """
    within, beyond = per_seed(cells, kind, train_len, "within"), per_seed(cells, kind, train_len, name)
    effect = base.paired_effect(beyond, within, n_sd, tolerance)
    if effect["significant"]:
        return "fails", effect
    if effect["mean"] + n_sd * effect["sd"] < tolerance:
        return "holds", effect
    return "unclear", effect


# -- figures and tables --------------------------------------------------------------------------


def plot_positions(results: dict[str, Any], out: Path, name: str, title: str) -> str:
    """Loss against position at 4L, one line per kind: seed mean, bars from the best to the worst seed."""
    cells, train_len = results["cells"], results["train_len"]
    fig, (ax,) = plots.figure(1, width=10, height=4.6)
    length = max(FACTORS) * train_len
    positions = list(range(OFFSET, length))
    for i, kind in enumerate(KINDS):
        rows = [c["loss_by_position"][str(length)][OFFSET:] for c in of_kind(cells, kind)]
        mean = [base.mean(col) for col in zip(*rows)]
        low = [m - min(col) for m, col in zip(mean, zip(*rows))]
        high = [max(col) - m for m, col in zip(mean, zip(*rows))]
        ax.errorbar(positions, mean, yerr=[low, high], color=COLORS[kind], linewidth=1.2, elinewidth=0.7,
                    capsize=1.5, errorevery=(i, 7), label=f"{kind} ({len(rows)} seeds)")
    for factor in (1, 2):
        ax.axvline(factor * train_len - 0.5, color="grey", linestyle="--", linewidth=1)
    ax.axhline(CHANCE, color="black", linestyle=":", linewidth=1, label=f"chance ln {TASK['symbols']}")
    ax.set_yscale("log")
    ax.set(xlabel=f"position in a {length}-token sequence (trained on {train_len}; dashed: L, 2L)",
           ylabel="held-out loss (nats/token, log)", title=title)
    ax.legend(fontsize=7, ncol=2, loc="lower right")
    return plots.save(fig, out, name)


def plot_summary(results: dict[str, Any], out: Path, name: str) -> str:
    """Per kind and seed: the loss excess beyond L over within L, and the step cost vs sinusoidal."""
    cells, train_len, wide = results["cells"], results["train_len"], results["wide"]
    fig, (ax_x, ax_c) = plots.figure(2, width=5.2)
    for i, kind in enumerate(KINDS):
        plots.seed_points(ax_x, i - 0.17, excess(cells, kind, train_len, "2L"), "C0", width=0.25)
        plots.seed_points(ax_x, i + 0.17, excess(cells, kind, train_len, "4L"), "C3", width=0.25)
        plots.seed_points(ax_c, i - 0.17, cost_ratios(cells, kind), "C0", width=0.25)
        plots.seed_points(ax_c, i + 0.17, cost_ratios(cells, kind, "wide_step"), "C3", width=0.25)
    ax_x.scatter([], [], color="C0", s=14, label="positions [L, 2L) at 2L")
    ax_x.scatter([], [], color="C3", s=14, label="positions [2L, 4L) at 4L")
    ax_x.axhline(0, color="grey", linewidth=1)
    ax_x.set(ylabel="loss beyond − loss within L (nats/token)", title="extrapolation, each seed")
    ax_x.legend(fontsize=7)
    ax_c.scatter([], [], color="C0", s=14, label=f"d_model {TASK['d_model']}, length {train_len}")
    ax_c.scatter([], [], color="C3", s=14, label=f"d_model {wide['d_model']}, length {wide['length']}")
    ax_c.axhline(1, color="grey", linewidth=1)
    ax_c.set(ylabel="CPU time per training step / sinusoidal's", title="cost of a training step, each seed")
    ax_c.legend(fontsize=7)
    for ax in (ax_x, ax_c):
        ax.set_xticks(range(len(KINDS)))
        ax.set_xticklabels(KINDS, fontsize=7, rotation=30)
    return plots.save(fig, out, name)


def mean_sd(xs: list[float]) -> str:
    return f"{base.mean(xs):.3f} ± {base.std(xs):.3f}"


def kind_table(results: dict[str, Any]) -> Table:
    """Per kind: loss within L, at 2L and 4L beyond L, the excess, and the costs vs sinusoidal."""
    cells, train_len, wide = results["cells"], results["train_len"], results["wide"]
    rows = []
    for kind in KINDS:
        rows.append([kind, mean_sd(per_seed(cells, kind, train_len, "within")),
                     mean_sd(per_seed(cells, kind, train_len, "2L")), mean_sd(per_seed(cells, kind, train_len, "4L")),
                     mean_sd(excess(cells, kind, train_len, "2L")), mean_sd(excess(cells, kind, train_len, "4L")),
                     *(fmt(base.mean(cost_ratios(cells, kind, key)))
                       for key in ("train_step", "wide_step", "forward_4L"))])
    columns = ["kind", f"loss [L/2, L) at L={train_len}", "loss [L, 2L) at 2L", "loss [2L, 4L) at 4L",
               "excess at 2L", "excess at 4L", "train step / sinusoidal",
               f"step at d={wide['d_model']}, T={wide['length']} / sinusoidal", "forward at 4L / sinusoidal"]
    return columns, rows


def learned_rows_table(results: dict[str, Any]) -> Table:
    """The learned table's rows inside and beyond L after training, against their initial norm."""
    cells = results["cells"]
    rows = [[str(c["seed"]), fmt(r["trained_rows"]), fmt(r["beyond_rows"]), fmt(r["init_expected"])]
            for c in of_kind(cells, "learned") if (r := c["learned_rows"])]
    return ["seed", "learned rows < L: mean norm", "rows ≥ L (untrained)", "expected norm at init"], rows


__all__ = ["KINDS", "ABSOLUTE", "RELATIVE", "FACTORS", "OFFSET", "TASK", "CHANCE", "offset_copy_batch",
           "model_config", "measure", "config", "WIDE", "ranges", "per_seed", "excess", "cost_ratios",
           "extrapolation_status",
           "plot_positions", "plot_summary", "kind_table", "learned_rows_table"]
