"""The capture-overhead benchmark at tiny size: every arm is timed, and a model that went
through a capture block computes bit for bit what the never-captured one does."""

from __future__ import annotations

from benchmarks import capture_overhead


def test_every_arm_is_timed_and_leaving_capture_leaves_the_model_as_it_was():
    r = capture_overhead.main(["--size", "tiny", "--threads", "1"])
    assert set(r["ms_per_forward"]) == {"never", "never_again", "after", "capture_one", "capture_all"}
    assert all(ms > 0 for ms in r["ms_per_forward"].values())
    assert r["after_bit_identical"] is True
    assert r["capture_max_abs_diff"] < 1e-4  # the reference path computes the same function
