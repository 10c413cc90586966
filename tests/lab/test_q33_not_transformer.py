"""Question 33's verdict follows the numbers: every outcome and the flips; the crossover on hand cases."""

from __future__ import annotations

from qkv.lab import q33_not_transformer as q33

FRACTIONS = (0.01, 0.1, 1.0)


def metrics(gaps=(0.2, 0.0, -0.2), transformer_ms=2.0, lstm_ms=1.0, noise=0.01, latency_noise=0.01, growth=1.5,
            seeds=3, size="full") -> dict:
    """``gaps``: Transformer − LSTM held-out loss per share of the data (> 0: the LSTM is better)."""
    sweep, streaming = [], []
    for s in range(seeds):
        wobble, jitter = noise * (s - (seeds - 1) / 2), latency_noise * (s - (seeds - 1) / 2)
        for f, gap in zip(FRACTIONS, gaps):
            sweep.append({"fraction": f, "seed": s, "train_chars": int(1e6 * f), "transformer_held_out": 2.0 + gap + wobble,
                          "lstm_held_out": 2.0, "transformer_train": 1.5, "lstm_train": 1.7})
        streaming.append({"seed": s, "transformer_median_ms": transformer_ms * (1 + jitter), "lstm_median_ms": lstm_ms,
                          "transformer_early_ms": transformer_ms, "transformer_late_ms": growth * transformer_ms,
                          "lstm_early_ms": lstm_ms, "lstm_late_ms": lstm_ms})
    return {"question": 33, "size": size, "seeds": seeds, "results": {"sweep": sweep, "streaming": streaming}}


def test_confirmed_when_the_lstm_wins_small_data_and_streaming():
    label, reason = q33.verdict(metrics())
    assert label == "confirmed"
    assert "+0.200 ± 0.010" in reason and "at 1% of the data" in reason and "crossover between 1% and 100%" in reason
    assert "×2.00" in reason and "late/early ×1.50 Transformer, ×1.00 LSTM" in reason


def test_the_reason_says_whether_the_transformer_latency_grew():
    assert "latency grew with the context" in q33.verdict(metrics(growth=1.5))[1]
    label, reason = q33.verdict(metrics(growth=1.0))
    assert label == "confirmed" and "did not grow" in reason and "late/early ×1.00 Transformer" in reason


def test_depends_when_only_one_situation_favours_the_lstm():
    label, reason = q33.verdict(metrics(transformer_ms=1.0, lstm_ms=2.0))
    assert label == "depends" and "only small data" in reason
    label, reason = q33.verdict(metrics(gaps=(-0.1, -0.2, -0.3)))
    assert label == "depends" and "only streaming" in reason and "no crossover" in reason


def test_an_lstm_better_by_the_same_margin_at_every_size_is_no_small_data_effect():
    label, reason = q33.verdict(metrics(gaps=(0.2, 0.2, 0.2)))
    assert label == "depends" and "only streaming" in reason and "change +0.000" in reason
    assert q33.verdict(metrics(gaps=(0.2, 0.2, 0.1)))[0] == "confirmed"  # the lead shrinks by 0.1 > MIN_GAP


def test_refuted_when_the_transformer_is_never_worse():
    label, reason = q33.verdict(metrics(gaps=(-0.1, -0.2, -0.3), transformer_ms=1.0, lstm_ms=2.0))
    assert label == "refuted"


def test_inconclusive_when_everything_is_within_noise():
    label, reason = q33.verdict(metrics(gaps=(0.005, 0.0, -0.005), transformer_ms=1.1, lstm_ms=1.0))
    assert label == "inconclusive" and "no data-size or latency effect" in reason


def test_noise_larger_than_the_small_data_effect_flips_the_verdict():
    assert q33.verdict(metrics(noise=0.01))[0] == "confirmed"
    assert q33.verdict(metrics(noise=0.5))[0] == "depends"  # the latency gap (×2) survives, the loss gap does not
    assert q33.verdict(metrics(latency_noise=0.9))[0] == "depends"  # now the latency gap drowns


def test_a_small_speedup_does_not_count():
    # every seed the same ×1.1: consistent, but below MIN_SPEEDUP
    assert q33.verdict(metrics(transformer_ms=1.1, lstm_ms=1.0, latency_noise=0.0))[0] == "depends"


def test_too_few_seeds_and_smoke_size_are_inconclusive():
    assert q33.verdict(metrics(seeds=2))[0] == "inconclusive"
    label, reason = q33.verdict(metrics(size="smoke"))
    assert label == "inconclusive" and "qkv ask 33 --size full" in reason


def point(f, side):
    return {"fraction": f, "side": side}


def test_crossover_needs_the_lstm_below_and_the_transformer_above():
    assert q33.crossover([point(0.01, "lstm"), point(0.03, "lstm"), point(0.1, "neither"), point(1.0, "transformer")]) \
        == (0.03, 1.0)
    assert q33.crossover([point(0.01, "lstm"), point(1.0, "lstm")]) is None
    assert q33.crossover([point(0.01, "transformer"), point(0.1, "lstm"), point(1.0, "transformer")]) is None
    assert q33.crossover([point(0.01, "neither"), point(1.0, "transformer")]) is None


def test_median_of_odd_and_even_lists():
    assert q33.median([3.0, 1.0, 2.0]) == 2.0
    assert q33.median([4.0, 1.0, 3.0, 2.0]) == 2.5


def test_block_medians_drop_single_spikes_and_the_short_tail():
    assert q33.block_medians([1.0, 9.0, 1.0, 2.0, 2.0, 50.0, 7.0], 3) == [1.0, 2.0]
