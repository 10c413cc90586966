"""The long-context benchmark runs at tiny size and its decoding columns show what the caches do."""

from __future__ import annotations

import pytest

from benchmarks import long_context


@pytest.fixture(scope="module")
def tiny():
    return long_context.main(["--size", "tiny", "--threads", "1", "--no-memory"])


def test_every_variant_is_timed_or_says_why_not(tiny):
    for variant in long_context.TRAIN:
        for T in map(str, tiny["lengths"]):
            entry = tiny["train"][variant][T]
            assert entry.get("ms", 0) > 0 or entry["skipped"], (variant, T)


def test_window_and_xl_caches_stay_flat_while_the_full_cache_grows(tiny):
    d = tiny["decode"]
    short, long = map(str, tiny["lengths"])
    grown = (int(long) + long_context.DECODE_STEPS) / (int(short) + long_context.DECODE_STEPS)  # prefill + steps
    assert d["full_cache"][long]["cache_mib"] == pytest.approx(grown * d["full_cache"][short]["cache_mib"], rel=0.02)
    for variant in ("window_cache", "xl_cache"):
        assert d[variant][long]["cache_mib"] == d[variant][short]["cache_mib"] > 0
    assert d["window_cache"][long]["cache_mib"] < d["full_cache"][long]["cache_mib"]


def test_memory_estimates_skip_what_would_not_fit():
    todo = long_context.runnable("long", cap_gib=12.0)
    assert 16384 not in todo["reference"] and 16384 in todo["window"]


def test_attention_alone_compares_the_block_window_with_the_masked_window(tiny):
    a = tiny["attention"]
    assert set(a["variants"]) == set(long_context.ATTENTION)
    for T in map(str, a["lengths"]):
        assert all(a["variants"][v][T]["ms"] > 0 for v in long_context.ATTENTION)
        assert a["mask_window/block_window"]["ms"][T] > 0 and a["op_mask_window/op_block_window"]["ms"][T] > 0
