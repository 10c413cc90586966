"""Question 13: BatchNorm — how it works, its advantages and its drawbacks. (BatchNorm)

Claims under test (as commonly answered): BatchNorm normalises each feature over the batch, so
in training a token's output depends on the other sequences of its batch; at test time it uses
running averages of those statistics instead, which opens a train/eval gap; and it is hurt by
small batches (noisy statistics) and by padding (pad positions entering the statistics).

Method, on question 12's task: a character-level LM over the lines of Tiny Shakespeare (one line
a sequence, 2 to 65 tokens, so batches of several lines are padded), 2-layer pre-norm models,
d_model 32, trained at 2, 8 and 32 lines a batch with LayerNorm, RMSNorm, BatchNorm over real
tokens (``norm="batch"``) and BatchNorm counting padding (``norm="batch_naive"``). The norms of
a seed see the same batches, so every comparison is paired by seed.
1. Batch dependence: each trained model runs a held-out line alone, with trailing padding, with
   other lines cut to its length and with other, longer lines; the max |difference| of its
   logits from the line-alone run, in train mode (batch statistics; the running statistics are
   restored afterwards) and in eval mode (running statistics).
2. Batch size and padding: held-out loss in eval mode at each batch size; BatchNorm − LayerNorm
   at the smallest against the largest batch, and counting padding − not counting it.
3. Train/eval gap: the same held-out lines in train mode, fed in batches of the training batch
   size, against eval mode.

Reproduce: ``qkv ask 13 --size full``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from . import base, plots
from . import q12_layernorm as lnbn
from .table import Table

NUMBER = 13
TITLE = "BatchNorm: how it works, pros and cons"
KEYWORD = "BatchNorm"
CLAIMS = [
    "BatchNorm normalises each feature over the batch, so in training a token's output depends on its batch-mates.",
    "At test time it uses running statistics, which opens a train/eval gap.",
    "It is hurt by small batches.",
    "It is hurt by padding when pad positions enter its statistics.",
]
ANSWER = """\
For each feature k BatchNorm takes the mean and variance over everything the batch holds at
that feature — in a sequence model every (sequence, position), padding excluded if it is
masked out:

    μ_k = (1/N) Σ_n x_nk,   σ²_k = (1/N) Σ_n (x_nk − μ_k)²,   y_nk = γ_k (x_nk − μ_k) / √(σ²_k + ε) + β_k

and keeps running averages μ̂ ← (1 − m) μ̂ + m μ, σ̂² ← (1 − m) σ̂² + m σ² (momentum m = 0.1)
that replace μ and σ² at test time, so that a single example can be processed. Pros: it keeps
every feature at zero mean and unit variance whatever the weights do, which allows larger
learning rates and made deep CNNs trainable; the batch noise is a mild regulariser; at test
time it is a fixed affine map that folds into the preceding layer. Cons: in training each
output depends on the batch it happens to be in; the test-time statistics are not the ones the
model was trained with (the train/eval gap); with few examples a batch the statistics are
noisy; padded positions corrupt them unless they are masked out; and the batch statistics mix
positions and sequences of different lengths. These are why Transformers use LayerNorm or
RMSNorm, which normalise each token on its own (question 12).

