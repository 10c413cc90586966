"""Question 10: other positional encodings and their trade-offs (位置编码).

Claims under test (as commonly answered, after Press, Smith & Lewis, 2022, "Train Short, Test
Long"): relative schemes — RoPE, ALiBi, T5's bucketed bias, Shaw's relative vectors — extrapolate
to longer sequences better than absolute ones (sinusoidal, learned), and cost about the same.

Method: the shared experiment of :mod:`qkv.lab.extrapolation` (the same runs as question 9).
Small causal LMs with each position kind are trained at length L = 32 on offset copy (the label
at t is the symbol two positions back; uniform random symbols, so every position is equally
hard) and scored per position at L, 2L and 4L on the same held-out sequences. A kind's
extrapolation is its loss on [L, 2L) at 2L and on [2L, 4L) at 4L minus its loss on [L/2, L)
at L; each relative kind that learned the task is compared, paired by seed, with the better
of the two absolute kinds. Cost is the CPU time of a training step over sinusoidal's in the
same seed, at the training shape and at a wider model on longer sequences (d_model 128,
length 256), where the scheme's extra work is set against real matrix products.

Reproduce: ``qkv ask 10 --size full``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from . import base, extrapolation
from .extrapolation import ABSOLUTE, RELATIVE, cost_ratios, excess, per_seed
from .table import Table

NUMBER = 10
TITLE = "Other positional encodings and their trade-offs"
KEYWORD = "位置编码"
CLAIMS = [
    "Relative schemes (RoPE, ALiBi, T5 bias, Shaw) extrapolate beyond the training length better "
    "than absolute ones (sinusoidal, learned).",
    "Their cost is similar to absolute positions.",
]
ANSWER = """\
Where the position enters decides what a scheme can do.

Absolute, added to the input (sinusoidal, learned): cheap (one addition), and the position
reaches every later layer, but attention has to recover offsets from a sum of content and
position, and positions never seen in training give inputs the weights were not fitted to.

Shaw et al. (2018): learned vectors a^K, a^V per clipped distance clip(j − i, −k, k), added to
keys and values inside attention. Only distances up to k are told apart, so everything farther
shares one trained vector: lengths beyond training reuse trained parameters. Cost: a
(T, S, d_head) tensor per layer and no fused attention kernel — the most expensive scheme.

T5 bias: a learned scalar per head and log-spaced distance bucket added to the scores; cheap,
but buckets for distances never seen in training keep their initial values, and a bias alone
cannot rotate content, so it addresses positions only through the score offset.

RoPE (Su et al.): rotate each pair of q and k dimensions by p·θ_i, so q_i·k_j depends on
content and i − j only. Exact relative addressing, no parameters, one elementwise rotation
per layer. Yet a trained model has only seen rotations for distances < L; at longer distances
the slow frequencies reach angles never trained, and scores of far keys are uncontrolled —
why long-context models rescale RoPE (position interpolation, NTK / YaRN) rather than run it
past L as is.

ALiBi (Press et al.): subtract slope_h·|i − j| from the scores, fixed slopes, no parameters.
Far keys are always penalised, so longer inputs look like the trained ones near each query:
the basis of "train short, test long". The price is a built-in recency bias: a head cannot
prefer a key two back over the one just before it by position alone, so tasks that need an
exact offset must be solved by composing layers, or not at all.

