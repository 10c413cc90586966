"""Question 27's verdict follows the numbers: every outcome, and the flips between them."""

from __future__ import annotations

import torch

from qkv.lab import q27_training_tricks as q27


def metrics(gains=None, noise=0.1, fp32_slow=1.8, fp32_gain=0.0, seeds=3, size="full", bf16=True) -> dict:
    gains = {t: 1.0 for t in q27.TRICKS} if gains is None else gains
    rows = []
    for s in range(seeds):
        wobble = noise * (s - (seeds - 1) / 2)
        rows.append({"cell": "full", "seed": s, "bleu": 10.0, "val_loss": 3.0, "train_s": 10.0})
        for trick in q27.TRICKS:
            rows.append({"cell": trick, "seed": s, "bleu": 10.0 - gains.get(trick, 0.0) + wobble, "val_loss": 3.0,
                         "train_s": 10.0})
        if bf16:
            rows.append({"cell": "fp32", "seed": s, "bleu": 10.0 + fp32_gain + wobble, "val_loss": 3.0,
                         "train_s": 10.0 * fp32_slow})
    return {"question": 27, "size": size, "seeds": seeds,
            "results": {"cells": rows, "bf16_native": bf16, "bf16_note": "measured"}}


def test_confirmed_when_every_trick_helps_and_bf16_is_faster():
    label, reason = q27.verdict(metrics())
    assert label == "confirmed" and "no_warmup: full − removed +1.00 ± 0.10 BLEU" in reason and "1.80×" in reason


def test_refuted_when_nothing_helps():
    label, reason = q27.verdict(metrics(gains={}, fp32_slow=1.0))
    assert label == "refuted" and "no trick helps" in reason


def test_depends_names_what_helps_and_what_hurts():
    gains = {"no_warmup": 1.0, "no_averaging": -1.0}
    label, reason = q27.verdict(metrics(gains=gains))
    assert label == "depends"
    assert "helps beyond seed noise: no_warmup, bf16 (speed)" in reason and "hurts: no_averaging" in reason


def test_bf16_costing_quality_is_not_a_free_gain():
    assert q27.verdict(metrics())[0] == "confirmed"
    assert q27.verdict(metrics(fp32_gain=2.0))[0] == "depends"


def test_without_native_bf16_the_row_is_skipped_not_failed():
    assert q27.verdict(metrics(bf16=False))[0] == "confirmed"
    assert q27.bf16_effect(metrics(bf16=False)) is None


def test_seed_noise_flips_the_verdict():
    assert q27.verdict(metrics(noise=0.1))[0] == "confirmed"
    assert q27.verdict(metrics(gains={t: 0.5 for t in q27.TRICKS}, noise=2.0, fp32_slow=1.0))[0] == "refuted"


def test_too_few_seeds_and_smoke_are_inconclusive():
    assert q27.verdict(metrics(seeds=2))[0] == "inconclusive"
    assert q27.verdict(metrics(size="smoke"))[0] == "inconclusive"


def test_no_warmup_schedule_starts_at_the_peak_and_keeps_noams_decay():
    class Holder:
        optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)

    holder = Holder()
    q27.no_warmup_schedule(holder, warmup=4)
    rates = []
    for _ in range(16):
        rates.append(holder.optimizer.param_groups[0]["lr"])
        holder.optimizer.step()
        holder.scheduler.step()
    assert rates[:4] == [1.0] * 4  # steps 1..4: the peak, no ramp
    assert abs(rates[15] - (4 / 16) ** 0.5) < 1e-12  # step 16: Noam's sqrt(w / step)
