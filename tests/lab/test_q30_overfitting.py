"""Question 30's verdict follows the numbers: every outcome, and the flips between them."""

from __future__ import annotations

from qkv.lab import q30_overfitting as q30


def metrics(base_gap=0.5, reduction=None, noise=0.01, seeds=3, size="full") -> dict:
    """Train loss 1.0 everywhere; gap(setting) = base_gap − reduction[setting] ± noise."""
    reduction = {"dropout": 0.2, "weight_decay": 0.1, "label_smoothing": 0.1, "early_stopping": 0.3,
                 "augmentation": 0.15, "all": 0.4, **(reduction or {})}
    runs = []
    for s in range(seeds):
        wobble = noise * (s - (seeds - 1) / 2)
        for setting in q30.SETTINGS:
            gap = base_gap + (0.0 if setting == "none" else -reduction[setting] + wobble)
            runs.append({"setting": setting, "seed": s, "train_loss": 1.0, "val_loss": 1.0 + gap, "gap": gap,
                         "stopped_step": 400, "curve": []})
    return {"question": 30, "size": size, "seeds": seeds, "results": {"runs": runs}}


def test_confirmed_when_every_technique_shrinks_the_gap():
    label, reason = q30.verdict(metrics())
    assert label == "confirmed"
    assert "val − train = 0.500" in reason and "dropout gap -0.200" in reason


def test_depends_when_only_some_techniques_help():
    label, reason = q30.verdict(metrics(reduction={"weight_decay": 0.0, "label_smoothing": 0.01}))
    assert label == "depends" and "only dropout, early_stopping, augmentation" in reason


def test_refuted_when_no_technique_helps():
    none = {k: 0.0 for k in (*q30.TECHNIQUES, "all")}
    assert q30.verdict(metrics(reduction=none))[0] == "refuted"


def test_inconclusive_when_the_baseline_does_not_overfit():
    label, reason = q30.verdict(metrics(base_gap=0.05))
    assert label == "inconclusive" and "does not overfit" in reason


def test_noise_larger_than_the_effect_flips_the_verdict():
    small = {k: 0.05 for k in (*q30.TECHNIQUES, "all")}
    assert q30.verdict(metrics(reduction=small, noise=0.001))[0] == "confirmed"
    assert q30.verdict(metrics(reduction=small, noise=0.2))[0] == "refuted"


def test_too_few_seeds_and_smoke_size_are_inconclusive():
    assert q30.verdict(metrics(seeds=2))[0] == "inconclusive"
    label, reason = q30.verdict(metrics(size="smoke"))
    assert label == "inconclusive" and "qkv ask 30 --size full" in reason


def test_every_setting_switches_on_exactly_its_own_technique():
    s = q30.SIZES["smoke"]
    assert q30.model_config(s, "none").dropout_residual == 0.0
    assert q30.model_config(s, "dropout").dropout_residual == q30.DROPOUT
    assert q30.model_config(s, "all").dropout_embed == q30.DROPOUT
    assert q30.train_config(s, "weight_decay", 0).weight_decay == q30.WEIGHT_DECAY
    assert q30.train_config(s, "dropout", 0).weight_decay == 0.0
    assert q30.train_config(s, "label_smoothing", 0).label_smoothing == q30.LABEL_SMOOTHING
    assert q30.train_config(s, "all", 0).label_smoothing == q30.LABEL_SMOOTHING
    assert q30.train_config(s, "augmentation", 0).label_smoothing == 0.0
