"""Question 21's verdict follows the numbers: every outcome and the flips; its helpers on hand examples."""

from __future__ import annotations

from qkv.lab import q21_lstm as q21
from qkv.models import build_model, n_params


def metrics(steps_gap=0.1, time_gap=0.1, range_gap=0.05, noise=0.01, seeds=3, size="full") -> dict:
    """Gaps are LSTM − Transformer losses and Transformer − LSTM late gains: positive favours the Transformer."""
    rows = []
    for s in range(seeds):
        wobble = noise * (s - (seeds - 1) / 2)
        rows.append({"seed": s, "transformer_equal_steps": 2.0, "lstm_equal_steps": 2.0 + steps_gap + wobble,
                     "transformer_equal_time": {"loss": 2.0}, "lstm_equal_time": {"loss": 2.0 + time_gap - wobble},
                     "transformer_late_gain": 0.02 + range_gap + wobble, "lstm_late_gain": 0.02})
    return {"question": 21, "size": size, "seeds": seeds,
            "results": {"runs": rows, "params": {"transformer": 1000, "lstm": 1010}}}


def test_confirmed_when_the_transformer_wins_every_comparison():
    label, reason = q21.verdict(metrics())
    assert label == "confirmed"
    assert "+0.100 ± 0.010" in reason and "+0.050" in reason and "1000 vs 1010" in reason


def test_refuted_when_the_lstm_wins_and_the_transformer_never_does():
    label, reason = q21.verdict(metrics(steps_gap=-0.1, time_gap=-0.2, range_gap=0.0))
    assert label == "refuted" and "equal_steps, equal_time" in reason and "-0.200" in reason


def test_depends_when_only_some_comparisons_favour_the_transformer():
    label, reason = q21.verdict(metrics(steps_gap=-0.1, time_gap=-0.1, range_gap=0.05))
    assert label == "depends" and "wins on long_range" in reason and "LSTM on equal_steps, equal_time" in reason


def test_inconclusive_when_every_difference_is_within_seed_noise():
    label, reason = q21.verdict(metrics(steps_gap=0.01, time_gap=-0.005, range_gap=0.002))
    assert label == "inconclusive" and "no difference" in reason


def test_noise_larger_than_the_effect_flips_the_verdict():
    assert q21.verdict(metrics(steps_gap=0.1, time_gap=0.1, range_gap=0.05, noise=0.01))[0] == "confirmed"
    assert q21.verdict(metrics(steps_gap=0.1, time_gap=0.1, range_gap=0.05, noise=0.2))[0] == "inconclusive"


def test_a_consistent_but_tiny_effect_does_not_count():
    # 0.01 nats/char every seed, no noise: consistent, but below MIN_GAP and MIN_RANGE_GAP
    assert q21.verdict(metrics(steps_gap=0.01, time_gap=0.01, range_gap=0.005, noise=0.0))[0] == "inconclusive"


def test_too_few_seeds_and_smoke_size_are_inconclusive():
    assert q21.verdict(metrics(seeds=2))[0] == "inconclusive"
    label, reason = q21.verdict(metrics(size="smoke"))
    assert label == "inconclusive" and "qkv ask 21 --size full" in reason


def test_late_gain_is_second_quarter_minus_last_quarter():
    curve = [4.0, 4.0, 3.0, 1.0, 2.0, 2.0, 1.0, 0.0]  # quarters: [4,4] [3,1] [2,2] [1,0]
    assert q21.late_gain(curve) == (3.0 + 1.0) / 2 - (1.0 + 0.0) / 2


def lstm_params_by_hand(vocab: int, width: int, layers: int) -> int:
    # tied embedding (vocab × width); per layer four gates of W_ih, W_hh and two bias vectors
    return vocab * width + layers * 4 * (2 * width * width + 2 * width)


def test_lstm_width_matches_the_transformer_parameter_count():
    s = q21.SIZES["full"]
    width = q21.matched_lstm_width(s)
    target = n_params(build_model(q21.transformer_config(s)))
    assert n_params(build_model(q21.lstm_config(s, width))) == lstm_params_by_hand(260, width, s["n_layers"])
    best = min(range(2, 400, 2), key=lambda d: abs(lstm_params_by_hand(260, d, s["n_layers"]) - target))
    assert width == best
    assert abs(lstm_params_by_hand(260, width, s["n_layers"]) - target) / target < 0.03
