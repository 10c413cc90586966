"""Question 9's verdict follows the numbers: synthetic per-position losses for every outcome."""

from __future__ import annotations

import copy

from qkv.lab import extrapolation
from qkv.lab import q09_positional_encoding as q09

L = 8
SEEDS = 5
GOOD = {"sinusoidal": (0.01, 0.02, 0.03), "learned": (0.05, 4.0, 4.2), "none": (2.5, 2.6, 2.7)}


def cell(kind: str, seed: int, within: float, at_2l: float, at_4l: float) -> dict:
    """A cell whose loss is ``within`` on [0, L), ``at_2l`` on [L, 2L) and ``at_4l`` on [2L, 4L)."""
    first = [None] * extrapolation.OFFSET
    losses = {str(L): first + [within] * (L - 2), str(2 * L): first + [within] * (L - 2) + [at_2l] * L,
              str(4 * L): first + [within] * (L - 2) + [at_2l] * L + [at_4l] * 2 * L}
    return {"kind": kind, "seed": seed, "loss_by_position": losses,
            "cost_cpu_s": {"train_step": 1.0, "wide_step": 1.0, "forward_4L": 1.0}, "learned_rows": None}


def metrics(losses: dict | None = None, noise: float = 0.005, seeds: int = SEEDS, size: str = "full") -> dict:
    """Every kind for every seed; ``losses`` overrides kind → (within, at 2L, at 4L); the excess
    of each seed differs by ``noise`` · (seed − middle), so the seed mean is the given value."""
    table = {k: (0.01, 0.02, 0.03) for k in extrapolation.KINDS} | GOOD | (losses or {})
    cells = []
    for s in range(seeds):
        jitter = noise * (s - (seeds - 1) / 2)
        for kind, (within, at_2l, at_4l) in table.items():
            cells.append(cell(kind, s, within, at_2l + jitter, at_4l + jitter))
    results = {"train_len": L, "wide": {"d_model": 32, "length": 16}, "cells": cells}
    return {"question": 9, "size": size, "seeds": seeds, "results": results}


def test_refuted_when_sinusoidal_fails_beyond_l():
    label, reason = q09.verdict(metrics({"sinusoidal": (0.01, 3.0, 4.0)}))
    assert label == "refuted" and "does not extrapolate" in reason
    assert "+2.990 ± 0.008 at 2L" in reason and "+3.990" in reason


def test_confirmed_when_sinusoidal_extrapolates_learned_stops_and_none_fails():
    label, reason = q09.verdict(metrics())
    assert label == "confirmed"
    assert "+0.010 ± 0.008 at 2L" in reason and "excess +3.950" in reason and "none: 2.500 within L" in reason


def test_depends_when_sinusoidal_reaches_2l_but_not_4l():
    label, reason = q09.verdict(metrics({"sinusoidal": (0.01, 0.02, 2.0)}))
    assert label == "depends" and "2L but not to 4L" in reason and "+1.990" in reason


def test_depends_when_learned_positions_extrapolate_too():
    label, reason = q09.verdict(metrics({"learned": (0.05, 0.06, 0.07)}))
    assert label == "depends" and "learned positions stop at L" in reason and "+0.010" in reason


def test_depends_when_no_positions_solve_the_task():
    label, reason = q09.verdict(metrics({"none": (0.02, 0.03, 0.04)}))
    assert label == "depends" and "positions are needed" in reason and "none: 0.020 within L" in reason


def test_inconclusive_when_the_excess_is_within_noise_of_the_tolerance():
    label, reason = q09.verdict(metrics({"sinusoidal": (0.01, 0.12, 0.13)}, noise=0.1))
    assert label == "inconclusive" and "within seed noise" in reason and "+0.110 ± 0.158" in reason


def test_inconclusive_when_sinusoidal_did_not_learn_the_task():
    label, reason = q09.verdict(metrics({"sinusoidal": (1.5, 3.0, 3.0)}))
    assert label == "inconclusive" and "did not learn" in reason and "loss 1.500" in reason


def test_inconclusive_with_too_few_seeds_or_at_smoke_size():
    assert q09.verdict(metrics(seeds=2))[0] == "inconclusive"
    label, reason = q09.verdict(metrics(size="smoke"))
    assert label == "inconclusive" and reason.startswith("smoke size") and "qkv ask 9 --size full" in reason


def test_verdict_flips_when_the_numbers_do():
    m = metrics()
    assert q09.verdict(m)[0] == "confirmed"
    flipped = copy.deepcopy(m)
    for c in flipped["results"]["cells"]:
        if c["kind"] == "sinusoidal":
            c["loss_by_position"][str(2 * L)][L:] = [5.0] * L
    assert q09.verdict(flipped)[0] == "refuted"


def test_tables_report_every_kind_and_the_learned_rows():
    m = metrics()
    for c in m["results"]["cells"]:
        c["learned_rows"] = {"trained_rows": 1.2, "beyond_rows": 0.11, "init_expected": 0.113} \
            if c["kind"] == "learned" else None
    (_, by_kind), (_, learned_rows) = q09.tables(m)
    assert [r[0] for r in by_kind] == list(extrapolation.KINDS)
    assert by_kind[0][4] == "0.010 ± 0.008"  # sinusoidal's excess at 2L
    assert learned_rows[0] == ["0", "1.2", "0.11", "0.113"] and len(learned_rows) == SEEDS
