"""Question 24's verdict follows the numbers; its measures are right on hand-made cases."""

from __future__ import annotations

import math

import torch

from qkv.lab import q24_head_subspaces as q24


def side(div: float, prev: float, overlap: float) -> dict:
    layer = {"entropy": [1.0, 2.0], "distance": [1.0, 5.0], "previous": [prev, 0.1], "first": [0.1, 0.2]}
    return {"layers": [layer], "diversity": [div], "overlap": {"q_proj": overlap, "v_proj": overlap}}


def metrics(trained=(0.4, 0.8, 0.25), initial=(0.05, 0.1, 0.25), noise=0.005, seeds=3, size="full") -> dict:
    runs = [{"seed": s, "trained": side(trained[0] + noise * (s - 1), trained[1], trained[2] + noise * (s - 1)),
             "initial": side(*initial), "lm_val_loss": 1.5} for s in range(seeds)]
    return {"question": 24, "size": size, "seeds": seeds, "results": {"runs": runs, "random_overlap": 0.25}}


def test_confirmed_when_heads_diverge_specialise_and_keep_their_own_subspaces():
    label, reason = q24.verdict(metrics())
    assert label == "confirmed", reason


def test_depends_when_heads_share_subspaces():
    label, reason = q24.verdict(metrics(trained=(0.4, 0.8, 0.6)))
    assert label == "depends" and "heads use their own subspaces: fails" in reason


def test_refuted_when_training_changes_nothing():
    assert q24.verdict(metrics(trained=(0.05, 0.1, 0.6)))[0] == "refuted"


def test_smoke_and_few_seeds_are_inconclusive():
    assert q24.verdict(metrics(size="smoke"))[0] == "inconclusive"
    assert q24.verdict(metrics(seeds=1))[0] == "inconclusive"


def test_subspace_overlap_of_equal_orthogonal_and_random_subspaces():
    eye = torch.eye(8)
    assert math.isclose(q24.subspace_overlap(eye[:2], eye[:2] * 3), 1.0, abs_tol=1e-6)
    assert math.isclose(q24.subspace_overlap(eye[:2], eye[2:4]), 0.0, abs_tol=1e-6)
    g = torch.Generator().manual_seed(0)
    random = [q24.subspace_overlap(torch.randn(4, 64, generator=g), torch.randn(4, 64, generator=g)) for _ in range(50)]
    assert abs(sum(random) / 50 - 4 / 64) < 0.02  # expected k/d for independent subspaces


def test_head_stats_read_a_previous_token_head():
    T = 6
    w = torch.zeros(1, 1, T, T)
    w[0, 0, 0, 0] = 1.0
    for i in range(1, T):
        w[0, 0, i, i - 1] = 1.0
    stats = q24.head_stats(w)
    assert stats["previous"] == [1.0] and math.isclose(stats["distance"][0], 5 / 6, rel_tol=1e-6) and stats["entropy"][0] == 0.0
    assert float(q24.js_divergence(w[0, 0, 1], w[0, 0, 1])) == 0.0
