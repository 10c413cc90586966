"""Each verdict follows the numbers: synthetic metrics for every outcome, and the flip between them."""

from __future__ import annotations

import copy

import pytest

from qkv.lab import q04_scaling as q04
from qkv.lab import q05_padding as q05
from qkv.lab import q22_worked_example as q22


def record(number: int, results: dict, seeds: int = 5, size: str = "full") -> dict:
    return {"question": number, "size": size, "seeds": seeds, "results": results}


@pytest.mark.parametrize("module", [q04, q05, q22])
def test_smoke_size_is_always_inconclusive(module):
    metrics = {4: q04_metrics(), 5: q05_metrics(), 22: q22_metrics()}[module.NUMBER]
    metrics["size"] = "smoke"
    label, reason = module.verdict(metrics)
    assert label == "inconclusive" and reason.startswith("smoke size")
    assert f"qkv ask {module.NUMBER} --size full" in reason


# -- question 22 ---------------------------------------------------------------------------------


def q22_metrics(worst: float = 3e-7) -> dict:
    checks = [{"seed": s, **{name: 1e-7 for name in q22.CHECKS}} for s in range(3)]
    checks[2]["torch_sdpa"] = worst
    return record(22, {"checks": checks})


def test_q22_confirmed_when_every_path_matches_and_refuted_when_one_does_not():
    label, reason = q22.verdict(q22_metrics(3e-7))
    assert label == "confirmed" and "3.00e-07" in reason
    label, reason = q22.verdict(q22_metrics(2 * q22.TOLERANCE))
    assert label == "refuted" and "torch_sdpa" in reason and "2.00e-06" in reason


# -- question 5 ----------------------------------------------------------------------------------


def q05_case(family="encoder", path="fused", identical=True, masked=0.0, unmasked=0.02, needed=True):
    return {"family": family, "position": "rope", "path": path, "seed": 0, "bit_identical": identical,
            "max_diff_masked": masked, "max_diff_unmasked": unmasked, "mask_needed": needed}


def q05_metrics(*extra) -> dict:
    cases = [q05_case(), q05_case("seq2seq", "kv_cache_fused"), q05_case("lm", "fused", unmasked=0.0, needed=False)]
    return record(5, {"cases": cases + list(extra)})


def test_q05_outcomes_follow_the_numbers():
    assert q05.verdict(q05_metrics())[0] == "confirmed"
    label, reason = q05.verdict(q05_metrics(q05_case(identical=False, masked=2e-7)))
    assert label == "depends" and "3 of 4" in reason
    label, reason = q05.verdict(q05_metrics(q05_case("lm", "kv_cache_reference", identical=False, masked=1e-3)))
    assert label == "refuted" and "lm/rope/kv_cache_reference" in reason
    label, reason = q05.verdict(q05_metrics(q05_case(unmasked=1e-6)))
    assert label == "refuted" and "did not leak" in reason


def test_q05_causal_full_pass_without_a_leak_does_not_count_against_the_claim():
    # The LM case in q05_metrics has unmasked difference 0, but pads cannot reach it (causal).
    metrics = q05_metrics()
    assert q05.verdict(metrics)[0] == "confirmed"
    metrics["results"]["cases"][2]["mask_needed"] = True  # if pads could reach it, no leak refutes
    assert q05.verdict(metrics)[0] == "refuted"


# -- question 4 ----------------------------------------------------------------------------------


def q04_metrics(gap64: float = 0.5, gap128: float = 0.8, noise: float = 0.01, top_max_prob: float = 0.99,
                seeds: int = 5) -> dict:
    unit = [{"d_k": d, "seed": s, "var_qk": float(d),
             "none": {"max_prob": top_max_prob if d == 512 else 0.5, "jacobian_norm": 0.01},
             "sqrt_dk": {"max_prob": 0.15, "jacobian_norm": 0.2}} for s in range(seeds) for d in (16, 512)]
    training = []
    for s in range(seeds):
        jitter = noise * (s - (seeds - 1) / 2)  # zero mean: the gap is exactly `gap`
        for d, gap in ((64, gap64), (128, gap128)):
            training.append({"d_head": d, "scale": "sqrt_dk", "seed": s, "final_loss": 0.3})
            training.append({"d_head": d, "scale": "none", "seed": s, "final_loss": 0.3 + gap + jitter})
    return record(4, {"unit_variance": unit, "trained_qk": [], "training": training}, seeds=seeds)


def test_q04_confirmed_when_saturated_and_hurt_at_every_width():
    label, reason = q04.verdict(q04_metrics())
    assert label == "confirmed"
    assert "0.990 without the scale" in reason and "d_head 128: loss without − with scale = +0.800" in reason


def test_q04_refuted_when_training_is_not_hurt_beyond_noise():
    label, reason = q04.verdict(q04_metrics(gap64=0.0, gap128=0.0))
    assert label == "refuted" and "not hurt" in reason
    # a gap as large as the seed noise is not an effect either
    assert q04.verdict(q04_metrics(gap64=0.06, gap128=0.06, noise=0.06))[0] == "refuted"


def test_q04_refuted_when_nothing_saturates():
    label, reason = q04.verdict(q04_metrics(top_max_prob=0.5))
    assert label == "refuted" and "no saturation" in reason


def test_q04_depends_when_only_one_width_is_hurt():
    label, reason = q04.verdict(q04_metrics(gap64=0.0))
    assert label == "depends" and "d_head 128 only" in reason


def test_q04_inconclusive_with_too_few_seeds():
    assert q04.verdict(q04_metrics(seeds=2))[0] == "inconclusive"


def test_q04_verdict_flips_when_the_numbers_do():
    metrics = q04_metrics()
    assert q04.verdict(metrics)[0] == "confirmed"
    flipped = copy.deepcopy(metrics)
    for r in flipped["results"]["training"]:
        if r["scale"] == "none":
            r["final_loss"] = 0.3
    assert q04.verdict(flipped)[0] == "refuted"
