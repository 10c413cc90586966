"""The tokenizer benchmark runs end to end at its smoke size and reports what the docs quote."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the checkout's benchmarks/

from benchmarks import tokenizer_speed  # noqa: E402


def test_tokenizer_benchmark_tiny(tmp_path):
    result = tokenizer_speed.main(["--size", "tiny", "--out", str(tmp_path / "speed.json")])
    assert (tmp_path / "speed.json").is_file()
    assert [r["kind"] for r in result["results"]] == ["bpe", "byte_bpe", "wordpiece"]
    for r in result["results"]:
        assert r["identical_ids_to_hf"] is True
        assert r["train_s"]["qkv"] > 0 and r["train_s"]["hf"] > 0
        assert set(r["encode_mb_per_s"]) == {"qkv", "hf_batch", "hf_one_by_one"}
    assert result["bpe_under_30s"] is True
