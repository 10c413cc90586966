"""Question 6's verdict follows the numbers: every outcome from synthetic metrics, and the flips."""

from __future__ import annotations

import copy

import pytest
import torch

from qkv.lab import q06_head_dim as q06

STEPS = (100, 800)


def cost_item(arm: str) -> dict:
    cfg = q06.model_config(arm)
    flops = q06.analytic_flops(cfg, q06.TASK["batch"], q06.TASK["length"])
    params = q06.analytic_params(cfg)
    return {"arm": arm, "params": params["total"], "params_formula": params["total"],
            "attention_params": params["attention"], "flops_formula": flops,
            "linear_flops_from_params": flops["linear"], "flops_counted": flops["total"],
            "train_step_flops": 3 * flops["total"]}


def metrics(early_gain: float = 0.0, final_gain: float = 0.0, one_head_gap: float = 0.4, full_time: float = 2.0,
            one_head_time: float = 1.0, noise: float = 0.01, seeds: int = 5, size: str = "full") -> dict:
    """Reduced loss 0.5 at step 100 and 0.001 at 800; full-width lower by the gains; one head higher by the gap."""
    base_loss = {100: 0.5, 800: 0.001}
    training = []
    for s in range(seeds):
        jitter = noise * (s - (seeds - 1) / 2)
        shift = {"one_head": {100: one_head_gap, 800: one_head_gap}, "reduced": {100: 0.0, 800: 0.0},
                 "full_width": {100: -early_gain + jitter, 800: -final_gain + jitter}}
        for arm in q06.ARMS:
            quality = [{"step": step, "loss": base_loss[step] + shift[arm][step], "accuracy": 0.9} for step in STEPS]
            time_s = {"one_head": one_head_time, "reduced": 1.0, "full_width": full_time}[arm] * 0.01
            training.append({"arm": arm, "seed": s, "quality": quality, "step_s": time_s})
    wide = [{"round": r, "one_head": one_head_time, "reduced": 1.0, "full_width": full_time + 0.01 * r}
            for r in range(5)]
    results = {"cost": [cost_item(arm) for arm in q06.ARMS], "training": training, "wide_times": wide,
               "wide_train_step_flops": {"one_head": 10, "reduced": 10, "full_width": 24}}
    return {"question": 6, "size": size, "seeds": seeds, "results": results}


def test_confirmed_when_full_width_costs_more_and_never_helps():
    label, reason = q06.verdict(metrics())
    assert label == "confirmed"
    assert "×4.00 in attention FLOPs (h = 4)" in reason and "×2.40 per wide training step on paper" in reason
    assert "×2.02 ± 0.02 measured" in reason and "at equal parameters" in reason
    assert "step 800: +0.000 ± 0.016 nats" in reason


def test_refuted_when_full_width_ends_better():
    label, reason = q06.verdict(metrics(final_gain=0.2))
    assert label == "refuted" and "end better" in reason and "step 800: +0.200" in reason


def test_refuted_when_full_width_is_not_measurably_slower():
    label, reason = q06.verdict(metrics(full_time=1.05))
    assert label == "refuted" and "not measurably slower" in reason and "×1.07" in reason


def test_depends_when_full_width_only_learns_faster_early():
    label, reason = q06.verdict(metrics(early_gain=0.3))
    assert label == "depends" and "learn faster early (step 100: +0.300" in reason
    # an early lead within seed noise is no lead
    assert q06.verdict(metrics(early_gain=0.06, noise=0.06))[0] == "confirmed"


def test_depends_when_one_head_does_as_well_for_less_time_or_better():
    label, reason = q06.verdict(metrics(one_head_gap=-0.3))
    assert label == "depends" and "one head − reduced: -0.300" in reason
    assert q06.verdict(metrics(one_head_time=0.5))[0] == "depends"


@pytest.mark.parametrize("seeds, size, words", [(2, "full", "2 seeds"), (5, "smoke", "smoke size")])
def test_inconclusive_with_too_few_seeds_or_at_smoke_size(seeds, size, words):
    label, reason = q06.verdict(metrics(seeds=seeds, size=size))
    assert label == "inconclusive" and words in reason


def test_verdict_flips_when_the_numbers_do():
    confirmed = metrics()
    assert q06.verdict(confirmed)[0] == "confirmed"
    flipped = copy.deepcopy(confirmed)
    for r in flipped["results"]["training"]:
        if r["arm"] == "full_width":
            r["quality"][-1]["loss"] -= 0.5
    assert q06.verdict(flipped)[0] == "refuted"


def test_a_formula_that_disagrees_with_the_count_is_reported():
    broken = metrics()
    broken["results"]["cost"][0]["flops_counted"] += 1
    assert "formula disagrees with the count" in q06.verdict(broken)[1]


def test_formulas_match_the_built_models():
    for arm in q06.ARMS:
        item = q06.cost(arm)
        assert item["params"] == item["params_formula"]
        assert item["flops_counted"] == item["flops_formula"]["total"]
        assert item["linear_flops_from_params"] == item["flops_formula"]["linear"]
    one, reduced, full = (q06.cost(arm) for arm in q06.ARMS)
    assert one["params"] == reduced["params"] and one["flops_counted"] == reduced["flops_counted"]
    assert full["flops_formula"]["attention"] == q06.TASK["n_heads"] * reduced["flops_formula"]["attention"]


def test_pair_task_labels_the_symbols_one_and_three_back():
    batch = q06.pair_batch(torch.Generator().manual_seed(0), 2)
    x, labels, S = batch["input_ids"] - 4, batch["labels"], q06.TASK["symbols"]
    assert (labels[:, :3] == -100).all()
    assert (labels[:, 3:] == 4 + S + x[:, 2:-1] * S + x[:, :-3]).all()
