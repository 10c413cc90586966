"""Question 12: why LayerNorm rather than BatchNorm in a Transformer, and where does it sit? (LN/BN)

Claims under test (as commonly answered): LayerNorm is preferred because it normalises each
token over its own features, so it depends neither on batch statistics nor on padding and works
at batch size 1; and pre-LN (x + f(LN(x))) trains stably without learning-rate warm-up while
post-LN (LN(x + f(x))) needs warm-up once the stack is deep.

Method, on a character-level LM over the lines of Tiny Shakespeare (one line a sequence, so the
lengths vary from 2 to 65 tokens and every batch of several lines is padded); 2-layer pre-LN
models, d_model 32, every number per seed:
1. Batch dependence: a trained model in train mode (the mode BatchNorm uses batch statistics
   in; its running statistics are restored afterwards) runs one held-out line alone, then the
   same line with trailing padding, with other lines cut to its length (no padding), and with
   other, longer lines (padded). The max |difference| of its logits from the line-alone run, for
   LayerNorm, RMSNorm, BatchNorm over real tokens (``norm="batch"``) and BatchNorm counting
   padding (``norm="batch_naive"``, run on the BatchNorm model's trained weights), in train mode
   and in eval mode.
2. Batch size: the same LMs trained at 1 line and at 16 lines a batch (150 steps, Adam at lr
   3e-3, cosine decay, no warm-up; qkv's init, std 0.02); held-out loss in eval
   mode (BatchNorm with its running statistics), paired by seed (the norms of a seed see the
   same batches).
3. Placement: LayerNorm LMs at 6 and 12 layers, weights at std d_model^-½ (the Xavier scale
   of the original Transformer), 8 lines a batch, 200 steps of Adam at lr 3e-3: post-LN
   with and without linear warm-up over the first 20 % of the steps, pre-LN without. Held-out
   loss, and how many seeds fail: a non-finite loss, or a held-out loss not below that of the
   training text's character frequencies (nothing learnt beyond the unigram).

Reproduce: ``qkv ask 12 --size full``.
"""

from __future__ import annotations

import functools
import math
import tempfile
import textwrap
import time
from collections import Counter
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import torch
from torch import Tensor, nn

from ..config import ModelConfig
from ..data import load_shakespeare, pad_batch
from ..errors import TrainingError
from ..models import build_model
from ..train import IGNORE_INDEX, Trainer, TrainConfig, smoothed_cross_entropy
from . import base, plots
from .table import Table, fmt

