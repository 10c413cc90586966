"""Question 34's verdict follows the numbers, claim by claim."""

from __future__ import annotations

from qkv.lab import q34_interpretation as q34

GOOD = {"ig_vs_attention": 0.8, "gap": 0.001, "ig_vs_random_weights": 0.1, "accuracy": 0.80,
        "pruned_accuracy": 0.799, "speedup": 1.5}


def metrics(values: dict | None = None, noise: float = 0.001, seeds: int = 3, size: str = "full") -> dict:
    values = {**GOOD, **(values or {})}
    runs = [{"seed": s, **{k: v + noise * (s - 1) * (k != "gap") for k, v in values.items()}, "steps": 32,
             "ig_vs_rollout": 0.5, "importance_rank_corr": 0.9, "predicted_loss_change": 0.01,
             "actual_loss_change": 0.02} for s in range(seeds)]
    return {"question": 34, "size": size, "seeds": seeds, "results": {"runs": runs}}


def test_confirmed_when_every_claim_holds():
    label, reason = q34.verdict(metrics())
    assert label == "confirmed" and "rank correlation 0.800 ± 0.001" in reason


def test_depends_when_attention_disagrees_with_ig():
    label, reason = q34.verdict(metrics({"ig_vs_attention": 0.05}))
    assert label == "depends" and "attention agrees with IG: fails" in reason


def test_ig_is_not_faithful_if_incomplete_or_blind_to_the_weights():
    assert "IG is faithful: fails" in q34.verdict(metrics({"gap": 0.2}))[1]
    assert "IG is faithful: fails" in q34.verdict(metrics({"ig_vs_random_weights": 0.9}))[1]


def test_refuted_when_nothing_holds():
    bad = {"ig_vs_attention": 0.0, "gap": 0.5, "pruned_accuracy": 0.6, "speedup": 0.9}
    assert q34.verdict(metrics(bad))[0] == "refuted"


def test_noise_makes_it_inconclusive_and_smoke_says_so():
    noisy = {"ig_vs_attention": 0.5, "ig_vs_random_weights": 0.5, "pruned_accuracy": 0.79, "speedup": 1.1}
    assert q34.verdict(metrics(noisy, noise=0.3))[0] == "inconclusive"
    assert q34.verdict(metrics(size="smoke"))[1].startswith("smoke size")
    assert q34.verdict(metrics(seeds=2))[0] == "inconclusive"
