"""The pruning benchmark at tiny size: every variant is measured, structured pruning removes
parameters while magnitude pruning keeps them all, and the dense row is the reference."""

from __future__ import annotations

from benchmarks import structured_pruning

from .deploy.test_serve import tiny_checkpoint


def test_every_variant_is_measured_and_only_structured_pruning_shrinks_the_model(tmp_path):
    r = structured_pruning.main([str(tiny_checkpoint(tmp_path / "mt", "seq2seq")), "--size", "tiny", "--threads", "1"])
    v = r["variants"]
    assert list(v) == ["dense", "heads_25", "heads_50", "ffn_25", "ffn_50", "heads_50+ffn_50", "magnitude_50"]
    assert v["dense"]["val_loss_increase"] == 0 and v["dense"]["speed_vs_dense"] == 1
    assert all(row["words_per_s"] >= 0 and row["length_ratio"] >= 0 for row in v.values())
    assert v["magnitude_50"]["parameters"] == v["dense"]["parameters"]
    for name in ("heads_25", "heads_50", "ffn_25", "ffn_50"):
        assert v[name]["parameters"] < v["dense"]["parameters"]
    assert v["heads_50+ffn_50"]["parameters"] < min(v["heads_50"]["parameters"], v["ffn_50"]["parameters"])
    assert v["heads_50"]["predicted_increase"] is not None and v["ffn_50"]["predicted_increase"] is None