NUMBER = 12
TITLE = "Why LayerNorm not BatchNorm; where does LN sit?"
KEYWORD = "LN/BN"
CLAIMS = [
    "LayerNorm does not depend on batch statistics or padding: a token's output is the same whatever "
    "else is in its batch, while BatchNorm's is not.",
    "LayerNorm works at batch size 1, where BatchNorm is worse.",
    "Pre-LN trains stably without warm-up; post-LN needs warm-up at depth.",
]
ANSWER = """\
LayerNorm normalises each token over its d features, y = (x − μ_token) / σ_token · γ + β, so a
token's output is a function of that token's vector alone: the same at batch size 1 and 1000,
in training and at inference, with or without padding in the batch. BatchNorm normalises each
feature over the batch, y = (x − μ_batch) / σ_batch · γ + β, with μ and σ taken over every
(sequence, position) of the batch in training and replaced by running averages at test time.
In a Transformer that couples the sequences of a batch (a token's output changes with its
batch-mates), makes padding part of the statistics unless it is masked out, makes the
statistics noisy when the batch is small, and opens a gap between training and inference; the
statistics also mix positions whose activations differ systematically. RMSNorm (x / rms(x) · γ)
keeps LayerNorm's per-token property at lower cost.

Where LN sits: the original Transformer is post-LN, LN(x + f(x)); most current models are
pre-LN, x + f(LN(x)), with a final LN before the output. In post-LN every residual path passes
through a norm, the gradient at initialisation is largest near the output and the early Adam
steps are unreliable, so deep post-LN stacks are usually trained with learning-rate warm-up
(Xiong et al., 2020; Liu et al., 2020). Pre-LN leaves an identity path from every layer to the
output, so it trains without warm-up, at some cost in final quality for shallow models.

The measurements check each part: how much a line's logits move with its batch-mates and
with padding under each norm, the held-out loss of each norm at batch sizes 1 and 16, and
post-LN with and without warm-up against pre-LN at 6 and 12 layers."""
FULL_SEEDS = 5
SMOKE_SEEDS = 1
MIN_SEEDS = 3  # fewer seeds cannot estimate the noise
N_SD = 2.0  # an effect must exceed 2 standard deviations of the per-seed differences
MIN_LOSS_GAP = 0.03  # nats/char, about 1 % of the loss here: smaller gaps do not matter
INVARIANT_TOL = 1e-5  # max |Δ logit| float32 rounding from other tensor shapes stays below this
DEPENDENT_MIN = 1e-3  # a change of the logits far above rounding: the output depends on the batch
MIN_MORE_FAILED = 2  # seeds: "needs warm-up" when warm-up saves at least this many more runs
NORMS = ("layer", "rms", "batch", "batch_naive")
NORM_NAMES = {"layer": "LayerNorm", "rms": "RMSNorm", "batch": "BatchNorm", "batch_naive": "BatchNorm, pads counted"}
NORM_COLORS = {"layer": "C0", "rms": "C2", "batch": "C3", "batch_naive": "C1"}
CONTEXTS = {"padding": "+ trailing padding", "other_lines": "+ other lines, same length",
            "other_lines_padded": "+ other, longer lines (padded)"}
TASK = {"d_model": 32, "n_heads": 2, "d_ff": 64, "n_layers": 2, "lr": 3e-3, "eval_batch": 64,
        "probe_others": 7, "probe_pads": 32, "probe_target_len": (8, 24)}
# Weights at std d_model^-½ (the Xavier scale of the original Transformer, and the premise of
# Xiong et al.'s analysis of post-LN) rather than qkv's 0.02, at which every sublayer starts near zero.
PLACEMENT = {"batch": 8, "lr": TASK["lr"], "warmup_fraction": 0.2, "init_std": TASK["d_model"] ** -0.5}
PLACEMENT_CELLS = (("post", False), ("post", True), ("pre", False))  # (norm_placement, warm-up)
SIZES = {
    "smoke": {"batch_sizes": [1, 2], "steps": 3, "depths": [2], "placement_steps": 2, "eval_lines": 8},
    "full": {"batch_sizes": [1, 16], "steps": 150, "depths": [6, 12], "placement_steps": 200, "eval_lines": 256},
}
FIRST_CHAR = 4  # ids 0–3 are pad, unk, bos, eos
PAD, BOS, EOS = 0, 2, 3


# -- the data: one line of Tiny Shakespeare per sequence -------------------------------------


@functools.lru_cache(maxsize=1)
def characters() -> str:
    return "".join(sorted(set(load_shakespeare("train"))))


@functools.lru_cache(maxsize=2)
def encoded_lines(split: str) -> tuple[list[int], ...]:
    """Each non-blank line of the split as ids bos + characters + eos (unseen characters dropped)."""
    ids = {c: FIRST_CHAR + i for i, c in enumerate(characters())}
    return tuple([BOS, *(ids[c] for c in line if c in ids), EOS]
                 for line in load_shakespeare(split).split("\n") if line.strip())


def line_batch(lines: list[list[int]]) -> dict[str, Tensor]:
    """Right-padded LM batch: input_ids, mask (True = real) and labels (-100 on padding), all ``(B, T)``."""
    ids, mask = pad_batch(lines, PAD)  # (B, T + 1)
    labels = ids[:, 1:].masked_fill(~mask[:, 1:], IGNORE_INDEX)  # (B, T): the next character
    return {"input_ids": ids[:, :-1], "mask": mask[:, :-1], "labels": labels}