The measurements decide, per scheme, whether it beat the better absolute scheme beyond L, and
what each costs per training step relative to sinusoidal."""
FULL_SEEDS = 5
SMOKE_SEEDS = 1
N_SD = 2.0  # an effect must exceed 2 standard deviations of the per-seed differences
MIN_GAIN = 0.1  # nats/token: a smaller difference in extrapolation excess does not matter
LEARNED_BELOW = 0.5  # nats/token within L (chance is ln 16 = 2.77): below this the task was learned
MAX_COST_RATIO = 1.25  # a training step more than 25% slower than sinusoidal's is not "similar"
MIN_SEEDS = 3  # fewer seeds cannot estimate the noise
RANGES = ("2L", "4L")
COST_KEY = "wide_step"  # the cost claim is judged at the wider shape; the training shape is reported
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
    names = [extrapolation.plot_positions(results, out, "q10_positions.png", title),
             extrapolation.plot_summary(results, out, "q10_summary.png")]
    record = base.record(NUMBER, size, seeds, out, extrapolation.config(s), results, names, started)
    return base.finish(verdict, record, out)


def learned_kinds(results: dict[str, Any]) -> dict[str, float]:
    """kind → mean loss within L, for the kinds that learned the task (below ``LEARNED_BELOW``)."""
    cells, L = results["cells"], results["train_len"]
    within = {k: base.mean(per_seed(cells, k, L, "within")) for k in ABSOLUTE + RELATIVE}
    return {k: w for k, w in within.items() if w < LEARNED_BELOW}


def compare(results: dict[str, Any], kind: str, reference: str) -> dict[str, Any]:
    """``kind`` against ``reference`` in both ranges: excess difference (reference − kind) per range,
    and "better" / "worse" when it holds beyond noise in both ranges, else "mixed"."""
    cells, L = results["cells"], results["train_len"]
    gains, better, worse = {}, [], []
    for r in RANGES:
        ref, own = excess(cells, reference, L, r), excess(cells, kind, L, r)
        gains[r] = base.paired_effect(ref, own, N_SD, MIN_GAIN)
        better.append(gains[r]["significant"])
        worse.append(base.paired_effect(own, ref, N_SD, MIN_GAIN)["significant"])
    outcome = "better" if all(better) else "worse" if all(worse) else "mixed"
    return {"outcome": outcome, "gain": gains}


def cost(results: dict[str, Any], kind: str) -> dict[str, Any]:
    """Step-time ratio vs sinusoidal at the judged shape; costlier when it exceeds the limit beyond noise."""
    ratios = cost_ratios(results["cells"], kind, COST_KEY)
    effect = base.paired_effect(ratios, [1.0] * len(ratios), N_SD, MAX_COST_RATIO - 1)
    return {"ratio": base.mean(ratios), "sd": effect["sd"], "costlier": effect["significant"]}


def findings(results: dict[str, Any]) -> dict[str, Any]:
    """The reference absolute kind, each relative kind's comparison and cost, and which did not learn."""
    cells, L = results["cells"], results["train_len"]
    learned = learned_kinds(results)
    absolute = [k for k in ABSOLUTE if k in learned]
    reference = min(absolute, key=lambda k: base.mean(excess(cells, k, L, "4L"))) if absolute else None
    relative = {k: compare(results, k, reference) for k in RELATIVE if k in learned and reference}
    return {"reference": reference, "relative": relative, "cost": {k: cost(results, k) for k in RELATIVE},
            "not_learned": [k for k in ABSOLUTE + RELATIVE if k not in learned]}


def describe(f: dict[str, Any]) -> str:
    parts = [f"{k}: {c['outcome']} (excess below {f['reference']} by "
             + ", ".join(f"{c['gain'][r]['mean']:+.3f} ± {c['gain'][r]['sd']:.3f} at {r}" for r in RANGES) + ")"
             for k, c in f["relative"].items()]
    if f["not_learned"]:
        parts.append(f"did not learn the task within L (loss ≥ {LEARNED_BELOW}): {', '.join(f['not_learned'])}")
    costs = ", ".join(f"{k} {c['ratio']:.2f}×" for k, c in f["cost"].items())
    return "; ".join(parts) + f"; step time vs sinusoidal: {costs} (limit {MAX_COST_RATIO}×)"


def verdict(metrics: dict[str, Any]) -> tuple[str, str]:
    undecided = base.undecidable(metrics, MIN_SEEDS)
    if undecided:
        return undecided
    f = findings(metrics["results"])
    if f["reference"] is None or not f["relative"]:
        missing = "no absolute kind" if f["reference"] is None else "no relative kind"
        return "inconclusive", f"{missing} learned the task within L, nothing to compare; " + describe(f)
    text = describe(f)
    better = [k for k, c in f["relative"].items() if c["outcome"] == "better"]
    costlier = [k for k, c in f["cost"].items() if c["costlier"]]
    if not better:
        return "refuted", f"no relative kind extrapolates better than {f['reference']}: {text}"
    if len(better) == len(RELATIVE) and not costlier:
        return "confirmed", f"every relative kind extrapolates better than {f['reference']} at similar cost: {text}"
    rest = [k for k in RELATIVE if k not in better]
    cost_text = f"; costlier beyond {MAX_COST_RATIO}×: {', '.join(costlier)}" if costlier else ""
    return "depends", (f"better than {f['reference']}: {', '.join(better)}; not better or not learned: "
                       f"{', '.join(rest) or 'none'}{cost_text}; {text}")


def tables(metrics: dict[str, Any]) -> list[Table]:
    results = metrics["results"]
    return [extrapolation.kind_table(results), extrapolation.learned_rows_table(results)]
