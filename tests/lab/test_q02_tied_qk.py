"""Question 2's verdict follows the numbers: every outcome from synthetic metrics, and the flips."""

from __future__ import annotations

import copy

import pytest

from qkv.lab import q02_tied_qk as q02


def unit_item(d_head: int, seed: int, asymmetry: float = 0.0) -> dict:
    tied = {"asymmetry": asymmetry, "min_eig": 1e-8, "diag_argmax": 1.0, "diag_weight": 0.9}
    untied = {"asymmetry": 1.4, "min_eig": -0.5, "diag_argmax": 0.03, "diag_weight": 0.03}
    return {"d_head": d_head, "seed": seed, "predicted_diag_weight": 0.9, "tied": tied, "tied_rope": dict(tied),
            "untied": untied, "untied_rope": dict(untied)}


def cell(setting: str, tied: bool, seed: int, accuracy: float, diag: float) -> dict:
    return {"setting": setting, "tied": tied, "seed": seed, "accuracy": accuracy, "loss": 1.0, "diag": diag,
            "previous": 0.5, "diag_init": diag, "previous_init": 0.1}


def metrics(gaps: dict[str, float] | None = None, diag_gap: float = 0.5, noise: float = 0.01, seeds: int = 5,
            asymmetry: float = 0.0, size: str = "full") -> dict:
    """Untied accuracy 0.95 in every setting; tied accuracy 0.95 − gap (with zero-mean jitter)."""
    gaps = gaps if gaps is not None else {name: 0.8 for name in q02.SETTINGS}
    training = []
    for s in range(seeds):
        jitter = noise * (s - (seeds - 1) / 2)
        for name, gap in gaps.items():
            training.append(cell(name, False, s, 0.95, 0.2))
            training.append(cell(name, True, s, 0.95 - gap + jitter, 0.2 + diag_gap + jitter))
    unit = [unit_item(d, s, asymmetry) for s in range(seeds) for d in (8, 64)]
    return {"question": 2, "size": size, "seeds": seeds,
            "results": {"unit_variance": unit, "training": training,
                        "uniform_diag": {name: 0.16 for name in gaps}}}


def test_confirmed_when_tying_hurts_and_leans_to_the_diagonal_everywhere():
    label, reason = q02.verdict(metrics())
    assert label == "confirmed"
    assert "accuracy 0.95 untied vs 0.15 tied (gap +0.80" in reason and "+0.50" in reason
    assert "100% of rows tied vs 3% untied" in reason


def test_depends_names_the_settings_where_tying_does_not_hurt():
    gaps = {name: 0.8 for name in q02.SETTINGS} | {"2 layers": 0.0}
    label, reason = q02.verdict(metrics(gaps))
    assert label == "depends"
    assert "but not in 2 layers" in reason and "2 layers: accuracy 0.95 untied vs 0.95 tied (gap +0.00" in reason


def test_depends_when_accuracy_drops_but_the_diagonal_does_not_lean():
    label, reason = q02.verdict(metrics(diag_gap=0.0))
    assert label == "depends" and "diagonal lean is beyond noise only in none" in reason


def test_refuted_when_tying_costs_nothing_beyond_noise():
    label, reason = q02.verdict(metrics({name: 0.0 for name in q02.SETTINGS}))
    assert label == "refuted" and "does not cost accuracy" in reason
    # a gap no larger than the seed noise is not an effect
    assert q02.verdict(metrics({name: 0.12 for name in q02.SETTINGS}, noise=0.12))[0] == "refuted"
    # a consistent gap below MIN_ACC_GAP does not matter
    assert q02.verdict(metrics({name: 0.05 for name in q02.SETTINGS}, noise=0.0))[0] == "refuted"


def test_refuted_when_tied_scores_are_not_symmetric():
    label, reason = q02.verdict(metrics(asymmetry=0.3))
    assert label == "refuted" and "not symmetric" in reason and "3.0e-01" in reason


@pytest.mark.parametrize("seeds, size, words", [(2, "full", "2 seeds"), (5, "smoke", "smoke size")])
def test_inconclusive_with_too_few_seeds_or_at_smoke_size(seeds, size, words):
    label, reason = q02.verdict(metrics(seeds=seeds, size=size))
    assert label == "inconclusive" and words in reason


def test_verdict_flips_when_the_numbers_do():
    confirmed = metrics()
    assert q02.verdict(confirmed)[0] == "confirmed"
    flipped = copy.deepcopy(confirmed)
    for r in flipped["results"]["training"]:
        if r["tied"]:
            r["accuracy"] = 0.95
    assert q02.verdict(flipped)[0] == "refuted"


def test_tables_have_a_row_per_d_head_and_per_setting_and_tie():
    unit, training = q02.tables(metrics())
    assert [row[0] for row in unit[1]] == ["8", "64"] and unit[1][0][2] == "0.9"
    assert len(training[1]) == 2 * len(q02.SETTINGS) and training[1][1][-1].startswith("+0.800")


def test_prediction_matches_the_measured_self_weight_at_unit_variance():
    for d_head in (8, 32):
        measured = sum(q02.unit_variance(d_head, seed)["tied"]["diag_weight"] for seed in range(3)) / 3
        assert abs(q02.predicted_diag_weight(d_head, 32, 64) - measured) < 0.08
    # the untied self weight stays near uniform, 1/32
    assert q02.unit_variance(32, 0)["untied"]["diag_weight"] < 0.1