def sample_lines(g: torch.Generator, lines: tuple[list[int], ...], n: int) -> list[list[int]]:
    return [lines[i] for i in torch.randint(len(lines), (n,), generator=g).tolist()]


def held_out_lines(n: int) -> list[list[int]]:
    """The first ``n`` validation lines, the same for every model."""
    return list(encoded_lines("val")[:n])


def unigram_loss(n_lines: int) -> float:
    """Held-out nats/char of the training text's character frequencies (add-one smoothed)."""
    counts = Counter(i for line in encoded_lines("train") for i in line[1:])
    total, vocab = sum(counts.values()), len(characters()) + 1
    targets = [i for line in held_out_lines(n_lines) for i in line[1:]]
    return -sum(math.log((counts[i] + 1) / (total + vocab)) for i in targets) / len(targets)


# -- models and training --------------------------------------------------------------------


def lm_config(norm: str, placement: str = "pre", n_layers: int | None = None, init_std: float = 0.02) -> ModelConfig:
    """The question's small character LM, dropout off so seeds differ only in init and data."""
    return ModelConfig(family="lm", vocab_size=FIRST_CHAR + len(characters()), d_model=TASK["d_model"],
                       n_heads=TASK["n_heads"], d_ff=TASK["d_ff"], n_layers=n_layers or TASK["n_layers"],
                       max_len=max(len(line) for line in encoded_lines("train")), norm=norm,
                       norm_placement=placement, dropout_embed=0.0, dropout_residual=0.0,
                       dropout_attention=0.0, dropout_activation=0.0, init_std=init_std)


def train_on_lines(cfg: ModelConfig, *, seed: int, steps: int, batch: int, lr: float,
                   warmup: int = 0) -> tuple[nn.Module | None, list[float]]:
    """Train a fresh model on random training lines with qkv's Trainer (cosine decay after
    ``warmup`` linear warm-up steps); (None, curve so far) if the loss became non-finite."""
    torch.manual_seed(seed)
    model = build_model(cfg)
    tcfg = TrainConfig(lr=lr, schedule="cosine", warmup_steps=warmup, max_steps=steps, label_smoothing=0.0,
                       precision="fp32", device="cpu", seed=seed, log_every=steps + 1, weight_decay=0.0)
    g = torch.Generator().manual_seed(10_000 + seed)  # the same batches for every norm of a seed
    lines, curve = encoded_lines("train"), []
    with tempfile.TemporaryDirectory() as tmp:  # the trainer's log; no checkpoint is written
        trainer = Trainer(model, tcfg, lambda epoch: [], tmp, progress=False)
        try:
            for _ in range(steps):
                curve.append(trainer.train_step([line_batch(sample_lines(g, lines, batch))])["loss"])
        except TrainingError:
            return None, curve
    return model.eval(), curve


@contextmanager
def batch_statistics(model: nn.Module) -> Iterator[nn.Module]:
    """Train mode without gradients (BatchNorm normalises with the batch's own statistics), the
    running statistics it updates meanwhile restored on exit, then eval mode again."""
    saved = {name: buf.clone() for name, buf in model.named_buffers()}
    model.train()
    try:
        with torch.no_grad():
            yield model
    finally:
        model.eval()
        for name, buf in model.named_buffers():
            buf.copy_(saved[name])


@torch.no_grad()
def mean_loss(model: nn.Module, lines: list[list[int]], batch: int) -> float:
    """Nats/char over ``lines`` fed in consecutive batches of ``batch`` lines, in the model's mode."""
    loss_sum, count = 0.0, 0
    for i in range(0, len(lines), batch):
        b = line_batch(lines[i: i + batch])
        summed, n = smoothed_cross_entropy(model.forward_batch(b), b["labels"])  # logits (B, T, V)
        loss_sum, count = loss_sum + float(summed), count + int(n)
    return loss_sum / count


