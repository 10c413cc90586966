"""Question 23's verdict follows the numbers; its equivariance check and position probe measure what they say."""

from __future__ import annotations

import copy

import pytest
import torch

from qkv.lab import q23_positions_needed as q23


def layers(r2s: list[float]) -> list[dict]:
    return [{"layer": i, "r2": r2, "accuracy": 0.5} for i, r2 in enumerate(r2s)]


def q23_metrics(nope_best: float = 0.7, noise: float = 0.01, none_diff: float = 5e-7, sinusoidal_diff: float = 2.0,
                seeds: int = 5, size: str = "full") -> dict:
    """Synthetic results: the LM without positions reaches probe R² ``nope_best`` (+ zero-mean jitter)
    after its embedding output's 0.0; the permutation differences as given."""
    equivariance = []
    for s in range(seeds):
        for family, position, diff in (("encoder", "none", none_diff), ("encoder", "sinusoidal", sinusoidal_diff),
                                       ("lm", "none", 0.1)):
            equivariance.append({"family": family, "position": position, "seed": s, "max_diff": diff,
                                 "allclose": diff <= q23.EQUIVARIANT_TOL})
    lm = []
    for s in range(seeds):
        jitter = noise * (s - (seeds - 1) / 2)
        lm.append({"position": "none", "seed": s, "untrained": layers([0.0, 0.3, 0.3]),
                   "trained": layers([0.0, nope_best / 2, nope_best + jitter]), "accuracy": 0.4, "final_loss": 1.5})
        lm.append({"position": "sinusoidal", "seed": s, "untrained": layers([1.0, 0.9, 0.8]),
                   "trained": layers([1.0, 0.95, 0.9]), "accuracy": 1.0, "final_loss": 0.01})
    return {"question": 23, "size": size, "seeds": seeds, "results": {"equivariance": equivariance, "lm": lm}}


def test_smoke_size_is_inconclusive():
    label, reason = q23.verdict(q23_metrics(size="smoke"))
    assert label == "inconclusive" and reason.startswith("smoke size") and "qkv ask 23 --size full" in reason


def test_depends_when_the_encoder_is_equivariant_but_the_causal_lm_learns_position():
    label, reason = q23.verdict(q23_metrics())
    assert label == "depends"
    assert "5.00e-07" in reason and "2.00e+00" in reason
    assert "R² 0.700 at its best layer vs 0.000" in reason and "copy accuracy 0.400 vs 1.000" in reason


def test_confirmed_when_no_layer_of_the_causal_lm_holds_position():
    label, reason = q23.verdict(q23_metrics(nope_best=0.02, noise=0.0))
    assert label == "confirmed" and "not even a causal LM" in reason and "R² 0.020" in reason


def test_inconclusive_when_the_position_gain_is_within_seed_noise():
    label, reason = q23.verdict(q23_metrics(nope_best=0.3, noise=0.3))
    assert label == "inconclusive" and "within seed noise" in reason


def test_refuted_when_the_encoder_without_positions_is_not_equivariant():
    label, reason = q23.verdict(q23_metrics(none_diff=1e-3))
    assert label == "refuted" and "1.00e-03" in reason


def test_refuted_when_positions_do_not_break_equivariance():
    label, reason = q23.verdict(q23_metrics(sinusoidal_diff=1e-6))
    assert label == "refuted" and "1.00e-06" in reason


def test_inconclusive_with_too_few_seeds():
    assert q23.verdict(q23_metrics(seeds=2))[0] == "inconclusive"


def test_verdict_flips_when_the_numbers_do():
    metrics = q23_metrics()
    assert q23.verdict(metrics)[0] == "depends"
    flipped = copy.deepcopy(metrics)
    for r in flipped["results"]["lm"]:
        if r["position"] == "none":
            r["trained"] = layers([0.0, 0.01, 0.01])
    assert q23.verdict(flipped)[0] == "confirmed"


def test_tables_list_every_case_and_layer():
    first, second = q23.tables(q23_metrics())
    assert [row[:2] for row in first[1]] == [["encoder", "none"], ["encoder", "sinusoidal"], ["lm", "none"]]
    assert len(second[1]) == 2 * 2 * 3  # positions × stages × layers


@pytest.mark.parametrize("family, position, equivariant", [
    ("encoder", "none", True), ("encoder", "sinusoidal", False), ("lm", "none", False),
])
def test_equivariance_holds_only_for_the_encoder_without_positions(family, position, equivariant):
    result = q23.equivariance(family, position, seed=0)
    assert result["allclose"] is equivariant
    assert (result["max_diff"] <= q23.EQUIVARIANT_TOL) is equivariant


def test_position_probe_reads_a_linear_position_and_not_noise():
    g = torch.Generator().manual_seed(0)
    B, T, d = 40, 8, 12
    noise = torch.randn(B, T, d, generator=g)
    encoded = noise.clone()
    encoded[..., :T] = torch.eye(T)  # position written one-hot into the first T features
    assert q23.position_probe(encoded, n_train=30) == pytest.approx({"r2": 1.0, "accuracy": 1.0}, abs=0.01)
    by_chance = q23.position_probe(noise, n_train=30)
    assert by_chance["r2"] < 0.1 and by_chance["accuracy"] < 0.3
