"""Question 9: what is positional encoding for, and its pros and cons (位置编码).

Claims under test (as commonly answered, after Vaswani et al., 2017, §3.5): the sinusoidal
encoding lets a model extrapolate to sequences longer than those seen in training; learned
position embeddings cannot go beyond the trained length; and positions are needed at all —
without them a model cannot solve a task whose answer depends on order.

Method: the shared experiment of :mod:`qkv.lab.extrapolation`. Small causal LMs with each
position kind (sinusoidal, learned, shaw, t5_bias, rope, alibi, none) are trained at length
L = 32 on offset copy (the label at t is the symbol two positions back, uniform random symbols,
so every position is equally hard) and scored per position at L, 2L and 4L on the same held-out
sequences. The models are built with max_len = 4L, so the learned table has rows for every
evaluated position, but rows ≥ L never receive a gradient and keep their initial values (a
table reports their norms). Extrapolation is the loss on positions [L, 2L) of 2L-token
sequences and on [2L, 4L) of 4L-token ones, minus the loss on [L/2, L) at L, paired by seed;
"positions are needed" compares ``none`` with sinusoidal inside L. The other kinds are the
subject of question 10 and are drawn for comparison.

Reproduce: ``qkv ask 9 --size full``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from . import base, extrapolation
from .extrapolation import extrapolation_status, per_seed
from .table import Table

NUMBER = 9
TITLE = "Positional encoding: purpose, pros and cons"
KEYWORD = "位置编码"
CLAIMS = [
    "Sinusoidal encodings let the model extrapolate to sequences longer than seen in training.",
    "Learned position embeddings cannot go beyond the trained length.",
    "Positions are needed at all: without them an order-dependent task cannot be learned.",
]
ANSWER = """\
Purpose. Attention scores q_i·k_j depend on the contents of i and j only, and the other layers
act on each position alone, so without position information a Transformer treats its input
as a set (question 23). A positional encoding gives each place an identity the scores can use.

Sinusoidal (Vaswani et al.): PE(p, 2i) = sin(p·ω_i), PE(p, 2i+1) = cos(p·ω_i), ω_i =
10000^(−2i/d), added to the token embedding. Pros: no parameters; defined for every p; and
for a fixed offset k each frequency pair moves by a rotation,
    [sin ω(p+k), cos ω(p+k)] = R(ωk)·[sin ωp, cos ωp],
so PE(p+k) is a linear function of PE(p) independent of p, and PE(p)·PE(p+k) = Σ_i cos(ω_i k)
depends on k alone. This is why the paper hoped the model could attend by relative offset and
"extrapolate to sequence lengths longer than the ones encountered during training".
Cons: the rotation argument only says that a solution valid at every p exists, not that
training finds it. The encoding is added to the content, so W_Q and W_K see a sum of token and
position; beyond L the slow frequencies take phases never seen in training, and nothing made
the learned weights behave there. The measurement shows what happens to a model that solves
the task perfectly within L when run past it.

Learned positions (BERT, GPT-2): one trained vector per position. Pros: the model picks
whatever code helps. Cons: parameters grow with max_len, and position p ≥ L has no trained row
at all (here the rows stay at their random initial values), so nothing carries over.