def held_out(model: nn.Module | None, train_batch: int, n_lines: int) -> dict[str, float | None]:
    """Held-out loss over ``n_lines`` lines in eval mode (running statistics) and in train mode at
    the training batch size."""
    if model is None:
        return {"eval_loss": None, "train_mode_loss": None}
    lines = held_out_lines(n_lines)
    with batch_statistics(model):
        train_mode = mean_loss(model, lines, train_batch)
    return {"eval_loss": mean_loss(model.eval(), lines, TASK["eval_batch"]), "train_mode_loss": train_mode}


# -- part 1: does a line's output depend on its batch? ----------------------------------------


def probe_batches(seed: int) -> tuple[int, dict[str, dict[str, Tensor]]]:
    """A held-out line and the batches it is run in: alone, then in each of ``CONTEXTS``.
    Returns (its input length, {context: batch}); the line is always row 0."""
    g = torch.Generator().manual_seed(500 + seed)
    lo, hi = TASK["probe_target_len"]
    pool = encoded_lines("val")
    target = [line for line in pool if lo <= len(line) <= hi]
    line = target[int(torch.randint(len(target), (1,), generator=g))]
    longer = [other for other in pool if len(other) > len(line) + 4]
    others = sample_lines(g, tuple(longer), TASK["probe_others"])
    padded = line_batch([line])
    pads = torch.zeros(1, TASK["probe_pads"], dtype=torch.long)  # (1, P)
    padded = {"input_ids": torch.cat([padded["input_ids"], pads + PAD], 1),
              "mask": torch.cat([padded["mask"], pads.bool()], 1),
              "labels": torch.cat([padded["labels"], pads + IGNORE_INDEX], 1)}
    return len(line) - 1, {"alone": line_batch([line]), "padding": padded,
                           "other_lines": line_batch([line] + [o[: len(line)] for o in others]),
                           "other_lines_padded": line_batch([line] + others)}


@torch.no_grad()
def logit_shift(model: nn.Module, batches: dict[str, dict[str, Tensor]], length: int) -> dict[str, float]:
    """Max |logits of row 0 in each context − logits of the line alone| over its real positions."""
    alone = model.forward_batch(batches["alone"])[0, :length]  # (T, V)
    return {c: float((model.forward_batch(batches[c])[0, :length] - alone).abs().max()) for c in CONTEXTS}


def batch_dependence(model: nn.Module, seed: int) -> dict[str, dict[str, float]]:
    """``logit_shift`` in train mode (batch statistics) and in eval mode (running statistics)."""
    length, batches = probe_batches(seed)
    with batch_statistics(model):
        train_mode = logit_shift(model, batches, length)
    return {"train": train_mode, "eval": logit_shift(model.eval(), batches, length)}


def naive_twin(model: nn.Module) -> nn.Module:
    """The same weights with BatchNorm statistics that count padding (``norm="batch_naive"``)."""
    twin = build_model(model.config.replace(norm="batch_naive"))
    twin.load_state_dict(model.state_dict())
    return twin.eval()


