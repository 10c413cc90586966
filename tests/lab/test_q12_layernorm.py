"""Question 12's verdict follows the numbers: synthetic metrics for every outcome, and the flips."""

from __future__ import annotations

import copy

from qkv.lab import q12_layernorm as q12

SEEDS = 5
UNIGRAM = 3.35


def probe(shift: float, padding: float | None = None) -> dict:
    """A probe result: ``shift`` in the other-lines contexts, ``padding`` (default: 0) with pads."""
    train = {"padding": padding or 0.0, "other_lines": shift, "other_lines_padded": shift}
    return {"train": train, "eval": {c: 1e-7 for c in q12.CONTEXTS}}


def jitter(seed: int, noise: float) -> float:
    return noise * (seed - (SEEDS - 1) / 2)  # zero mean over the seeds: gaps are exact


def norm_cells(ln_shift: float, bn_shift: float, gap_b1: float, gap_b16: float, noise: float) -> list[dict]:
    cells = []
    for seed in range(SEEDS):
        for batch, gap in ((1, gap_b1), (16, gap_b16)):
            base_loss = 2.9 + 0.01 * seed
            for norm, loss, shift in (("layer", base_loss, ln_shift), ("rms", base_loss, ln_shift),
                                      ("batch", base_loss + gap + jitter(seed, noise), bn_shift)):
                cell = {"norm": norm, "batch": batch, "seed": seed, "eval_loss": loss, "train_mode_loss": loss,
                        "probe": probe(shift), "curve": []}
                if norm == "batch":
                    cell["probe_naive_twin"] = probe(bn_shift, padding=5.0)
                cells.append(cell)
    return cells


def placement_runs(cold_failed: int, warm_failed: int, pre_failed: int, cold_gap: float) -> list[dict]:
    runs = []
    for seed in range(SEEDS):
        for depth in (6, 12):
            for placement, warmup, failed, gap in (("post", False, cold_failed, cold_gap),
                                                   ("post", True, warm_failed, 0.0), ("pre", False, pre_failed, 0.0)):
                fails = depth == 12 and seed < failed
                loss = UNIGRAM + 0.01 if fails else 2.8 + (gap if depth == 12 else 0.0)
                runs.append({"placement": placement, "warmup": warmup, "depth": depth, "seed": seed,
                             "eval_loss": loss, "failed": fails, "curve": []})
    return runs


def metrics(ln_shift=2e-7, bn_shift=2.0, gap_b1=0.2, gap_b16=0.05, noise=0.01, cold_failed=4, warm_failed=0,
            pre_failed=0, cold_gap=0.0, seeds=SEEDS, size="full") -> dict:
    results = {"unigram_loss": UNIGRAM, "norms": norm_cells(ln_shift, bn_shift, gap_b1, gap_b16, noise),
               "placement": placement_runs(cold_failed, warm_failed, pre_failed, cold_gap)}
    return {"question": 12, "size": size, "seeds": seeds, "results": results}


def test_confirmed_when_every_part_holds():
    label, reason = q12.verdict(metrics())
    assert label == "confirmed"
    assert "at most 2.0e-07 (LayerNorm)" in reason and "at least 2" in reason
    assert "BatchNorm − LayerNorm = +0.200 ± 0.016 nats/char at batch size 1" in reason
    assert "post-LN fails in 4/5 seeds without warm-up and 0/5 with it" in reason


def test_refuted_when_no_part_holds():
    label, reason = q12.verdict(metrics(ln_shift=1e-3, gap_b1=0.0, cold_failed=0, cold_gap=0.0))
    assert label == "refuted" and "at most 1.0e-03 (LayerNorm)" in reason
    assert "fails in 0/5 seeds without warm-up" in reason


def test_depends_when_post_ln_fails_with_warm_up_too():
    label, reason = q12.verdict(metrics(cold_failed=5, warm_failed=5))
    assert label == "depends" and "not for placement" in reason
    assert "5/5 seeds without warm-up and 5/5 with it" in reason


def test_depends_when_pre_ln_fails_without_warm_up():
    label, reason = q12.verdict(metrics(pre_failed=1))
    assert label == "depends" and "1/5 at 12 layers" in reason


def test_a_loss_gap_alone_shows_that_post_ln_needs_warm_up():
    label, reason = q12.verdict(metrics(cold_failed=0, cold_gap=0.3))
    assert label == "confirmed" and "without − with warm-up +0.300 ± 0.000" in reason


def test_a_batch_size_gap_within_seed_noise_does_not_count():
    label, reason = q12.verdict(metrics(gap_b1=0.04, noise=0.05))
    assert label == "depends" and "not for batch size 1" in reason and "+0.040 ± 0.079" in reason


def test_batchnorm_that_ignores_the_batch_leaves_no_reason_to_prefer_layernorm():
    label, reason = q12.verdict(metrics(bn_shift=1e-6))
    assert label == "depends" and "not for batch independence" in reason and "at least 1e-06" in reason


def test_inconclusive_at_smoke_size_and_with_too_few_seeds():
    label, reason = q12.verdict(metrics(size="smoke"))
    assert label == "inconclusive" and "qkv ask 12 --size full" in reason
    assert q12.verdict(metrics(seeds=2))[0] == "inconclusive"


def test_verdict_flips_when_the_numbers_do():
    m = metrics()
    assert q12.verdict(m)[0] == "confirmed"
    flipped = copy.deepcopy(m)
    for cell in flipped["results"]["norms"]:
        cell["probe"]["train"]["padding"] = 0.5 if cell["norm"] == "layer" else cell["probe"]["train"]["padding"]
    assert q12.verdict(flipped)[0] == "depends"
    for run in flipped["results"]["placement"]:
        run["failed"], run["eval_loss"] = False, 2.8
    for cell in flipped["results"]["norms"]:
        if cell["norm"] == "batch":
            cell["eval_loss"] = 2.9
    assert q12.verdict(flipped)[0] == "refuted"


def test_tables_and_summaries_read_the_same_numbers():
    m = metrics()
    shifts, losses, placement = q12.tables(m)
    assert shifts[1][0][0] == "LayerNorm" and shifts[1][3][1] == "5"  # pads counted: the twins' probe
    assert any(row[:2] == ["1", "BatchNorm"] and row[4].startswith("+0.200") for row in losses[1])
    assert placement[1][3][:2] == ["12", "post-LN, no warm-up"] and placement[1][3][3] == "4/5"
