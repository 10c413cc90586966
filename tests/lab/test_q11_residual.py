"""Question 11's verdict follows the numbers: synthetic metrics for every outcome, and the flips."""

from __future__ import annotations

import copy

from qkv.lab import q11_residual as q11

WIRINGS = q11.WIRINGS
# first/last-layer gradient ratios: Xiong's pattern at init, a healthy profile after training
INIT = {("post", True): 0.3, ("pre", True): 1.2, ("post", False): 0.01, ("pre", False): 0.02}
TRAINED = {("post", True): 0.5, ("pre", True): 1.5, ("post", False): 1e-8, ("pre", False): 1e-9}
LOSS = {("post", True): 0.8, ("pre", True): 0.7, ("post", False): q11.CHANCE, ("pre", False): q11.CHANCE}


def cells(seeds: int = 5, depth: int = 24, loss=None, init=None, trained=None, noise: float = 0.02) -> list[dict]:
    loss, init, trained = {**LOSS, **(loss or {})}, {**INIT, **(init or {})}, {**TRAINED, **(trained or {})}
    out = []
    for s in range(seeds):
        jitter = noise * (s - (seeds - 1) / 2)  # zero mean: the means are exactly the values above
        for wiring in WIRINGS:
            out.append({"depth": depth, "placement": wiring[0], "residual": wiring[1], "seed": s,
                        "grads_init": [init[wiring] * (1 + jitter), 1.0],
                        "grads_default_init": [0.9, 1.0], "grads_trained": [trained[wiring], 1.0],
                        "token_similarity_init": 0.7 if wiring[1] else 0.99,
                        "loss": loss[wiring] + (jitter if wiring[1] else 0.0), "accuracy": 0.5, "curve": []})
    return out


def metrics(seeds: int = 5, size: str = "full", **changes) -> dict:
    return {"question": 11, "size": size, "seeds": seeds, "results": {"cells": cells(seeds, **changes)}}


def test_confirmed_when_residual_is_needed_gradients_vanish_without_it_and_xiong_holds():
    label, reason = q11.verdict(metrics())
    assert label == "confirmed"
    assert "needed to train in post-LN and pre-LN" in reason and "0.80 with residual vs 2.08 without" in reason
    assert "0.3 (shrinks below 0.5)" in reason and "max/min spread 1.20" in reason


def test_refuted_when_removing_the_residual_does_not_raise_the_loss():
    label, reason = q11.verdict(metrics(loss={("post", False): 0.8, ("pre", False): 0.7}))
    assert label == "refuted" and "does not raise the loss" in reason and "+0.00 ± 0.03" in reason
    # a gap no larger than the seed noise is no effect either
    noisy = metrics(loss={("post", False): 0.85, ("pre", False): 0.75}, noise=0.1)
    assert q11.verdict(noisy)[0] == "refuted"


def test_depends_when_post_ln_fails_with_the_residual_too():
    label, reason = q11.verdict(metrics(loss={("post", True): q11.CHANCE}, trained={("post", True): 1e-6}))
    assert label == "depends"
    assert "needed to train in pre-LN (" in reason and "2.08 with residual vs 2.08 without" in reason
    assert "not with it in pre-LN (1e-06 post-LN" in reason


def test_depends_when_gradients_do_not_vanish_at_init_without_the_residual():
    label, reason = q11.verdict(metrics(init={("post", False): 0.2, ("pre", False): 0.5}))
    assert label == "depends"
    assert "Holds in part or not at all: at init the first-layer gradient vanishes" in reason
    assert "in neither placement (0.3 post-LN and 1.2 pre-LN with residual, 0.2 and 0.5 without)" in reason
    assert "token cosine at the top at init 0.70 with residual, 0.99 without" in reason


def test_depends_when_pre_ln_gradients_are_not_even():
    label, reason = q11.verdict(metrics(init={("pre", True): 2.5}))
    assert label == "depends" and "max/min spread 2.50 (even within 2×" in reason.split("Holds in part")[1]


def test_inconclusive_with_too_few_seeds_or_at_smoke_size():
    assert q11.verdict(metrics(seeds=2))[0] == "inconclusive"
    label, reason = q11.verdict(metrics(size="smoke"))
    assert label == "inconclusive" and reason.startswith("smoke size") and "qkv ask 11 --size full" in reason


def test_verdict_flips_when_the_numbers_do():
    m = metrics()
    assert q11.verdict(m)[0] == "confirmed"
    flipped = copy.deepcopy(m)
    for c in flipped["results"]["cells"]:
        if not c["residual"]:
            c["loss"] = LOSS[(c["placement"], True)] + 0.01
    assert q11.verdict(flipped)[0] == "refuted"
    flipped = copy.deepcopy(m)
    for c in flipped["results"]["cells"]:
        if (c["placement"], c["residual"]) == ("post", True):
            c["grads_init"] = [1.0, 1.0]  # post-LN no longer shrinks toward the input
    assert q11.verdict(flipped)[0] == "depends"


def test_a_diverged_run_counts_at_the_chance_loss():
    m = metrics()
    for c in m["results"]["cells"]:
        if not c["residual"]:
            c["loss"], c["accuracy"], c["grads_trained"] = None, None, None
    assert q11.loss_or_chance(m["results"]["cells"][2]) == q11.CHANCE
    label, reason = q11.verdict(m)
    assert label == "depends" and "2.08 without" in reason  # trained gradients of no-residual runs are missing
    assert q11.tables(m)[0][1][2][-1] == "diverged"


def test_gradient_norms_and_token_similarity_on_a_small_model():
    cfg = q11.model_config(2, "pre", True)
    model, batch = q11.fresh_model(cfg, 0), q11.fixed_batch()
    norms = q11.layer_grad_norms(model, batch)
    assert len(norms) == 2 and all(n > 0 for n in norms)
    assert all(p.grad is None for p in model.parameters())  # measuring leaves no gradient behind
    states = q11.hidden_states(model, batch)
    assert len(states) == 3 and states[0].shape == (64, 2 * q11.TASK["n"], q11.TASK["d_model"])
    same = states[0][:, :1].expand_as(states[0])  # every position the same vector
    assert abs(q11.token_similarity(same) - 1.0) < 1e-5