The measurements check each con: how much a line's logits move with its batch-mates and its
padding, the held-out loss at 2, 8 and 32 lines a batch, with and without pads in the
statistics, and the same held-out lines in train and in eval mode."""
FULL_SEEDS = 5
SMOKE_SEEDS = 1
MIN_SEEDS = 3  # fewer seeds cannot estimate the noise
N_SD = lnbn.N_SD
MIN_LOSS_GAP = lnbn.MIN_LOSS_GAP  # nats/char
INVARIANT_TOL, DEPENDENT_MIN = lnbn.INVARIANT_TOL, lnbn.DEPENDENT_MIN
NORMS = lnbn.NORMS
SIZES = {
    "smoke": {"batch_sizes": [2, 4], "steps": 3, "eval_lines": 8},
    "full": {"batch_sizes": [2, 8, 32], "steps": 200, "eval_lines": 256},
}
HOLDS, PARTLY, FAILS = "holds", "holds in part", "does not hold"


def run(size: str, seeds: int, out: Path) -> dict[str, Any]:
    started = time.perf_counter()
    s = SIZES[size]
    with base.one_thread():
        cells = [lnbn.norm_cell(norm, b, seed, s["steps"], s["eval_lines"])
                 for seed in range(seeds) for b in s["batch_sizes"] for norm in NORMS]
    results = {"norms": cells}
    config = {**s, "task": "next character of Tiny Shakespeare lines, one line a sequence", **lnbn.TASK,
              "norm_placement": "pre", "schedule": "cosine, no warm-up", "batchnorm_momentum": 0.1,
              "precision": "fp32"}
    names = [plot(results, out)]
    return base.finish(verdict, base.record(NUMBER, size, seeds, out, config, results, names, started), out)


# -- the claims, each from the numbers ----------------------------------------------------------


def batch_sizes(metrics: dict[str, Any]) -> list[int]:
    return sorted({c["batch"] for c in metrics["results"]["norms"]})


def two_sided(a: list[float | None], b: list[float | None]) -> tuple[dict | None, bool]:
    """The paired effect a − b and whether it is beyond noise in either direction."""
    up, down = lnbn.paired(a, b), lnbn.paired(b, a)
    return up, up is not None and bool(up["significant"] or down["significant"])


def over_batch_claim(metrics: dict[str, Any]) -> tuple[str, str]:
    """Claim 1: BatchNorm's train-mode output moves with other lines; LayerNorm's does not."""
    cells = metrics["results"]["norms"]
    bn = lnbn.shift_range(cells, "batch", ("other_lines", "other_lines_padded"))[0]
    ln = lnbn.shift_range(cells, "layer")[1]
    state = HOLDS if bn >= DEPENDENT_MIN and ln <= INVARIANT_TOL else FAILS
    return state, (f"other lines in the batch move a line's train-mode logits by at least {bn:.2g} under "
                   f"BatchNorm (threshold {DEPENDENT_MIN:.0e}) and by at most {ln:.1e} under LayerNorm")


def gap_claim(metrics: dict[str, Any]) -> tuple[str, str]:
    """Claim 2: eval mode ignores the batch, and its held-out loss differs from train mode's."""
    cells = metrics["results"]["norms"]
    eval_shift = lnbn.shift_range(cells, "batch", mode="eval")[1]
    gaps = {b: two_sided(lnbn.losses(cells, "batch", b), lnbn.losses(cells, "batch", b, "train_mode_loss"))
            for b in batch_sizes(metrics)}
    where = [b for b, (_, significant) in gaps.items() if significant]
    state = FAILS if not where or eval_shift > INVARIANT_TOL else HOLDS if len(where) == len(gaps) else PARTLY
    text = ", ".join(f"{lnbn.effect_text(e)} at batch {b}" for b, (e, _) in gaps.items())
    return state, (f"in eval mode a line's logits move by at most {eval_shift:.1e} with its batch; held-out "
                   f"loss eval − train mode {text} (beyond noise at batch {', '.join(map(str, where)) or 'none'})")


def small_batch_claim(metrics: dict[str, Any]) -> tuple[str, str]:
    """Claim 3: BatchNorm − LayerNorm is positive at the smallest batch and larger than at the largest."""
    cells, sizes = metrics["results"]["norms"], batch_sizes(metrics)
    gap = {b: [x - y if x is not None and y is not None else None for x, y in
               zip(lnbn.losses(cells, "batch", b), lnbn.losses(cells, "layer", b))] for b in sizes}
    small, large = sizes[0], sizes[-1]
    at_small, growth = lnbn.paired(gap[small], [0.0] * len(gap[small])), lnbn.paired(gap[small], gap[large])
    holds = all(e is not None and e["significant"] for e in (at_small, growth))
    return HOLDS if holds else FAILS, (
        f"held-out loss BatchNorm − LayerNorm = {lnbn.effect_text(at_small)} at batch {small}, "
        f"{lnbn.effect_text(lnbn.paired(gap[large], [0.0] * len(gap[large])))} at batch {large}; "
        f"the difference between the two {lnbn.effect_text(growth)}")


