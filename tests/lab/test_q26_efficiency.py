"""Question 26's verdict follows the numbers: every outcome, the flips, and the crossing arithmetic."""

from __future__ import annotations

import pytest

from qkv.lab import q26_efficiency as q26

LENGTHS = [16, 64, 256, 1024]
BATCHES = [1, 32]


def metrics(ratio=lambda mode, batch, t: 2.0, stream_ratio=2.0, noise=0.01, seeds=4, size="full") -> dict:
    """``ratio``: Transformer / LSTM throughput per setting; ``stream_ratio``: LSTM / Transformer latency."""
    throughput, stream = [], []
    for r in range(seeds):
        wobble = 1 + noise * (r - (seeds - 1) / 2)
        for mode in q26.MODES:
            for batch in BATCHES:
                for t in LENGTHS:
                    throughput.append({"round": r, "mode": mode, "batch": batch, "length": t, "lstm_tokens_per_s": 1000.0,
                                       "transformer_tokens_per_s": 1000.0 * ratio(mode, batch, t) * wobble})
        stream.append({"round": r, "lstm_bins": [1e-3 * stream_ratio * wobble] * 4, "transformer_bins": [1e-3] * 4})
    return {"question": 26, "size": size, "seeds": seeds,
            "config": {"lengths": LENGTHS, "batches": BATCHES, "bin": 64, "d_model": 128},
            "results": {"throughput": throughput, "stream": stream, "params": {"transformer": 1, "lstm": 1},
                        "lstm_width": 158}}


def test_confirmed_when_the_transformer_wins_everywhere():
    label, reason = q26.verdict(metrics())
    assert label == "confirmed" and "wins 20" in reason


def test_refuted_when_the_lstm_wins_everywhere():
    label, reason = q26.verdict(metrics(ratio=lambda *_: 0.5, stream_ratio=0.5))
    assert label == "refuted" and "the LSTM 20" in reason


def test_depends_and_reports_the_crossing_when_the_winner_changes_with_length():
    # batch 1 training: 0.5 at T=16 and 64, 2.0 from T=256: the ratio crosses 1 between 64 and 256, at 128
    flip = lambda mode, batch, t: 0.5 if (mode, batch) == ("train", 1) and t < 100 else 2.0  # noqa: E731
    label, reason = q26.verdict(metrics(ratio=flip))
    assert label == "depends" and "train, batch 1: 128" in reason and "infer, batch 1: none" in reason


def test_depends_when_only_streaming_favours_the_lstm():
    label, reason = q26.verdict(metrics(stream_ratio=0.4))
    assert label == "depends" and "the LSTM 4" in reason


def test_lstm_wins_with_ties_elsewhere_refutes_the_claim():
    lstm_somewhere = lambda mode, batch, t: 0.5 if batch == 32 else 1.0  # noqa: E731
    label, reason = q26.verdict(metrics(ratio=lstm_somewhere, stream_ratio=1.0))
    assert label == "refuted" and "Transformer wins 0, the LSTM 8, 12 within" in reason


def test_transformer_wins_with_ties_elsewhere_confirms_it():
    transformer_somewhere = lambda mode, batch, t: 2.0 if batch == 32 else 1.0  # noqa: E731
    label, reason = q26.verdict(metrics(ratio=transformer_somewhere, stream_ratio=1.0))
    assert label == "confirmed" and "wherever the two differ" in reason


def test_ties_and_noise_make_it_inconclusive():
    assert q26.verdict(metrics(ratio=lambda *_: 1.05, stream_ratio=1.05))[0] == "inconclusive"
    assert q26.verdict(metrics(ratio=lambda *_: 1.5, stream_ratio=1.5, noise=0.01))[0] == "confirmed"
    assert q26.verdict(metrics(ratio=lambda *_: 1.5, stream_ratio=1.5, noise=0.6))[0] == "inconclusive"


def test_too_few_rounds_and_smoke_size_are_inconclusive():
    assert q26.verdict(metrics(seeds=2))[0] == "inconclusive"
    label, reason = q26.verdict(metrics(size="smoke"))
    assert label == "inconclusive" and "qkv ask 26 --size full" in reason


def test_winner_needs_the_minimum_effect_and_the_noise_margin():
    assert q26.winner({"mean": 1.3, "sd": 0.05}) == "transformer"
    assert q26.winner({"mean": 1.3, "sd": 0.2}) == "tie"  # 1.3 − 2·0.2 < 1.1
    assert q26.winner({"mean": 1.05, "sd": 0.0}) == "tie"
    assert q26.winner({"mean": 0.7, "sd": 0.05}) == "lstm"


def test_crossings_interpolate_on_log_length():
    ratios = {("train", 1, 10): {"mean": 0.5}, ("train", 1, 1000): {"mean": 2.0},
              ("infer", 1, 10): {"mean": 2.0}, ("infer", 1, 1000): {"mean": 3.0}}
    found = q26.crossings(ratios)
    assert found["train, batch 1"] == [pytest.approx(100.0)] and found["infer, batch 1"] == []


def test_matched_lstm_width_comes_nearest_the_target():
    s = q26.SIZES["smoke"]
    target = q26.n_params(q26.build_model(q26.lm_config(s, "transformer", 32)))
    width = q26.matched_lstm_width(s, target, 32)
    count = lambda w: q26.n_params(q26.build_model(q26.lm_config({**s, "d_model": w, "n_heads": 1}, "lstm", 32)))  # noqa: E731
    assert width % 2 == 0
    assert abs(count(width) - target) <= min(abs(count(width - 2) - target), abs(count(width + 2) - target))
