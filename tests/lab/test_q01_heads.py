"""Question 1's verdict follows the numbers: synthetic metrics for every outcome, and the flips."""

from __future__ import annotations

import copy

import pytest
import torch

from qkv.lab import q01_heads as q01

MHA = [(1, 1), (2, 2), (4, 4), (8, 8), (16, 16)]
GROUPED = [(8, 2), (8, 1)]
CONTROL = [(1, 1), (4, 4), (16, 16)]
SHAPES = {"task": [32, 16], "long": [4, 256]}


def jitter(noise: float, seed: int, seeds: int) -> float:
    return noise * (seed - (seeds - 1) / 2)  # zero mean over seeds: the mean gap is exact


def run_record(task: str, h: int, g: int, seed: int, loss: float, js: float) -> dict:
    profile = [[0.1] * q01.PROFILE_OFFSETS for _ in range(h)]
    return {"task": task, "n_heads": h, "n_kv_heads": g, "seed": seed, "loss": loss, "accuracy": 0.9,
            "curve": [loss], "entropy": [0.5] * h, "js": js if h > 1 else None, "profile": profile}


def metrics(two_gain=1.7, one_gain=0.0, js=0.4, gqa_cost=0.0, mqa_cost=0.0, flop_ratio=1.0,
            speed=(0.6, 0.8), noise=0.01, seeds=5, size="full") -> dict:
    """Numbers shaped like a full run: ``speed`` is tokens/s of 16 heads ÷ 1 head per shape."""
    runs = []
    for s in range(seeds):
        j = jitter(noise, s, seeds)
        for h, g in MHA + GROUPED:
            loss = 0.01 + (two_gain if h == 1 else 0.0) + {(8, 2): gqa_cost, (8, 1): mqa_cost}.get((h, g), 0.0)
            runs.append(run_record(q01.TWO, h, g, s, loss + (j if h > 1 else 0.0), js))
        for h, g in CONTROL:
            runs.append(run_record(q01.ONE, h, g, s, 0.002 + (one_gain if h == 1 else 0.0) + (j if h > 1 else 0.0), js))
    cost = [{"n_heads": h, "n_kv_heads": g, "d_head": 64 // h, "params": 38336 if g == h else 31056,
             "attention_params": 16640, "kv_bytes_per_token": 512.0 * g / h,
             "flops": {shape: {"total": 2e5 * (flop_ratio if h == 16 else 1.0), "attention": 1e4} for shape in SHAPES}}
            for h, g in MHA + GROUPED]
    throughput = [{"shape": shape, "round": r, "n_heads": h, "n_kv_heads": g,
                   "tokens_per_s": 1e5 * ((ratio + jitter(noise, r, seeds)) if h == 16 else 1.0)}
                  for shape, ratio in zip(SHAPES, speed) for r in range(seeds) for h, g in MHA + GROUPED]
    results = {"timing_shapes": SHAPES, "runs": runs, "cost": cost, "throughput": throughput}
    return {"question": 1, "size": size, "seeds": seeds, "results": results}


def test_smoke_size_and_too_few_seeds_are_inconclusive():
    label, reason = q01.verdict(metrics(size="smoke"))
    assert label == "inconclusive" and "qkv ask 1 --size full" in reason
    label, reason = q01.verdict(metrics(seeds=2))
    assert label == "inconclusive" and "2 seeds" in reason


def test_depends_when_heads_help_only_where_two_positions_are_needed():
    label, reason = q01.verdict(metrics())
    assert label == "depends"
    assert "“more heads improve quality” depends" in reason
    assert "two offsets task: 1 head 1.710 nats" in reason and "2: +1.700 ± 0.016" in reason
    assert "“more heads are more efficient” fails" in reason and "1.000 (task shape)" in reason
    assert "tokens/s 16 heads / 1 head = 0.60 ± 0.02 (task shape)" in reason
    assert "“GQA/MQA shrink the cache cheaply” holds" in reason and "(×0.125)" in reason


def test_confirmed_when_every_claim_holds():
    label, reason = q01.verdict(metrics(one_gain=0.5, speed=(1.3, 1.4)))
    assert label == "confirmed" and "all three claims hold" in reason
    # fewer FLOPs at the most heads also makes them "more efficient", if they are not slower
    assert q01.verdict(metrics(one_gain=0.5, flop_ratio=0.5, speed=(1.0, 1.0)))[0] == "confirmed"


