"""Question 25's verdict follows the numbers: synthetic metrics for every outcome, and the flips."""

from __future__ import annotations

import copy

import torch

from qkv.lab import probe
from qkv.lab import q11_residual as q11
from qkv.lab import q25_norm_residual as q25
from qkv.nn.block import Residual

VARIANTS = q25.VARIANTS


def profile(growth: float, input_cos: float) -> dict:
    return {"rms": [1.0, growth], "update_ratio": [0.5, 0.7, 0.9], "input_cos": [0.9, input_cos],
            "token_similarity": 0.5}


def cells(seeds: int = 5, growth=None, cos=None, noise: float = 0.02) -> list[dict]:
    """Growth per (norm, placement) with residual (no norm grows 50×); input cosine per residual setting."""
    growth = {("layer", "post"): 1.2, ("layer", "pre"): 1.5, ("rms", "post"): 1.2, ("rms", "pre"): 1.5,
              ("none", "pre"): 50.0, **(growth or {})}
    cos = {True: 0.6, False: 0.05, **(cos or {})}
    out = []
    for s in range(seeds):
        jitter = noise * (s - (seeds - 1) / 2)  # zero mean: the means are exactly the values above
        for norm, placement, residual in VARIANTS:
            g = growth[(norm, placement)] * (1 + jitter) if residual else 1.1
            kept = cos[residual] + (jitter if residual else 0.0)
            out.append({"norm": norm, "placement": placement, "residual": residual, "seed": s,
                        "init": profile(g, kept), "trained": profile(g, kept),
                        "loss": 1.0, "accuracy": 0.5, "curve": []})
    return out


def metrics(seeds: int = 5, size: str = "full", **changes) -> dict:
    return {"question": 25, "size": size, "seeds": seeds, "results": {"cells": cells(seeds, **changes)}}


def test_confirmed_when_every_norm_keeps_the_scale_and_the_residual_keeps_the_input():
    label, reason = q25.verdict(metrics())
    assert label == "confirmed"
    assert "pre-LN 1.50× → 1.50×" in reason and "no norm 50× → 50×" in reason
    assert "pre-RMSNorm 0.60 vs 0.05 (0.60 vs 0.05)" in reason
    assert "median update/stream RMS, trained: post-LN 0.70" in reason


def test_depends_when_the_pre_ln_stream_grows():
    label, reason = q25.verdict(metrics(growth={("layer", "pre"): 4.0, ("rms", "pre"): 3.5}))
    assert label == "depends"
    assert "within 2× (and the norm is why) in post-LN, post-RMSNorm;" in reason
    assert "pre-LN 4.00× → 4.00×" in reason


def test_depends_when_the_norm_is_not_what_keeps_the_scale():
    # no norm stays as flat as the normed stacks: the norm gets no credit for the stable scale
    label, reason = q25.verdict(metrics(growth={("none", "pre"): 1.3}))
    assert label == "depends" and "(and the norm is why) in no wiring" in reason and "no norm 1.3× → 1.3×" in reason


def test_refuted_when_no_norm_keeps_the_scale_and_the_residual_keeps_nothing():
    grown = {(n, p): 4.0 for n in ("layer", "rms") for p in ("post", "pre")}
    label, reason = q25.verdict(metrics(growth=grown, cos={True: 0.1, False: 0.05}))
    assert label == "refuted" and "post-LN 4.00× → 4.00×" in reason and "post-LN 0.10 vs 0.05" in reason
    # a cosine gap within the seed noise keeps nothing either
    assert q25.verdict(metrics(growth=grown, cos={True: 0.3, False: 0.05}, noise=0.3))[0] == "refuted"


def test_inconclusive_with_too_few_seeds_or_at_smoke_size():
    assert q25.verdict(metrics(seeds=2))[0] == "inconclusive"
    label, reason = q25.verdict(metrics(size="smoke"))
    assert label == "inconclusive" and reason.startswith("smoke size") and "qkv ask 25 --size full" in reason


def test_verdict_flips_when_the_numbers_do():
    m = metrics()
    assert q25.verdict(m)[0] == "confirmed"
    flipped = copy.deepcopy(m)
    for c in flipped["results"]["cells"]:
        if c["residual"] and c["placement"] == "post":
            c["trained"]["input_cos"][-1] = 0.05  # post-norm stacks lose the input once trained
    label, reason = q25.verdict(flipped)
    assert label == "depends" and "keeps the input (cosine gap ≥ 0.2 beyond noise) in pre-LN, pre-RMSNorm:" in reason


def test_a_diverged_run_counts_as_unbounded_growth():
    m = metrics()
    for c in m["results"]["cells"]:
        if c["norm"] == "none":
            c["trained"], c["loss"] = None, None
    assert q25.growth(None) == float("inf")
    assert q25.verdict(m)[0] == "confirmed"  # no norm diverging is the unbounded growth the norms prevent
    assert "no norm 50× → inf×" in q25.verdict(m)[1]


def test_no_norm_variant_has_no_norm_and_stream_profile_shapes():
    model = q25.build_variant(3, "none", "pre", True, 0)
    assert all(isinstance(w.norm, q25.NoNorm) for w in model.modules() if isinstance(w, Residual))
    assert model.decoder.final_norm is None
    p = q25.stream_profile(model, q11.fixed_batch())
    assert len(p["rms"]) == 4 and len(p["update_ratio"]) == 6 and len(p["input_cos"]) == 3
    post = q25.stream_profile(q25.build_variant(3, "layer", "post", True, 0), q11.fixed_batch())
    assert all(abs(r - 1.0) < 0.01 for r in post["rms"][1:])  # post-LN hands on unit-RMS states


def test_train_model_matches_probe_train_copy():
    cfg = q11.model_config(2, "pre", True)
    ours, curve = q25.train_model(q11.fresh_model(cfg, 3), 3, 4)
    reference, reference_curve = probe.train_copy(cfg, steps=4, seed=3, n=q11.TASK["n"], symbols=q11.TASK["symbols"],
                                                   batch=q11.TASK["batch"], lr=q11.TASK["lr"])
    assert curve == reference_curve
    assert all(torch.equal(a, b) for a, b in zip(ours.parameters(), reference.parameters()))
