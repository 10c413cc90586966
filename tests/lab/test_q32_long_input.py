"""Question 32's verdict follows the numbers; the XL training data really continues row by row."""

from __future__ import annotations

import torch

from qkv.lab import q32_long_input as q32

BASE = {"chunks": 2.0, "strided": 1.9, "long_4x": 2.0, "long_16x": 2.0, "window": 1.9, "memory": 1.85}


def metrics(changes: dict | None = None, noise: float = 0.002, seeds: int = 3, size: str = "full") -> dict:
    """``changes[(model, method)]`` shifts that loss; every loss gets a small per-seed wobble."""
    changes = changes or {}
    runs = []
    for seed in range(seeds):
        wobble = noise * (seed - (seeds - 1) / 2)
        for model in q32.MODELS:
            ev = {m: {"loss": v + changes.get((model, m), 0.0) + wobble * (1 + i % 2), "us_per_char": 3.0,
                      "chars": 1000, "mean_context": 10.0} for i, (m, v) in enumerate(BASE.items())}
            runs.append({"model": model, "seed": seed, "eval": ev})
    return {"question": 32, "size": size, "seeds": seeds, "results": {"runs": runs}}


POPULAR = {("rope", "long_16x"): 0.5, ("rope_xl", "memory"): -0.2, ("rope_xl", "window"): 0.1}


def test_confirmed_when_every_popular_claim_holds():
    label, reason = q32.verdict(metrics(POPULAR))
    assert label == "confirmed", reason
    assert "RoPE gets worse at 16×: holds (+0.500" in reason


def test_depends_when_alibi_also_gets_worse():
    label, reason = q32.verdict(metrics({**POPULAR, ("alibi", "long_16x"): 0.3}))
    assert label == "depends" and "ALiBi gets worse at 16×: holds (+0.300" in reason


def test_refuted_when_no_claim_holds():
    equal = {(model, method): 2.0 - v for model in q32.MODELS for method, v in BASE.items()}  # all at 2.0
    label, reason = q32.verdict(metrics({**equal, ("alibi", "long_16x"): 2.3 - BASE["long_16x"]}))
    assert label == "refuted", reason  # alibi worse, everything else equal: no claim as popularly stated
    assert "ALiBi gets worse at 16×: holds (+0.300" in reason
    assert "chunks overstate the loss (vs strided): fails" in reason


def test_noise_larger_than_the_effects_is_inconclusive():
    noisy = metrics({("alibi", "long_16x"): 0.05}, noise=0.3)
    label, reason = q32.verdict(noisy)
    assert label == "inconclusive" and "no claim decided" in reason


def test_smoke_and_too_few_seeds_are_inconclusive():
    assert q32.verdict(metrics(POPULAR, seeds=2))[0] == "inconclusive"
    assert "qkv ask 32 --size full" in q32.verdict(metrics(POPULAR, size="smoke"))[1]


def test_xl_segments_continue_each_lane_and_restart_with_a_fresh_memory():
    s = {"context": 4, "batch": 2}
    stream = torch.arange(42)
    segs = q32.segment_batches(stream, s, steps=6)
    (ids0, labels0, fresh0), (ids1, _, fresh1) = segs[0], segs[1]
    assert fresh0 and not fresh1
    assert ids0[0].tolist() == [0, 1, 2, 3] and ids1[0].tolist() == [4, 5, 6, 7]  # row 0 continues itself
    assert ids0[1, 0] == 21 and labels0[0].tolist() == [1, 2, 3, 4]
    assert [f for _, _, f in segs] == [True, False, False, False, False, True]  # 20 per lane: 5 segments