def norm_cell(norm: str, batch: int, seed: int, steps: int, eval_lines: int,
              probe_naive_twin: bool = False) -> dict[str, Any]:
    """One (norm, batch size, seed): train, then held-out losses and the batch-dependence probe
    (with ``probe_naive_twin``, also of a BatchNorm model's weights counting padding)."""
    model, curve = train_on_lines(lm_config(norm), seed=seed, steps=steps, batch=batch, lr=TASK["lr"])
    cell = {"norm": norm, "batch": batch, "seed": seed, **held_out(model, batch, eval_lines),
            "probe": batch_dependence(model, seed) if model is not None else None,
            "curve": curve[:: max(1, steps // 50)]}
    if probe_naive_twin and model is not None:
        cell["probe_naive_twin"] = batch_dependence(naive_twin(model), seed)
    return cell




# -- part 3: where the norm sits ----------------------------------------------------------------


def placement_cell(placement: str, warmup: bool, depth: int, seed: int, steps: int, eval_lines: int,
                   unigram: float) -> dict[str, Any]:
    """One (placement, warm-up, depth, seed) LayerNorm LM: held-out loss and whether it failed."""
    warmup_steps = int(steps * PLACEMENT["warmup_fraction"]) if warmup else 0
    cfg = lm_config("layer", placement, depth, PLACEMENT["init_std"])
    model, curve = train_on_lines(cfg, seed=seed, steps=steps,
                                  batch=PLACEMENT["batch"], lr=PLACEMENT["lr"], warmup=warmup_steps)
    loss = mean_loss(model, held_out_lines(eval_lines), TASK["eval_batch"]) if model is not None else None
    return {"placement": placement, "warmup": warmup, "depth": depth, "seed": seed, "eval_loss": loss,
            "failed": loss is None or not math.isfinite(loss) or loss >= unigram,
            "curve": curve[:: max(1, steps // 50)]}


def run(size: str, seeds: int, out: Path) -> dict[str, Any]:
    started = time.perf_counter()
    s = SIZES[size]
    with base.one_thread():
        unigram = unigram_loss(s["eval_lines"])
        norms = [norm_cell(norm, b, seed, s["steps"], s["eval_lines"], probe_naive_twin=norm == "batch")
                 for seed in range(seeds) for b in s["batch_sizes"] for norm in ("layer", "rms", "batch")]
        placement = [placement_cell(p, w, d, seed, s["placement_steps"], s["eval_lines"], unigram)
                     for seed in range(seeds) for d in s["depths"] for p, w in PLACEMENT_CELLS]
    results = {"unigram_loss": unigram, "norms": norms, "placement": placement}
    config = {**s, "task": "next character of Tiny Shakespeare lines, one line a sequence", **TASK,
              "placement": {**PLACEMENT, "cells": PLACEMENT_CELLS}, "schedule": "cosine",
              "norm_placement": "pre (parts 1 and 2)", "precision": "fp32"}
    names = [plot_batch(results, out), plot_placement(results, s["placement_steps"], out)]
    return base.finish(verdict, base.record(NUMBER, size, seeds, out, config, results, names, started), out)


# -- summaries shared by the plots, the tables and the verdict ----------------------------------


def probes(cells: list[dict], norm: str) -> list[dict]:
    """The batch-dependence probes of every trained model of ``norm``. This question trains no
    "batch_naive" model: for it, the BatchNorm models' weights run with pads counted."""
    own = [c["probe"] for c in cells if c["norm"] == norm and c["probe"]]
    if norm == "batch_naive" and not own:
        return [c["probe_naive_twin"] for c in cells if c["norm"] == "batch" and c.get("probe_naive_twin")]
    return own


def shift_range(cells: list[dict], norm: str, contexts=tuple(CONTEXTS), mode: str = "train") -> tuple[float, float]:
    """(smallest, largest) max |Δ logit| over the models of ``norm`` and ``contexts``."""
    shifts = [p[mode][c] for p in probes(cells, norm) for c in contexts]
    return (min(shifts), max(shifts)) if shifts else (math.nan, math.nan)


def losses(cells: list[dict], norm: str, batch: int, key: str = "eval_loss") -> list[float | None]:
    """``key`` of every seed of (norm, batch size), ordered by seed."""
    return [c[key] for c in sorted(cells, key=lambda c: c["seed"]) if c["norm"] == norm and c["batch"] == batch]


def paired(a: list[float | None], b: list[float | None]) -> dict[str, float | bool] | None:
    """``base.paired_effect(a, b)`` over the seeds where both ran; None if fewer than ``MIN_SEEDS``."""
    pairs = [(x, y) for x, y in zip(a, b) if x is not None and y is not None]
    if len(pairs) < MIN_SEEDS:
        return None
    return base.paired_effect([x for x, _ in pairs], [y for _, y in pairs], N_SD, MIN_LOSS_GAP)


def placement_runs(metrics: dict[str, Any], placement: str, warmup: bool, depth: int) -> list[dict]:
    return sorted((r for r in metrics["results"]["placement"]
                   if r["placement"] == placement and r["warmup"] == warmup and r["depth"] == depth),
                  key=lambda r: r["seed"])


def effect_text(e: dict | None) -> str:
    return "too few runs" if e is None else f"{e['mean']:+.3f} ± {e['sd']:.3f} nats/char"


def invariance_claim(metrics: dict[str, Any]) -> tuple[bool, str]:
    """Claim 1: LayerNorm and RMSNorm outputs never move with the batch; BatchNorm's do."""
    cells = metrics["results"]["norms"]
    ln, rms = shift_range(cells, "layer")[1], shift_range(cells, "rms")[1]
    bn = shift_range(cells, "batch", ("other_lines", "other_lines_padded"))[0]
    holds = ln <= INVARIANT_TOL and rms <= INVARIANT_TOL and bn >= DEPENDENT_MIN
    return holds, (f"a line's logits move by at most {ln:.1e} (LayerNorm) and {rms:.1e} (RMSNorm) with its "
                   f"batch-mates and padding (tolerance {INVARIANT_TOL:.0e}), and by at least {bn:.2g} under "
                   f"BatchNorm in train mode (threshold {DEPENDENT_MIN:.0e})")


def batch_one_claim(metrics: dict[str, Any]) -> tuple[bool, str]:
    """Claim 2: at the smallest batch size BatchNorm's held-out loss is above LayerNorm's."""
    cells = metrics["results"]["norms"]
    smallest = min(c["batch"] for c in cells)
    gap = paired(losses(cells, "batch", smallest), losses(cells, "layer", smallest))
    others = ", ".join(f"{effect_text(paired(losses(cells, 'batch', b), losses(cells, 'layer', b)))} at batch {b}"
                       for b in sorted({c["batch"] for c in cells} - {smallest}))
    holds = gap is not None and bool(gap["significant"])
    return holds, (f"held-out loss BatchNorm − LayerNorm = {effect_text(gap)} at batch size {smallest} "
                   f"({'beyond' if holds else 'not beyond'} {N_SD:g} sd and {MIN_LOSS_GAP} nats/char)"
                   + (f"; {others}" if others else ""))


def failures(runs: list[dict]) -> int:
    return sum(r["failed"] for r in runs)


def placement_claim(metrics: dict[str, Any]) -> tuple[bool, str]:
    """Claim 3: pre-LN never fails without warm-up; at the largest depth post-LN without warm-up
    fails in more seeds than with it, or ends at a higher loss beyond noise."""
    depths = sorted({r["depth"] for r in metrics["results"]["placement"]})
    deep = depths[-1]
    pre_failed = {d: failures(placement_runs(metrics, "pre", False, d)) for d in depths}
    cold, warm = placement_runs(metrics, "post", False, deep), placement_runs(metrics, "post", True, deep)
    gap = paired([r["eval_loss"] for r in cold], [r["eval_loss"] for r in warm])
    more_failed = failures(cold) - failures(warm)
    needs_warmup = more_failed >= MIN_MORE_FAILED or (gap is not None and bool(gap["significant"]))
    pre_text = ", ".join(f"{n}/{len(placement_runs(metrics, 'pre', False, d))} at {d} layers"
                         for d, n in pre_failed.items())
    return (not any(pre_failed.values())) and needs_warmup, (
        f"pre-LN without warm-up fails in {pre_text}; at {deep} layers post-LN fails in {failures(cold)}/{len(cold)} "
        f"seeds without warm-up and {failures(warm)}/{len(warm)} with it, held-out loss without − with "
        f"warm-up {effect_text(gap)}")


def verdict(metrics: dict[str, Any]) -> tuple[str, str]:
    undecided = base.undecidable(metrics, MIN_SEEDS)
    if undecided:
        return undecided
    parts = {"batch independence": invariance_claim(metrics), "batch size 1": batch_one_claim(metrics),
             "placement": placement_claim(metrics)}
    text = "; ".join(f"{name}: {reason}" for name, (_, reason) in parts.items())
    held = [name for name, (ok, _) in parts.items() if ok]
    if len(held) == len(parts):
        return "confirmed", f"every part holds — {text}"
    if not held:
        return "refuted", f"no part holds — {text}"
    failed = [name for name in parts if name not in held]
    return "depends", f"holds for {', '.join(held)}, not for {', '.join(failed)} — {text}"


# -- plots and tables -------------------------------------------------------------------------

ZERO_FLOOR = 1e-9  # a log axis cannot show 0: exactly-zero shifts are drawn here


def plot_shifts(ax, cells: list[dict], norms: tuple[str, ...], title: str) -> None:
    """Max |Δ logit| of each model (a point per seed), grouped by context, on a log axis."""
    for i, context in enumerate(CONTEXTS):
        for j, norm in enumerate(norms):
            values = [max(p["train"][context], ZERO_FLOOR) for p in probes(cells, norm)]
            plots.seed_points(ax, i * (len(norms) + 1) + j, values, NORM_COLORS[norm],
                              label=NORM_NAMES[norm] if i == 0 else None, width=0.4)
    ax.axhline(INVARIANT_TOL, color="grey", linestyle=":", label=f"rounding tolerance {INVARIANT_TOL:.0e}")
    ax.set_xticks([i * (len(norms) + 1) + (len(norms) - 1) / 2 for i in range(len(CONTEXTS))])
    ax.set_xticklabels([textwrap.fill(label, 16) for label in CONTEXTS.values()], fontsize=7)
    ax.set(yscale="log", ylabel=f"max |Δ logit| vs line alone (0 drawn at {ZERO_FLOOR:.0e})", title=title)
    ax.legend(fontsize=7)


def plot_losses(ax, cells: list[dict], norms: tuple[str, ...], key: str = "eval_loss") -> None:
    """Held-out loss per batch size and norm, a point per seed."""
    sizes = sorted({c["batch"] for c in cells})
    for i, b in enumerate(sizes):
        for j, norm in enumerate(norms):
            values = [x for x in losses(cells, norm, b, key) if x is not None]
            plots.seed_points(ax, i * (len(norms) + 1) + j, values, NORM_COLORS[norm],
                              label=NORM_NAMES[norm] if i == 0 else None, width=0.4)
    ax.set_xticks([i * (len(norms) + 1) + (len(norms) - 1) / 2 for i in range(len(sizes))])
    ax.set_xticklabels([f"batch {b} lines" for b in sizes])
    ax.set(ylabel="held-out loss (nats/char)", title="held-out loss, eval mode")
    ax.legend(fontsize=7)


def plot_batch(results: dict[str, Any], out: Path) -> str:
    fig, (ax_shift, ax_loss) = plots.figure(2, width=5.2)
    plot_shifts(ax_shift, results["norms"], NORMS, "a line's logits in train mode, by batch-mates")
    plot_losses(ax_loss, results["norms"], ("layer", "rms", "batch"))
    return plots.save(fig, out, "q12_batch.png")


PLACEMENT_COLORS = {("post", False): "C3", ("post", True): "C1", ("pre", False): "C2"}


def cell_name(placement: str, warmup: bool) -> str:
    return f"{placement}-LN, {'warm-up' if warmup else 'no warm-up'}"


def plot_placement(results: dict[str, Any], steps: int, out: Path) -> str:
    fig, (ax_l, ax_c) = plots.figure(2, width=5.0)
    runs, depths = results["placement"], sorted({r["depth"] for r in results["placement"]})
    for i, d in enumerate(depths):
        for j, (p, w) in enumerate(PLACEMENT_CELLS):
            cell = [r for r in runs if (r["depth"], r["placement"], r["warmup"]) == (d, p, w)]
            plots.seed_points(ax_l, i * 4 + j, [r["eval_loss"] for r in cell if r["eval_loss"] is not None],
                              PLACEMENT_COLORS[p, w], label=cell_name(p, w) if i == 0 else None, width=0.5)
            for r in cell:
                if d == depths[-1]:
                    ax_c.plot(r["curve"], color=PLACEMENT_COLORS[p, w], alpha=0.4)
    ax_l.axhline(results["unigram_loss"], color="grey", linestyle=":", label="unigram (fails at or above)")
    ax_l.set_xticks([i * 4 + 1 for i in range(len(depths))])
    ax_l.set_xticklabels([f"{d} layers" for d in depths])
    ax_l.set(ylabel="held-out loss (nats/char)", title="LayerNorm placement and warm-up")
    ax_l.legend(fontsize=7)
    for p, w in PLACEMENT_CELLS:
        ax_c.plot([], [], color=PLACEMENT_COLORS[p, w], label=cell_name(p, w))
    ax_c.set(xlabel=f"step (×{max(1, steps // 50)})", ylabel="training loss (nats/char)",
             title=f"training curves at {depths[-1]} layers, every seed")
    ax_c.legend(fontsize=7)
    return plots.save(fig, out, "q12_placement.png")


def mean_sd(values: list[float | None]) -> str:
    finite = [v for v in values if v is not None]
    return f"{base.mean(finite):.3f} ± {base.std(finite):.3f}" if finite else "—"


def shift_table(cells: list[dict], norms: tuple[str, ...]) -> Table:
    """Per norm: the largest max |Δ logit| over seeds in each context, train mode, and in eval mode."""
    rows = [[NORM_NAMES[n], *(fmt(shift_range(cells, n, (c,))[1]) for c in CONTEXTS),
             fmt(shift_range(cells, n, tuple(CONTEXTS), "eval")[1])] for n in norms]
    return ["norm", *(f"train mode, {c}" for c in CONTEXTS.values()), "eval mode, any"], rows


def loss_table(cells: list[dict], norms: tuple[str, ...]) -> Table:
    """Per (batch size, norm): held-out loss in eval and train mode, and the paired gap to LayerNorm."""
    rows = []
    for b in sorted({c["batch"] for c in cells}):
        for n in norms:
            gap = paired(losses(cells, n, b), losses(cells, "layer", b)) if n != "layer" else None
            rows.append([str(b), NORM_NAMES[n], mean_sd(losses(cells, n, b)),
                         mean_sd(losses(cells, n, b, "train_mode_loss")), "" if n == "layer" else effect_text(gap)])
    return ["batch (lines)", "norm", "held-out loss, eval mode", "held-out loss, train mode",
            "eval loss − LayerNorm's (paired)"], rows


def tables(metrics: dict[str, Any]) -> list[Table]:
    r = metrics["results"]
    rows = []
    for d in sorted({x["depth"] for x in r["placement"]}):
        for p, w in PLACEMENT_CELLS:
            runs = placement_runs(metrics, p, w, d)
            rows.append([str(d), cell_name(p, w), mean_sd([x["eval_loss"] for x in runs]),
                         f"{failures(runs)}/{len(runs)}"])
    placement = (["layers", "placement", "held-out loss (nats/char)",
                  f"failed (loss ≥ unigram {r['unigram_loss']:.3f})"], rows)
    return [shift_table(r["norms"], NORMS), loss_table(r["norms"], ("layer", "rms", "batch")), placement]
