"""Question 3's verdict follows the numbers, and its memory instrument counts what it should."""

from __future__ import annotations

import copy
import math

import torch

from qkv.lab import q03_additive as q03

LENGTHS, D_KS = (32, 512), (32, 128)


def cost(time_ratio: float, memory_ratio: float, noise: float, seeds: int) -> list[dict]:
    """Every (length, d_k, path) cell; at every cell additive is ``time_ratio`` × the dot time."""
    cells = []
    for length in LENGTHS:
        for d_k in D_KS:
            for path in q03.PATHS:
                factor = {"additive": time_ratio, "dot_reference": 1.0, "dot_fused": 0.5}[path]
                # zero-mean jitter on the log time of the additive path only: the paired ratio is `time_ratio`
                jitter = [noise * (s - (seeds - 1) / 2) if path == "additive" else 0.0 for s in range(seeds)]
                cells.append({"length": length, "d_k": d_k, "path": path, "times_s": [0.01 * factor * math.exp(j)
                                                                                      for j in jitter],
                              "peak_bytes": 1e6 * (memory_ratio if path == "additive" else 1.0),
                              "largest_tensor_bytes": 1e5, "largest_bytes": 1e5,
                              "forward_flops": 1.3e9 if path == "additive" else 1e9,
                              "attention_flops": 1.5e8 if path == "additive" else 1e8})
    return cells


def q03_metrics(time_ratio=10.0, memory_ratio=50.0, unscaled_gap=2.0, scaled_gap=-0.04, noise=0.0, time_noise=0.0,
                seeds=5, size="full") -> dict:
    quality = []
    for s in range(seeds):
        jitter = noise * (s - (seeds - 1) / 2)  # zero mean: each gap is exactly as given
        for variant, gap in (("additive", 0.0), ("dot_none", unscaled_gap), ("dot_sqrt_dk", scaled_gap)):
            quality.append({"variant": variant, "d_head": 128, "seed": s, "accuracy": 0.9, "curve": [1.0],
                            "final_loss": 0.06 + gap + (jitter if variant != "additive" else 0.0)})
    return {"question": 3, "size": size, "seeds": seeds,
            "results": {"cost": cost(time_ratio, memory_ratio, time_noise, seeds), "quality": quality}}


def test_confirmed_when_dot_is_cheaper_and_unscaled_dot_loses():
    label, reason = q03.verdict(q03_metrics())
    assert label == "confirmed"
    assert "time 10.0× for 1.30× the FLOPs, peak memory 50.0×" in reason and "T=512" in reason
    assert "unscaled dot − additive = +2.000" in reason and "scaled dot − additive = -0.040" in reason


def test_refuted_when_no_claim_holds():
    label, reason = q03.verdict(q03_metrics(time_ratio=1.1, memory_ratio=1.0, unscaled_gap=0.0, scaled_gap=0.5))
    assert label == "refuted" and "none of the claims" in reason
    assert "time 1.1×" in reason and "scaled dot − additive = +0.500" in reason


def test_depends_names_the_claims_that_hold_and_those_that_do_not():
    label, reason = q03.verdict(q03_metrics(unscaled_gap=0.0))
    assert label == "depends"
    assert "holds: dot is much faster and smaller, scaled dot matches additive" in reason
    assert "does not hold: additive beats unscaled dot" in reason and "+0.000" in reason
    # a memory ratio under the threshold alone fails the cost claim, however fast the dot product is
    label, reason = q03.verdict(q03_metrics(memory_ratio=1.5))
    assert label == "depends" and "does not hold: dot is much faster and smaller" in reason
    assert "peak memory 1.5×" in reason


def test_scaled_dot_worse_than_additive_fails_the_third_claim():
    label, reason = q03.verdict(q03_metrics(scaled_gap=0.3))
    assert label == "depends" and "does not hold: scaled dot matches additive" in reason


def test_inconclusive_when_a_large_effect_is_within_seed_noise():
    label, reason = q03.verdict(q03_metrics(unscaled_gap=0.3, noise=0.3))
    assert label == "inconclusive" and "within seed noise" in reason and "additive beats unscaled dot" in reason
    label, reason = q03.verdict(q03_metrics(time_ratio=3.0, time_noise=1.0))
    assert label == "inconclusive" and "dot is much faster and smaller" in reason


def test_inconclusive_with_too_few_seeds_or_at_smoke_size():
    assert q03.verdict(q03_metrics(seeds=2))[0] == "inconclusive"
    label, reason = q03.verdict(q03_metrics(size="smoke"))
    assert label == "inconclusive" and "qkv ask 3 --size full" in reason


def test_verdict_flips_when_the_numbers_do():
    metrics = q03_metrics()
    assert q03.verdict(metrics)[0] == "confirmed"
    flipped = copy.deepcopy(metrics)
    for c in flipped["results"]["cost"]:
        if c["path"] == "additive" and c["length"] == 512:
            c["times_s"] = [t / 10 for t in c["times_s"]]  # as fast as the dot product
    assert q03.verdict(flipped)[0] == "depends"


def test_tables_have_a_row_per_cell_and_per_variant():
    cost_table, quality_table = q03.tables(q03_metrics())
    assert len(cost_table[1]) == len(LENGTHS) * len(D_KS) * len(q03.PATHS)
    assert [row[0] for row in quality_table[1]] == ["additive", "dot_none", "dot_sqrt_dk"]
    assert quality_table[1][1][-1] == "+2.000 ± 0.000"


def test_allocation_tracker_counts_live_bytes_peak_and_frees():
    n = 1000
    with q03.AllocationTracker() as tracker:
        a = torch.ones(n)
        b = a + 1
        c = b + 1  # three live buffers of n floats
        del a, b, c
        d = torch.ones(2 * n)
        d.add_(1)  # in place: no new storage
    assert tracker.peak == 3 * n * 4
    assert tracker.largest == 2 * n * 4
    assert tracker.now == 2 * n * 4  # only d is still alive


def test_analytic_additive_tensor_is_d_k_times_the_score_matrix():
    dot, additive = q03.analytic("dot_reference", 64, 32), q03.analytic("additive", 64, 32)
    assert additive["largest_bytes"] == 32 * dot["largest_bytes"]
    assert 1.0 < additive["forward_flops"] / dot["forward_flops"] < 1.5  # the same order of arithmetic
