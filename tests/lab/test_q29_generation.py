"""Question 29's verdict follows the numbers, and its diversity and bootstrap helpers are right."""

from __future__ import annotations

from qkv.lab import q29_generation as q29


def metrics(beam_gain=1.5, beam_sd=0.3, distinct_rise=0.3, judge_rise=0.8, noise=0.01, seeds=3, size="full") -> dict:
    grid = [{"beams": b, "alpha": a, "bleu": 20.0, "sentences_per_s": 100.0 / b, "length_ratio": 1.0}
            for b in q29.BEAMS for a in q29.ALPHAS]
    sampling = []
    for s in range(seeds):
        wobble = noise * (s - (seeds - 1) / 2)
        for t in q29.TEMPERATURES:
            for p in q29.TOP_PS:
                hot = t == max(q29.TEMPERATURES)
                sampling.append({"seed": s, "temperature": t, "top_p": p, "distinct_1": 0.5, "self_bleu": 10.0,
                                 "distinct_2": 0.4 + (distinct_rise + wobble if hot else 0.0),
                                 "judge_loss": 1.5 + (judge_rise - wobble if hot else 0.0), "sample": "x"})
    gain = {"recipe_vs_greedy": {"cell": "4/0.6", "mean": beam_gain, "sd": beam_sd}}
    return {"question": 29, "size": size, "seeds": seeds,
            "results": {"beam_grid": grid, "beam_gain": gain, "sampling": sampling}}


def test_confirmed_when_beam_beats_greedy_and_sampling_trades_quality_for_diversity():
    label, reason = q29.verdict(metrics())
    assert label == "confirmed"
    assert "+1.50 ± 0.30 BLEU" in reason and "12.0×" in reason and "+0.300" in reason


def test_depends_when_only_one_part_holds():
    assert q29.verdict(metrics(beam_gain=0.2))[0] == "depends"
    label, reason = q29.verdict(metrics(judge_rise=0.0))
    assert label == "depends" and "beam beats greedy" in reason


def test_refuted_when_nothing_exceeds_the_noise():
    label, reason = q29.verdict(metrics(beam_gain=0.5, beam_sd=0.5, distinct_rise=0.0, judge_rise=0.0))
    assert label == "refuted" and "neither" in reason


def test_noise_flips_the_verdict():
    assert q29.verdict(metrics(beam_sd=0.3))[0] == "confirmed"
    assert q29.verdict(metrics(beam_sd=1.0))[0] == "depends"  # gain 1.5 < 2 sd


def test_too_few_seeds_and_smoke_are_inconclusive():
    assert q29.verdict(metrics(seeds=2))[0] == "inconclusive"
    label, reason = q29.verdict(metrics(size="smoke"))
    assert label == "inconclusive" and "qkv ask 29 --size full" in reason


def test_distinct_n_on_a_hand_counted_example():
    texts = ["a b a", "a b c"]  # unigrams a b a a b c: 3 unique of 6; bigrams ab ba ab bc: 3 of 4
    assert q29.distinct_n(texts, 1) == 3 / 6
    assert q29.distinct_n(texts, 2) == 3 / 4
    assert q29.distinct_n(["one"], 2) == 0.0


def test_self_bleu_is_high_for_copies_and_low_for_different_texts():
    same = ["the cat sat on the mat today"] * 3
    different = ["the cat sat on the mat today", "dogs run fast in green parks", "rain falls over quiet hills"]
    assert q29.self_bleu(same) > 99.0
    assert q29.self_bleu(different) < 10.0


def test_bootstrap_of_identical_hypotheses_is_exactly_zero():
    refs = ["a man is walking", "two dogs play", "a woman sings loudly"]
    hyps = ["a man walks", "two dogs play", "a woman sings"]
    d = q29.bootstrap_diff(hyps, hyps, refs, n=20)
    assert d == {"mean": 0.0, "sd": 0.0}
    better = q29.bootstrap_diff(refs, hyps, refs, n=20)
    assert better["mean"] > 0
