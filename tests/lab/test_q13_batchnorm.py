"""Question 13's verdict follows the numbers: synthetic metrics for every outcome, and the flips."""

from __future__ import annotations

import copy

from qkv.lab import q13_batchnorm as q13

SEEDS = 5
SIZES = (2, 8, 32)


def probe(other: float, padding: float, eval_shift: float) -> dict:
    return {"train": {"padding": padding, "other_lines": other, "other_lines_padded": other},
            "eval": {c: eval_shift for c in ("padding", "other_lines", "other_lines_padded")}}


def jitter(seed: int, noise: float) -> float:
    return noise * (seed - (SEEDS - 1) / 2)  # zero mean over the seeds: gaps are exact


def metrics(bn_gap=(0.3, 0.1, 0.05), train_eval=(0.1, 0.05, 0.04), naive_gap=(0.1, 0.1, 0.1), bn_shift=2.0,
            naive_pad_shift=5.0, eval_shift=1e-7, noise=0.01, seeds=SEEDS, size="full") -> dict:
    """BatchNorm − LayerNorm, eval − train-mode and counting − not counting pads, each per batch size."""
    cells = []
    for seed in range(seeds):
        for i, b in enumerate(SIZES):
            ln = 2.9 + 0.02 * seed
            bn = ln + bn_gap[i] + jitter(seed, noise)
            losses = {"layer": (ln, ln, 2e-7, 0.0), "rms": (ln, ln, 2e-7, 0.0),
                      "batch": (bn, bn - train_eval[i], bn_shift, 0.0),
                      "batch_naive": (bn + naive_gap[i], bn + naive_gap[i], bn_shift, naive_pad_shift)}
            for norm, (eval_loss, train_loss, other, padding) in losses.items():
                cells.append({"norm": norm, "batch": b, "seed": seed, "eval_loss": eval_loss,
                              "train_mode_loss": train_loss, "curve": [],
                              "probe": probe(other, padding, eval_shift if norm.startswith("batch") else 2e-7)})
    return {"question": 13, "size": size, "seeds": seeds, "results": {"norms": cells}}


def test_confirmed_when_every_part_holds():
    label, reason = q13.verdict(metrics())
    assert label == "confirmed"
    assert "by at least 2 under BatchNorm" in reason and "at most 2.0e-07 under LayerNorm" in reason
    assert "eval − train mode +0.100 ± 0.000 nats/char at batch 2" in reason
    assert "BatchNorm − LayerNorm = +0.300 ± 0.016 nats/char at batch 2" in reason
    assert "counting − not counting pads +0.100 ± 0.000 nats/char at batch 2" in reason


def test_refuted_when_no_part_holds():
    label, reason = q13.verdict(metrics(bn_gap=(0.0, 0.0, 0.0), train_eval=(0.0, 0.0, 0.0), naive_gap=(0.0, 0.0, 0.0),
                                        bn_shift=1e-6))
    assert label == "refuted" and "at least 1e-06 under BatchNorm" in reason


def test_a_train_eval_gap_at_small_batches_only_holds_in_part():
    label, reason = q13.verdict(metrics(train_eval=(0.1, 0.0, 0.0)))
    assert label == "depends" and "train/eval gap (holds in part)" in reason and "beyond noise at batch 2)" in reason


def test_a_negative_train_eval_gap_is_a_gap_too():
    label, reason = q13.verdict(metrics(train_eval=(-0.1, -0.1, -0.1)))
    assert label == "confirmed" and "-0.100 ± 0.000 nats/char at batch 32" in reason


def test_eval_mode_that_still_depends_on_the_batch_is_not_running_statistics():
    label, reason = q13.verdict(metrics(eval_shift=0.5))
    assert label == "depends" and "train/eval gap (does not hold)" in reason and "at most 5.0e-01" in reason


def test_a_gap_to_layernorm_that_does_not_grow_at_small_batches_is_no_small_batch_effect():
    label, reason = q13.verdict(metrics(bn_gap=(0.2, 0.2, 0.2)))
    assert label == "depends" and "small batches (does not hold)" in reason
    assert "the difference between the two +0.000 ± 0.000" in reason


def test_padding_effect_within_seed_noise_does_not_count():
    m = metrics(naive_gap=(0.0, 0.0, 0.0))
    label, reason = q13.verdict(m)
    assert label == "depends" and "padding (does not hold)" in reason
    assert "trailing padding moves a line's train-mode logits by at least 5" in reason


def test_inconclusive_at_smoke_size_and_with_too_few_seeds():
    label, reason = q13.verdict(metrics(size="smoke"))
    assert label == "inconclusive" and "qkv ask 13 --size full" in reason
    assert q13.verdict(metrics(seeds=2))[0] == "inconclusive"


def test_verdict_flips_when_the_numbers_do():
    m = metrics()
    assert q13.verdict(m)[0] == "confirmed"
    flipped = copy.deepcopy(m)
    for cell in flipped["results"]["norms"]:
        if cell["norm"] == "batch_naive" and cell["batch"] == 32:
            cell["eval_loss"] -= 0.1  # pads counted no longer hurt at batch 32
    label, reason = q13.verdict(flipped)
    assert label == "depends" and "padding (holds in part)" in reason


def test_tables_show_the_paired_gaps():
    shifts, losses, gaps = q13.tables(metrics())
    assert [row[0] for row in shifts[1]] == ["LayerNorm", "RMSNorm", "BatchNorm", "BatchNorm, pads counted"]
    assert gaps[1][1][:2] == ["2", "BatchNorm, pads counted"] and gaps[1][1][3].startswith("+0.100")
    assert gaps[1][0][2].startswith("+0.100")
