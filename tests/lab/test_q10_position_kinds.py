"""Question 10's verdict follows the numbers: synthetic per-position losses and costs for every outcome."""

from __future__ import annotations

import copy

from qkv.lab import extrapolation
from qkv.lab import q10_position_kinds as q10

L = 8
SEEDS = 5
# kind → (loss within L, at 2L, at 4L): absolute kinds fail beyond L, relative ones do not
GOOD = {"sinusoidal": (0.01, 3.0, 4.0), "learned": (0.05, 4.0, 4.2), "shaw": (0.01, 0.02, 0.03),
        "t5_bias": (0.01, 0.03, 0.05), "rope": (0.01, 0.02, 0.04), "alibi": (0.02, 0.03, 0.04), "none": (2.5, 2.6, 2.7)}


def cell(kind: str, seed: int, losses: tuple[float, float, float], wide_cost: float) -> dict:
    within, at_2l, at_4l = losses
    first = [None] * extrapolation.OFFSET
    by_length = {str(L): first + [within] * (L - 2), str(2 * L): first + [within] * (L - 2) + [at_2l] * L,
                 str(4 * L): first + [within] * (L - 2) + [at_2l] * L + [at_4l] * 2 * L}
    return {"kind": kind, "seed": seed, "loss_by_position": by_length, "learned_rows": None,
            "cost_cpu_s": {"train_step": 0.01 * wide_cost, "wide_step": wide_cost, "forward_4L": 0.001}}


def metrics(losses: dict | None = None, costs: dict | None = None, noise: float = 0.005, seeds: int = SEEDS,
            size: str = "full") -> dict:
    """``losses`` overrides kind → (within, 2L, 4L), ``costs`` kind → step time (sinusoidal's is 1);
    the excess and the cost of each seed differ by ``noise`` · (seed − middle)."""
    table, cost = GOOD | (losses or {}), costs or {}
    cells = []
    for s in range(seeds):
        jitter = noise * (s - (seeds - 1) / 2)
        for kind, (within, at_2l, at_4l) in table.items():
            wide = 1.0 if kind == "sinusoidal" else cost.get(kind, 1.0) + jitter
            cells.append(cell(kind, s, (within, at_2l + jitter, at_4l + jitter), wide))
    results = {"train_len": L, "wide": {"d_model": 32, "length": 16}, "cells": cells}
    return {"question": 10, "size": size, "seeds": seeds, "results": results}


def test_confirmed_when_every_relative_kind_extrapolates_better_at_similar_cost():
    label, reason = q10.verdict(metrics())
    assert label == "confirmed" and "better than sinusoidal" in reason
    assert "shaw: better (excess below sinusoidal by +2.980 ± 0.000 at 2L, +3.970 ± 0.000 at 4L)" in reason


def test_refuted_when_no_relative_kind_extrapolates_better():
    worse = {k: (0.01, 5.0, 6.0) for k in extrapolation.RELATIVE}
    label, reason = q10.verdict(metrics(worse))
    assert label == "refuted" and "no relative kind" in reason and "rope: worse" in reason
    assert "-2.000 ± 0.000 at 2L" in reason


def test_depends_when_only_some_relative_kinds_are_better():
    label, reason = q10.verdict(metrics({"rope": (0.01, 9.0, 11.0), "t5_bias": (0.01, 1.0, 5.0)}))
    assert label == "depends" and "better than sinusoidal: shaw, alibi" in reason
    assert "rope: worse" in reason and "t5_bias: mixed" in reason


def test_depends_when_better_but_costlier():
    label, reason = q10.verdict(metrics(costs={"shaw": 2.0, "rope": 1.1}))
    assert label == "depends" and "costlier beyond 1.25×: shaw" in reason and "shaw 2.00×" in reason
    assert "rope 1.10×" in reason


def test_a_cost_within_noise_of_the_limit_is_not_costlier():
    assert q10.verdict(metrics(costs={"shaw": 1.3}, noise=0.1))[0] == "confirmed"


def test_kinds_that_did_not_learn_are_left_out_and_named():
    label, reason = q10.verdict(metrics({"alibi": (1.8, 1.9, 1.9)}))
    assert label == "depends" and "did not learn the task within L (loss ≥ 0.5): alibi;" in reason


def test_the_better_absolute_kind_is_the_reference():
    label, reason = q10.verdict(metrics({"learned": (0.05, 0.1, 0.2)}))  # learned now extrapolates
    assert label == "refuted" and "better than learned" in reason


def test_inconclusive_when_nothing_can_be_compared():
    no_absolute = {"sinusoidal": (1.5, 3.0, 4.0), "learned": (1.5, 4.0, 4.2)}
    label, reason = q10.verdict(metrics(no_absolute))
    assert label == "inconclusive" and "no absolute kind learned" in reason
    no_relative = {k: (2.0, 2.1, 2.2) for k in extrapolation.RELATIVE}
    assert "no relative kind learned" in q10.verdict(metrics(no_relative))[1]


def test_inconclusive_with_too_few_seeds_or_at_smoke_size():
    assert q10.verdict(metrics(seeds=2))[0] == "inconclusive"
    label, reason = q10.verdict(metrics(size="smoke"))
    assert label == "inconclusive" and reason.startswith("smoke size") and "qkv ask 10 --size full" in reason


def test_verdict_flips_when_the_numbers_do():
    m = metrics()
    assert q10.verdict(m)[0] == "confirmed"
    flipped = copy.deepcopy(m)
    for c in flipped["results"]["cells"]:
        if c["kind"] in extrapolation.RELATIVE:
            c["loss_by_position"][str(4 * L)][L:] = [7.0] * 3 * L
            c["loss_by_position"][str(2 * L)][L:] = [7.0] * L
    assert q10.verdict(flipped)[0] == "refuted"


def test_table_reports_the_cost_ratios():
    (_, rows), _ = q10.tables(metrics(costs={"shaw": 2.0}))
    shaw = next(r for r in rows if r[0] == "shaw")
    assert shaw[7] == "2" and shaw[6] == "2"  # wide and training-shape step ratios
