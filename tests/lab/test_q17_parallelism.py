"""Question 17's verdict follows the numbers: every outcome, the flips, and the timing arithmetic."""

from __future__ import annotations

import pytest

from qkv.lab import q17_parallelism as q17

CHECKPOINTS = [64, 128, 256, 512, 1024]
LENGTHS = [64, 256, 1024]


def metrics(gain=20.0, exp_cached=1.0, exp_uncached=1.9, growth=1.05, growth_batch=1.05, lstm_ratio=2.0,
            noise=0.01, seeds=4, size="full", same_tokens=True) -> dict:
    train, decode = [], []
    for r in range(seeds):
        wobble = 1 + noise * (r - (seeds - 1) / 2)
        for t in LENGTHS:
            train.append({"round": r, "length": t, "transformer_s": 0.1, "lstm_s": 0.1 * lstm_ratio * wobble})
        cached = [1e-3 * n ** exp_cached * wobble for n in CHECKPOINTS]
        flat = lambda g: [1e-3] * 30 + [1e-3 * g * wobble] * 2  # noqa: E731  bins 1-2 early, last two late
        decode.append({"round": r, "cached_totals": cached, "uncached_totals": [1e-3 * n ** exp_uncached for n in CHECKPOINTS],
                       "cached_batch_totals": cached, "pass_s": [c / (gain * wobble) for c in cached],
                       "cached_bins": flat(growth), "cached_batch_bins": flat(growth_batch),
                       "uncached_bins": flat(30.0), "same_tokens": same_tokens})
    return {"question": 17, "size": size, "seeds": seeds,
            "config": {"checkpoints": CHECKPOINTS, "decode_batch": 16, "n_layers": 2},
            "results": {"train": train, "decode": decode, "params": {"transformer": 1, "lstm": 1}}}


def test_confirmed_when_every_claim_holds():
    label, reason = q17.verdict(metrics())
    assert label == "confirmed"
    assert "20.0 ± 0.3× the teacher-forced pass" in reason and "2.00 ± 0.03 at T=64" in reason


def test_depends_when_the_cache_does_not_flatten_and_the_lstm_trains_faster():
    label, reason = q17.verdict(metrics(growth_batch=3.0, lstm_ratio=0.4))
    assert label == "depends"
    assert "held: parallel_training, quadratic_without_cache" in reason
    assert "failed: flat_with_cache, faster_than_lstm" in reason


def test_refuted_when_every_claim_fails():
    label, _ = q17.verdict(metrics(gain=1.0, exp_uncached=1.0, growth=2.0, lstm_ratio=0.5))
    assert label == "refuted"


def test_noise_larger_than_every_effect_is_inconclusive():
    # each ratio sits at its threshold, with 40 % wobble over rounds: nothing clears noise
    label, reason = q17.verdict(metrics(gain=2.0, exp_uncached=1.5, growth=1.1, growth_batch=1.1, lstm_ratio=1.0,
                                        noise=0.4))
    assert label == "inconclusive" and "no claim clears" in reason


def test_noise_flips_a_claim_from_held_to_unclear():
    assert q17.claim_outcomes(q17.effects(metrics(gain=3.0)))["parallel_training"] == "held"
    assert q17.claim_outcomes(q17.effects(metrics(gain=3.0, noise=0.5)))["parallel_training"] == "unclear"


def test_the_lstm_claim_depends_on_the_length_when_the_ratio_crosses_one():
    m = metrics()
    for row in m["results"]["train"]:
        row["lstm_s"] = row["transformer_s"] * (0.5 if row["length"] == 64 else 2.0)
    assert q17.claim_outcomes(q17.effects(m))["faster_than_lstm"] == "unclear"


def test_different_tokens_make_the_run_inconclusive():
    label, reason = q17.verdict(metrics(same_tokens=False))
    assert label == "inconclusive" and "different tokens" in reason


def test_too_few_rounds_and_smoke_size_are_inconclusive():
    assert q17.verdict(metrics(seeds=2))[0] == "inconclusive"
    label, reason = q17.verdict(metrics(size="smoke"))
    assert label == "inconclusive" and "qkv ask 17 --size full" in reason


def test_timing_arithmetic_on_hand_examples():
    assert q17.growth_exponent([1.0, 4.0, 16.0], [1, 2, 4]) == pytest.approx(2.0)
    assert q17.growth_exponent([9.0, 5.0, 10.0, 20.0], [1, 2, 4, 8]) == pytest.approx(1.0)  # last two octaves only
    assert q17.late_over_early([9.0, 1.0, 1.0, 2.0, 2.0]) == pytest.approx(2.0)
    assert q17.binned([1.0, 2.0, 3.0, 4.0, 5.0], 2) == [1.5, 3.5, 5.0]
    assert q17.running_totals([1.0, 2.0, 3.0, 4.0], [1, 3]) == [1.0, 6.0]


def test_forward_timer_sees_one_call_per_generated_token():
    import torch

    s = {**q17.SIZES["smoke"], "d_model": 16}
    model = q17.build_model(q17.lm_config(s, "transformer", 32)).eval()
    for use_cache in (True, False):
        seconds, tokens = q17.decode_latencies(model, 7, 1, use_cache, torch.Generator().manual_seed(0))
        assert len(seconds) == 7 and tokens.shape == (1, 8) and all(x > 0 for x in seconds)