Without positions (none): an order-dependent task such as "copy the symbol two back" cannot be
solved by content alone; a causal mask gives only a weak sense of position (how many tokens
came before), far from the exact offset the task needs."""
FULL_SEEDS = 5
SMOKE_SEEDS = 1
N_SD = 2.0  # an effect must exceed 2 standard deviations of the per-seed differences
TOLERANCE = 0.1  # nats/token: loss beyond L this close to the loss within L counts as extrapolating
LEARNED_BELOW = 0.5  # nats/token within L (chance is ln 16 = 2.77): below this the task was learned
NEEDED_GAP = 0.5  # nats/token: none must be at least this much worse than sinusoidal within L
MIN_SEEDS = 3  # fewer seeds cannot estimate the noise
SIZES = {
    "smoke": {"train_len": 8, "steps": 4, "eval_batches": 1,
              "wide": {"d_model": 32, "length": 16, "batch": 2, "steps": 1}},
    "full": {"train_len": 32, "steps": 500, "eval_batches": 2, "wide": extrapolation.WIDE},
}


def run(size: str, seeds: int, out: Path) -> dict[str, Any]:
    started = time.perf_counter()
    s = SIZES[size]
    results = extrapolation.measure(s, seeds)
    title = f"offset copy, trained at L={s['train_len']}: loss by position (bars: best to worst seed)"
    names = [extrapolation.plot_positions(results, out, "q09_positions.png", title),
             extrapolation.plot_summary(results, out, "q09_summary.png")]
    record = base.record(NUMBER, size, seeds, out, extrapolation.config(s), results, names, started)
    return base.finish(verdict, record, out)


def three_way(effect: dict[str, float | bool], threshold: float) -> bool | None:
    """True: larger than ``threshold`` beyond noise; False: surely below it; None: cannot tell."""
    if effect["significant"]:
        return True
    return False if effect["mean"] + N_SD * effect["sd"] < threshold else None


def findings(results: dict[str, Any]) -> dict[str, Any]:
    """The numbers the verdict reads: within-L losses, extrapolation statuses, the none gap."""
    cells, L = results["cells"], results["train_len"]
    within = {k: base.mean(per_seed(cells, k, L, "within")) for k in ("sinusoidal", "learned", "none")}
    sinusoidal = {r: extrapolation_status(cells, "sinusoidal", L, r, N_SD, TOLERANCE) for r in ("2L", "4L")}
    learned = extrapolation_status(cells, "learned", L, "2L", N_SD, TOLERANCE)
    gap = base.paired_effect(per_seed(cells, "none", L, "within"), per_seed(cells, "sinusoidal", L, "within"),
                             N_SD, NEEDED_GAP)
    return {"within": within, "sinusoidal": sinusoidal, "learned": learned, "none_gap": gap,
            "needed": three_way(gap, NEEDED_GAP),
            "learned_stops": None if within["learned"] >= LEARNED_BELOW else
            {"fails": True, "holds": False, "unclear": None}[learned[0]]}


def describe(f: dict[str, Any]) -> str:
    s2, s4, lrn = f["sinusoidal"]["2L"][1], f["sinusoidal"]["4L"][1], f["learned"][1]
    gap, w = f["none_gap"], f["within"]
    return (f"sinusoidal: loss {w['sinusoidal']:.3f} nats within L, "
            f"beyond-L excess {s2['mean']:+.3f} ± {s2['sd']:.3f} "
            f"at 2L and {s4['mean']:+.3f} ± {s4['sd']:.3f} at 4L (tolerance {TOLERANCE}); learned: {w['learned']:.3f} "
            f"within L, excess {lrn['mean']:+.3f} ± {lrn['sd']:.3f} at 2L; none: {w['none']:.3f} within L, "
            f"{gap['mean']:+.3f} ± {gap['sd']:.3f} above sinusoidal")


def verdict(metrics: dict[str, Any]) -> tuple[str, str]:
    undecided = base.undecidable(metrics, MIN_SEEDS)
    if undecided:
        return undecided
    f = findings(metrics["results"])
    text = describe(f)
    if f["within"]["sinusoidal"] >= LEARNED_BELOW:
        return "inconclusive", f"sinusoidal did not learn the task within L (threshold {LEARNED_BELOW}); {text}"
    at_2l, at_4l = f["sinusoidal"]["2L"][0], f["sinusoidal"]["4L"][0]
    if at_2l == "fails":
        return "refuted", f"sinusoidal does not extrapolate: {text}"
    if "unclear" in (at_2l, at_4l):
        return "inconclusive", f"sinusoidal extrapolation is within seed noise of the tolerance: {text}"
    if at_4l == "fails":
        return "depends", f"sinusoidal extrapolates to 2L but not to 4L: {text}"
    others = {"learned positions stop at L": f["learned_stops"], "positions are needed": f["needed"]}
    if all(others.values()):
        return "confirmed", f"all three hold: {text}"
    if False in others.values():
        failed = ", ".join(name for name, held in others.items() if held is False)
        return "depends", f"sinusoidal extrapolates, but not: {failed}; {text}"
    return "inconclusive", f"sinusoidal extrapolates; the other claims are within noise: {text}"


def tables(metrics: dict[str, Any]) -> list[Table]:
    results = metrics["results"]
    return [extrapolation.kind_table(results), extrapolation.learned_rows_table(results)]

