"""Question 19's verdict follows the numbers: every outcome, and the flips between them; and the
Monte-Carlo gap helpers on hand-computed cases."""

from __future__ import annotations

import math

import torch

from qkv.lab import q19_lr_dropout as q19

PASSES = [1, 4, 16, 64, 256, 1024]


def metrics(post_no_warmup=2.4, pre_no_warmup=2.0, post_diverged=0, dropout_gain=0.0, linear_bias=0.0,
            deep_bias=0.0, noise=0.01, seeds=3, size="full") -> dict:
    warm, drop, mc = [], [], []
    for s in range(seeds):
        wobble = noise * (s - (seeds - 1) / 2)
        for p in q19.PLACEMENTS:
            for w in (0, 5, 20, 100):
                loss = 2.0  # the noise sits on the no-warm-up runs, so the paired difference carries it
                if w == 0:
                    loss = (post_no_warmup if p == "post" else pre_no_warmup) + wobble
                diverged = p == "post" and w == 0 and s < post_diverged
                warm.append({"placement": p, "warmup": w, "seed": s, "val_loss": math.inf if diverged else loss,
                             "diverged": diverged})
        drop.append({"place": "none", "rate": 0.0, "seed": s, "val_loss": 2.0, "gap": 0.0})
        for place in q19.DROPOUT_PLACES:
            for r in q19.RATES:
                drop.append({"place": place, "rate": r, "seed": s, "val_loss": 2.0 - dropout_gain + wobble, "gap": 0.0})
        # an unbiased mean: gap(K) = 0.5 / sqrt(K); a biased one adds a floor
        mc.append({"model": "linear", "seed": s, "gaps": [0.5 / math.sqrt(k) + linear_bias for k in PASSES]})
        for n in q19.DEPTHS:
            mc.append({"model": f"depth {n}", "depth": n, "seed": s,
                       "gaps": [0.5 / math.sqrt(k) + deep_bias for k in PASSES]})
    return {"question": 19, "size": size, "seeds": seeds,
            "results": {"warmup": warm, "dropout": drop, "test_time": mc, "passes": PASSES}}


def test_confirmed_when_all_three_claims_hold():
    label, reason = q19.verdict(metrics(dropout_gain=0.1))
    assert label == "confirmed" and "post-LN diverged 0/3" in reason and "+0.400" in reason


def test_depends_on_the_usual_outcome_bias_through_depth_and_no_dropout_gain():
    label, reason = q19.verdict(metrics(deep_bias=0.2))
    assert label == "depends"
    assert "dropout improves val loss: nowhere" in reason and "through depth no (a bias)" in reason
    assert "exact for one linear layer yes" in reason


def test_divergence_without_warm_up_counts_for_post_ln():
    label, reason = q19.verdict(metrics(post_no_warmup=2.0, post_diverged=2, dropout_gain=0.1))
    assert label == "confirmed" and "post-LN diverged 2/3 without warm-up" in reason


def test_refuted_when_nothing_holds():
    label, _ = q19.verdict(metrics(post_no_warmup=2.0, pre_no_warmup=2.5, linear_bias=0.2, deep_bias=0.2))
    assert label == "refuted"


def test_noise_larger_than_the_effect_flips_the_warm_up_claim():
    assert q19.verdict(metrics(post_no_warmup=2.1, dropout_gain=0.1, noise=0.001))[0] == "confirmed"
    label, reason = q19.verdict(metrics(post_no_warmup=2.1, dropout_gain=0.1, noise=0.3))
    assert label == "depends" and "post-LN needs warm-up and pre-LN does not: no" in reason


def test_too_few_seeds_and_smoke_size_are_inconclusive():
    assert q19.verdict(metrics(seeds=2))[0] == "inconclusive"
    label, reason = q19.verdict(metrics(size="smoke"))
    assert label == "inconclusive" and "qkv ask 19 --size full" in reason


def test_relative_gap_on_a_hand_example():
    exact = torch.tensor([3.0, 4.0])  # RMS = sqrt(12.5)
    expected = math.sqrt(0.5) / math.sqrt(12.5)  # RMS of (0, 1) over RMS of (3, 4)
    assert math.isclose(q19.relative_gap(torch.tensor([3.0, 5.0]), exact), expected, rel_tol=1e-6)


def test_mc_gaps_average_running_passes():
    draws = iter([torch.tensor([2.0]), torch.tensor([0.0]), torch.tensor([4.0]), torch.tensor([2.0])])
    # running means after 1, 2 and 4 passes: 2, 1, 2 against exact 1 → gaps 1, 0, 1
    assert q19.mc_gaps(lambda: next(draws), torch.tensor([1.0]), (1, 2, 4)) == [1.0, 0.0, 1.0]


def test_bias_ratio_is_one_for_an_unbiased_mean_and_large_for_a_floor():
    rows = [{"model": "linear", "gaps": [0.5 / math.sqrt(k) for k in PASSES]},
            {"model": "deep", "gaps": [0.5 / math.sqrt(k) + 0.1 for k in PASSES]}]
    assert math.isclose(q19.bias_ratio(rows, "linear", PASSES), 1.0)
    assert q19.bias_ratio(rows, "deep", PASSES) > 5
