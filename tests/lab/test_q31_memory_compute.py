"""Question 31's verdict follows the numbers; the saved-bytes counter counts what autograd keeps."""

from __future__ import annotations

import torch

from qkv.lab import q31_memory_compute as q31

LENGTHS = (256, 4096)


def metrics(memory: dict | None = None, times: dict | None = None, noise: float = 0.001, seeds: int = 5,
            size: str = "full") -> dict:
    """Saved MiB ``memory[(variant, T)]`` (default: linear in T) and median step time ``times[...]``."""
    memory, times = memory or {}, times or {}
    runs = []
    for T in LENGTHS:
        for v in q31.VARIANTS:
            mib = memory.get((v, T), T / 256)
            t = times.get((v, T), 0.1)
            runs.append({"variant": v, "T": T, "saved_mib": mib,
                         "times_s": [t + noise * (i - (seeds - 1) / 2) for i in range(seeds)]})
    return {"question": 31, "size": size, "seeds": seeds, "results": {"runs": runs}}


EXPECTED = {  # every popular claim true
    "memory": {("reference", 256): 2.0, ("reference", 4096): 16.0 + 256, ("checkpoint", 4096): 4.0,
               ("accumulate", 4096): 8.0, ("batch2", 4096): 32.0, ("xl", 256): 1.0, ("xl", 4096): 1.0},
    "times": {("window", 4096): 0.1, ("window_mask", 4096): 0.4, ("checkpoint", 4096): 0.2},
}


def test_confirmed_when_every_fix_does_what_it_is_said_to():
    label, reason = q31.verdict(metrics(**EXPECTED))
    assert label == "confirmed", reason
    assert "window vs window_mask at 4096: memory ÷1.00, time ÷4.00" in reason


def test_depends_when_the_window_as_blocks_is_no_faster():
    times = {**EXPECTED["times"], ("window", 4096): 0.4}
    label, reason = q31.verdict(metrics(EXPECTED["memory"], times))
    assert label == "depends" and "not: block window saves time and memory vs the mask" in reason


def test_refuted_when_no_fix_saves_anything():
    label, reason = q31.verdict(metrics(times={("checkpoint", 4096): 0.1}))
    assert label == "refuted" and reason.startswith("no claim holds")


def test_noisy_timing_cannot_show_a_saving():
    noisy = metrics(EXPECTED["memory"], EXPECTED["times"], noise=0.5)
    assert q31.verdict(noisy)[0] == "depends"  # the memory claims still hold, the time claims cannot


def test_smoke_and_too_few_rounds_are_inconclusive():
    assert q31.verdict(metrics(**EXPECTED, seeds=2))[0] == "inconclusive"
    assert q31.verdict(metrics(**EXPECTED, size="smoke"))[1].startswith("smoke size")


def test_saved_bytes_counts_each_storage_once():
    counter = q31.SavedBytes()
    x = torch.randn(256, requires_grad=True)  # 1 KiB
    with counter.hooks():
        y = (x * x).sum() + (x * 2).sum()  # x saved twice (same storage) by the first product
    counter.done()
    assert counter.peak == 1024
    y.backward()
