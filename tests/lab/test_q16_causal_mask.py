"""Question 16's verdict follows the numbers: every outcome, and the flips between them."""

from __future__ import annotations

from qkv.lab import q16_causal_mask as q16


def metrics(leak_causal=0.0, leak_unmasked=0.02, cheat=1.5, causal_harm=1.0, generation_harm=0.8,
            noise=0.05, seeds=5, size="full") -> dict:
    leaks = [{"position": p, "seed": s, "causal": leak_causal, "unmasked": leak_unmasked}
             for p in q16.POSITIONS for s in range(seeds)]
    rows = []
    for s in range(seeds):
        wobble = noise * (s - (seeds - 1) / 2)
        rows.append({"seed": s, "masked_teacher_forced": 2.0, "unmasked_teacher_forced": 2.0 - cheat + wobble,
                     "masked_causal": 2.0, "unmasked_causal": 2.0 + causal_harm + wobble,
                     "masked_generation": 1.5, "unmasked_generation": 1.5 + generation_harm - wobble})
    return {"question": 16, "size": size, "seeds": seeds, "results": {"leak": leaks, "cheating": rows}}


def test_confirmed_when_the_mask_holds_and_dropping_it_cheats_and_harms():
    label, reason = q16.verdict(metrics())
    assert label == "confirmed"
    assert "0.00e+00 with the mask" in reason and "+1.50" in reason and "+1.00" in reason


def test_refuted_when_the_mask_leaks():
    label, reason = q16.verdict(metrics(leak_causal=1e-3))
    assert label == "refuted" and "leaks" in reason and "1.00e-03" in reason


def test_refuted_when_dropping_the_mask_changes_nothing_beyond_noise():
    label, reason = q16.verdict(metrics(cheat=0.01, causal_harm=0.02, generation_harm=-0.01))
    assert label == "refuted" and "no effect" in reason


def test_depends_when_only_some_effects_are_real():
    label, reason = q16.verdict(metrics(generation_harm=0.05))
    assert label == "depends" and "cheats, causal_harm" in reason


def test_noise_larger_than_the_effect_flips_the_verdict():
    assert q16.verdict(metrics(noise=0.05))[0] == "confirmed"
    assert q16.verdict(metrics(cheat=0.3, causal_harm=0.3, generation_harm=0.3, noise=0.4))[0] == "refuted"


def test_too_few_seeds_and_smoke_size_are_inconclusive():
    assert q16.verdict(metrics(seeds=2))[0] == "inconclusive"
    label, reason = q16.verdict(metrics(size="smoke"))
    assert label == "inconclusive" and "qkv ask 16 --size full" in reason