def padding_claim(metrics: dict[str, Any]) -> tuple[str, str]:
    """Claim 4: counting pads raises the held-out loss (beyond noise) at some or all batch sizes."""
    cells = metrics["results"]["norms"]
    naive = lnbn.shift_range(cells, "batch_naive", ("padding",))[0]
    masked = lnbn.shift_range(cells, "batch", ("padding",))[1]
    effects = {b: lnbn.paired(lnbn.losses(cells, "batch_naive", b), lnbn.losses(cells, "batch", b))
               for b in batch_sizes(metrics)}
    where = [b for b, e in effects.items() if e is not None and e["significant"]]
    state = HOLDS if len(where) == len(effects) else PARTLY if where else FAILS
    text = ", ".join(f"{lnbn.effect_text(e)} at batch {b}" for b, e in effects.items())
    return state, (f"trailing padding moves a line's train-mode logits by at least {naive:.2g} when pads are "
                   f"counted and by at most {masked:.1e} when they are not; held-out loss counting − not "
                   f"counting pads {text}")


def verdict(metrics: dict[str, Any]) -> tuple[str, str]:
    undecided = base.undecidable(metrics, MIN_SEEDS)
    if undecided:
        return undecided
    parts = {"over the batch": over_batch_claim(metrics), "train/eval gap": gap_claim(metrics),
             "small batches": small_batch_claim(metrics), "padding": padding_claim(metrics)}
    text = "; ".join(f"{name} ({state}): {reason}" for name, (state, reason) in parts.items())
    states = {state for state, _ in parts.values()}
    if states == {HOLDS}:
        return "confirmed", f"every part holds — {text}"
    if states == {FAILS}:
        return "refuted", f"no part holds — {text}"
    held = [name for name, (state, _) in parts.items() if state != FAILS]
    return "depends", f"holds (fully or in part) for {', '.join(held)} only — {text}"


# -- plots and tables -------------------------------------------------------------------------


def plot(results: dict[str, Any], out: Path) -> str:
    fig, (ax_shift, ax_loss, ax_gap) = plots.figure(3, width=4.8)
    cells = results["norms"]
    lnbn.plot_shifts(ax_shift, cells, NORMS, "a line's logits in train mode")
    lnbn.plot_losses(ax_loss, cells, NORMS)
    sizes = sorted({c["batch"] for c in cells})
    for i, b in enumerate(sizes):
        for j, norm in enumerate(NORMS):
            gap = [x - y for x, y in zip(lnbn.losses(cells, norm, b), lnbn.losses(cells, norm, b, "train_mode_loss"))
                   if x is not None and y is not None]
            plots.seed_points(ax_gap, i * (len(NORMS) + 1) + j, gap, lnbn.NORM_COLORS[norm],
                              label=lnbn.NORM_NAMES[norm] if i == 0 else None, width=0.4)
    ax_gap.axhline(0, color="grey", linewidth=0.8)
    ax_gap.set_xticks([i * (len(NORMS) + 1) + (len(NORMS) - 1) / 2 for i in range(len(sizes))])
    ax_gap.set_xticklabels([f"batch {b} lines" for b in sizes])
    ax_gap.set(ylabel="eval − train-mode held-out loss (nats/char)", title="train/eval gap")
    ax_gap.legend(fontsize=7)
    return plots.save(fig, out, "q13_batchnorm.png")


def tables(metrics: dict[str, Any]) -> list[Table]:
    cells = metrics["results"]["norms"]
    rows = []
    for b in batch_sizes(metrics):
        for norm in ("batch", "batch_naive"):
            gap, _ = two_sided(lnbn.losses(cells, norm, b), lnbn.losses(cells, norm, b, "train_mode_loss"))
            vs_masked = lnbn.paired(lnbn.losses(cells, norm, b), lnbn.losses(cells, "batch", b))
            rows.append([str(b), lnbn.NORM_NAMES[norm], lnbn.effect_text(gap),
                         lnbn.effect_text(vs_masked) if norm == "batch_naive" else ""])
    gaps = (["batch (lines)", "norm", "eval − train-mode loss (paired)", "− BatchNorm's eval loss (paired)"], rows)
    return [lnbn.shift_table(cells, NORMS), lnbn.loss_table(cells, NORMS), gaps]
