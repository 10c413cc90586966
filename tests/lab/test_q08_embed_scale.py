"""Question 8's verdict follows the numbers, and its norm ratio is the one the derivation predicts."""

from __future__ import annotations

import copy

import pytest
import torch

from qkv.lab import q08_embed_scale as q08
from qkv.models import build_model


def q08_metrics(gap_small: float = 0.5, gap_large: float = 0.5, noise: float = 0.01, ratio: float = 0.028,
                seeds: int = 5, size: str = "full") -> dict:
    """Synthetic training cells: loss with √d is 0.1; without it, 0.1 + gap (per init) + zero-mean jitter."""
    training = []
    for s in range(seeds):
        jitter = noise * (s - (seeds - 1) / 2)
        for init, gap in (("0.02", gap_small), ("d^-1/2", gap_large)):
            for scale in (True, False):
                loss = 0.1 if scale else 0.1 + gap + jitter
                r = ratio if (not scale and init == "0.02") else 1.0
                training.append({"scale": scale, "init": init, "seed": s, "final_loss": loss, "accuracy": 1.0,
                                 "ratio_init": r, "ratio_trained": r, "curve": [loss]})
    norms = [{"d_model": 64, "seed": s, "scale": scale, "init": init, "ratio": 0.1}
             for s in range(seeds) for scale, init in q08.CELLS]
    return {"question": 8, "size": size, "seeds": seeds, "results": {"init_norms": norms, "training": training}}


def test_smoke_size_is_inconclusive():
    label, reason = q08.verdict(q08_metrics(size="smoke"))
    assert label == "inconclusive" and reason.startswith("smoke size") and "qkv ask 8 --size full" in reason


def test_confirmed_when_the_multiplier_helps_at_both_inits():
    label, reason = q08.verdict(q08_metrics())
    assert label == "confirmed"
    assert "0.028 of the PE's norm" in reason and "at std d^-1/2: loss without − with √d = +0.500" in reason


def test_depends_when_the_multiplier_helps_only_the_small_init():
    label, reason = q08.verdict(q08_metrics(gap_large=0.0))
    assert label == "depends"
    assert "only when the table starts at std 0.02, not at std d^-1/2" in reason and "hurts" not in reason
    assert "without √d has 1.000 of the PE's norm" in reason
    assert "at std 0.02: loss without − with √d = +0.500" in reason


def test_depends_says_when_the_multiplier_hurts_the_other_init():
    label, reason = q08.verdict(q08_metrics(gap_large=-0.3))
    assert label == "depends" and "(it hurts there)" in reason and "-0.300" in reason


def test_refuted_when_the_multiplier_helps_at_neither_init():
    label, reason = q08.verdict(q08_metrics(gap_small=0.0, gap_large=0.0))
    assert label == "refuted" and "at either init" in reason


def test_refuted_when_the_small_table_is_not_drowned():
    label, reason = q08.verdict(q08_metrics(ratio=0.8))
    assert label == "refuted" and reason.startswith("not drowned") and "0.800" in reason


def test_inconclusive_when_a_large_gap_is_within_seed_noise():
    label, reason = q08.verdict(q08_metrics(gap_small=0.1, gap_large=0.0, noise=0.1))
    assert label == "inconclusive" and "within seed noise" in reason and "+0.100 ± 0.158" in reason


def test_inconclusive_with_too_few_seeds():
    assert q08.verdict(q08_metrics(seeds=2))[0] == "inconclusive"


def test_verdict_flips_when_the_numbers_do():
    metrics = q08_metrics(gap_large=0.0)
    assert q08.verdict(metrics)[0] == "depends"
    flipped = copy.deepcopy(metrics)
    for r in flipped["results"]["training"]:
        if not r["scale"] and r["init"] == "d^-1/2":
            r["final_loss"] += 0.4
    assert q08.verdict(flipped)[0] == "confirmed"


def test_tables_have_one_row_per_cell():
    first, second = q08.tables(q08_metrics())
    assert len(first[1]) == 1 and len(first[1][0]) == 1 + len(q08.CELLS)
    assert [row[0] for row in second[1]] == [q08.cell_name(*c) for c in q08.CELLS]


@pytest.mark.parametrize("scale, init, expected", [
    (False, "0.02", 0.02 * 2**0.5),  # σ√2
    (True, "0.02", 0.02 * (2 * 64) ** 0.5),  # σ√(2d)
    (True, "d^-1/2", 2**0.5),
])
def test_norm_ratio_at_init_matches_the_derivation(scale, init, expected):
    torch.manual_seed(0)
    model = build_model(q08.model_config(scale, init, d_model=64, n_layers=1))
    assert q08.norm_ratio(model)["ratio"] == pytest.approx(expected, rel=0.1)