def test_refuted_when_no_claim_holds():
    label, reason = q01.verdict(metrics(two_gain=0.0, gqa_cost=0.5, mqa_cost=0.8))
    assert label == "refuted" and "none of the claims holds" in reason
    assert "loss − 8-head MHA +0.800" in reason


def test_a_gain_within_seed_noise_is_no_gain():
    status, _ = q01.heads_claim(metrics(two_gain=0.06, noise=0.06))
    assert status == "fails"
    status, _ = q01.heads_claim(metrics(two_gain=0.03, noise=0.0))  # consistent but below MIN_LOSS_GAP
    assert status == "fails"


def test_heads_that_look_alike_do_not_confirm_the_mechanism():
    assert q01.heads_claim(metrics(one_gain=0.5, js=0.4))[0] == "holds"
    status, text = q01.heads_claim(metrics(one_gain=0.5, js=0.05))
    assert status == "depends" and "2 heads 0.050" in text


def test_heads_worse_than_one_are_named():
    _, text = q01.heads_claim(metrics(one_gain=-0.5))
    assert "one offset task" in text and "worse at 4, 16 heads" in text


def test_efficiency_depends_when_faster_at_one_shape_only():
    status, text = q01.efficiency_claim(metrics(speed=(1.3, 0.9)))
    assert status == "depends" and "1.30 ± 0.02 (task shape)" in text


def test_grouped_depends_when_only_one_variant_costs_quality():
    status, text = q01.grouped_claim(metrics(mqa_cost=0.4))
    assert status == "depends" and "8 q/1 kv heads (MQA)" in text and "+0.400" in text
    assert q01.grouped_claim(metrics(gqa_cost=0.4, mqa_cost=0.4))[0] == "fails"


def test_verdict_flips_when_the_numbers_do():
    m = metrics(one_gain=0.5, speed=(1.3, 1.4))
    assert q01.verdict(m)[0] == "confirmed"
    flipped = copy.deepcopy(m)
    for r in flipped["results"]["throughput"]:
        r["tokens_per_s"] = 1e5  # 16 heads no faster than 1: efficiency fails
    assert q01.verdict(flipped)[0] == "depends"
    for r in flipped["results"]["runs"]:
        r["loss"] = 0.01  # every model alike: no head count helps
    for c in flipped["results"]["cost"]:
        c["kv_bytes_per_token"] = 512.0  # and no cache shrinks
    assert q01.verdict(flipped)[0] == "refuted"


def test_tables_have_a_row_per_configuration_and_consistent_columns():
    quality, cost = q01.tables(metrics())
    assert len(quality[1]) == len(MHA + GROUPED) + len(CONTROL)
    assert len(cost[1]) == len(MHA + GROUPED)
    assert all(len(row) == len(columns) for columns, rows in (quality, cost) for row in rows)
    assert cost[1][0][0] == "1 head" and cost[1][-1][0] == "8 q/1 kv heads (MQA)"


def test_two_offset_task_labels_the_pair_and_the_control_the_near_symbol():
    g = torch.Generator().manual_seed(0)
    b = q01.task_batch(q01.TWO, g, 4)
    x, near, far = b["input_ids"] - 4, *q01.TASK["offsets"]
    t = 9
    assert int(b["labels"][0, t]) == q01.FIRST_PAIR + 8 * int(x[0, t - near]) + int(x[0, t - far])
    assert (b["labels"][:, :far] == -100).all()
    c = q01.task_batch(q01.ONE, torch.Generator().manual_seed(0), 4)
    assert int(c["labels"][1, t]) == int(c["input_ids"][1, t - near])


def test_js_is_zero_for_identical_heads_and_ln2_for_disjoint_ones():
    same = torch.tensor([[[0.5, 0.5, 0.0], [0.5, 0.5, 0.0]]])  # (N=1, H=2, S=3)
    disjoint = torch.tensor([[[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]])
    assert q01.mean_pairwise_js(same) == pytest.approx(0.0, abs=1e-6)
    assert q01.mean_pairwise_js(disjoint) == pytest.approx(0.6931, abs=1e-3)
    assert q01.mean_pairwise_js(same[:, :1]) is None


def test_kv_cache_bytes_follow_the_key_value_heads():
    mha = q01.kv_bytes_per_token(q01.build_model(q01.model_config(8, 8)))
    mqa = q01.kv_bytes_per_token(q01.build_model(q01.model_config(8, 1)))
    assert mha == 2 * 64 * 4 and mqa == mha / 8  # keys + values, d_model 64, fp32, one layer
