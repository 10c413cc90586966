"""Question 14's verdict follows its numbers; equal parameters and the dead-unit count are real."""

from __future__ import annotations

import copy

import pytest
import torch

from qkv.lab import q14_activation as q14
from qkv.models import build_model
from qkv.models.common import n_params

LRS = (3e-3, 1e-2)


def metrics(gains: dict | None = None, dead: dict | None = None, noise: float = 0.002, seeds: int = 5,
            params: dict | None = None, lrs=LRS) -> dict:
    """Runs where each variant's loss is ReLU's minus ``gains[act]`` (± zero-mean seed jitter of
    size ``noise``) and a fraction ``dead[lr]`` (± 0.2% jitter) of ReLU units never fires."""
    gains = gains if gains is not None else {act: 0.05 for act in q14.ACTIVATIONS[1:]}
    dead = dead if dead is not None else {lr: 0.2 for lr in lrs}
    params = params or {}
    runs = []
    for s in range(seeds):
        jitter, dead_jitter = noise * (s - (seeds - 1) / 2), 0.002 * (s - (seeds - 1) / 2)
        for lr in lrs:
            for act in q14.ACTIVATIONS:
                relu = act == "relu"
                runs.append({"activation": act, "lr": lr, "seed": s, "params": params.get(act, 100_000),
                             "d_ff": 256, "final_loss": 2.5 + s * 0.01 - (0.0 if relu else gains[act] + jitter),
                             "never_positive_mean": dead[lr] + dead_jitter if relu else 0.0,
                             "init_never_positive_mean": 0.0, "init_ffn_gain": 0.01, "ffn_gain": 0.5,
                             "step_time_s": 0.02 if relu else 0.025})
    return {"question": 14, "size": "full", "seeds": seeds, "results": {"runs": runs}}


def test_confirmed_when_every_variant_gains_and_relu_units_die():
    label, reason = q14.verdict(metrics())
    assert label == "confirmed" and reason.startswith("every variant beats ReLU")
    assert "gelu +0.050" in reason and "20.0% ± 0.3% at lr 0.01" in reason and "×1.25" in reason


def test_refuted_when_no_variant_gains_and_no_unit_dies():
    label, reason = q14.verdict(metrics(gains={act: -0.02 for act in q14.ACTIVATIONS[1:]},
                                        dead={lr: 0.0 for lr in LRS}))
    assert label == "refuted" and "gelu -0.020" in reason and "0.0% ± 0.3% at lr 0.003" in reason


def test_inconclusive_when_the_gain_is_within_seed_noise():
    label, reason = q14.verdict(metrics(gains={act: 0.01 for act in q14.ACTIVATIONS[1:]}, noise=0.02,
                                        dead={lr: 0.0 for lr in LRS}))
    assert label == "inconclusive" and reason.startswith("whether the variants beat ReLU is within seed noise")
    assert "fewer than 5% of ReLU units die at any lr" in reason


def test_depends_when_only_glu_variants_gain_and_units_die_at_the_high_lr_only():
    gains = {"gelu": 0.0, "silu": 0.0, "swiglu": 0.05, "geglu": 0.05}
    label, reason = q14.verdict(metrics(gains=gains, dead={3e-3: 0.0, 1e-2: 0.2}))
    assert label == "depends"
    assert "swiglu at lr 0.003, geglu at lr 0.003, swiglu at lr 0.01, geglu at lr 0.01" in reason
    assert "more than 5% of ReLU units die only at lr 0.01 (" in reason


def test_inconclusive_with_too_few_seeds_or_unequal_parameters_or_at_smoke_size():
    assert q14.verdict(metrics(seeds=2))[0] == "inconclusive"
    label, reason = q14.verdict(metrics(params={"swiglu": 101_000}))
    assert label == "inconclusive" and "swiglu 101,000" in reason
    smoke = metrics()
    smoke["size"] = "smoke"
    assert q14.verdict(smoke)[1].startswith("smoke size")


def test_verdict_flips_when_the_numbers_do():
    good = metrics()
    assert q14.verdict(good)[0] == "confirmed"
    flipped = copy.deepcopy(good)
    for r in flipped["results"]["runs"]:
        r["never_positive_mean"] = 0.0
        r["final_loss"] = 2.5 + r["seed"] * 0.01
    assert q14.verdict(flipped)[0] == "refuted"


def test_a_variant_worse_than_relu_beyond_noise_is_named_as_such():
    gains = {act: 0.0 for act in q14.ACTIVATIONS[1:]} | {"swiglu": -0.3}
    label, reason = q14.verdict(metrics(gains=gains, dead={lr: 0.0 for lr in LRS}))
    assert label == "refuted"
    assert "ReLU is better beyond 2 sd of seed noise than swiglu at lr 0.003, swiglu at lr 0.01" in reason
    assert "within seed noise" not in reason.split("(")[0]


@pytest.mark.parametrize("outcomes, expected", [
    (["gain", "gain"], "holds"), (["none", "none"], "fails"), (["none", "unclear"], "unclear"),
    (["gain", "unclear"], "partial"), (["gain", "none"], "partial"), (["worse", "none"], "fails"),
    (["worse", "unclear"], "fails"), (["gain", "worse"], "partial"),
])
def test_claim_outcome(outcomes, expected):
    assert q14.claim_outcome(outcomes, "gain") == expected


def test_tables_have_a_row_per_lr_and_activation():
    columns, rows = q14.tables(metrics())[0]
    assert columns[5] == "ReLU − this (paired)"
    assert len(rows) == len(LRS) * len(q14.ACTIVATIONS) and rows[1][5].startswith("+0.050")


# -- the measurements themselves --------------------------------------------------------------


def test_gated_ffns_have_the_mlp_parameter_count():
    counts = {act: n_params(build_model(q14.model_config(act, vocab=69))) for act in q14.ACTIVATIONS}
    assert q14.d_ff_for("swiglu") == round(2 * q14.TASK["d_ff"] / 3) < q14.TASK["d_ff"]
    assert all(abs(c - counts["relu"]) <= q14.PARAM_TOLERANCE * counts["relu"] for c in counts.values())


def test_held_out_counts_units_that_are_never_positive():
    torch.manual_seed(0)
    model = build_model(q14.model_config("relu", vocab=69))
    d_ff = q14.TASK["d_ff"]
    with torch.no_grad():
        model.decoder.layers[0].ffn.up.weight[: d_ff // 4] = 0.0  # no bias: these units output exactly 0
    val = torch.randint(q14.FIRST_CHAR, 69, (q14.TASK["context"] * 8 + 1,))
    out = q14.held_out(model, val)
    assert out["never_positive"][0] == pytest.approx(0.25, abs=0.01) and out["never_positive"][1] < 0.01
    assert out["loss"] > 0
