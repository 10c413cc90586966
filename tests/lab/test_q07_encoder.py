"""Question 7's verdict follows its numbers; its trace, formula and parity measure what they claim."""

from __future__ import annotations

import copy

import pytest
import torch

from qkv.config import ModelConfig
from qkv.lab import q07_encoder as q07


def check(name: str = "post-LN", formula: int = 1000, model: int = 1000, traced: int = 1000) -> dict:
    return {"name": name, "formula": {"total": formula, "per_layer": 100, "attention": 40, "ffn": 50},
            "model_total": model, "model_per_layer": 100, "model_attention": 40, "model_ffn": 50,
            "trace_total": traced, "trace": [{"module": "encoder.embed", "what": "token embedding",
                                              "shape": [2, 7, 64], "params": traced}]}


def metrics(worst: float = 8e-7, seeds: int = 5, bert: bool = True, checks: list | None = None) -> dict:
    cases = q07.CASES if bert else q07.CASES[:-1]
    cells = [{"case": c, "reference": "ref", "seed": s, "max_abs_diff": 5e-7} for s in range(seeds) for c in cases]
    cells[-1]["max_abs_diff"] = worst
    results = {"param_checks": checks or [check(), check("pre-LN", 1064, 1064, 1064)], "parity": cells,
               "bert": "run" if bert else "skipped: transformers is not installed"}
    config = {"trace_config": q07.TRACE, "trace_batch": q07.TRACE_BATCH, "trace_lengths": list(q07.TRACE_LENGTHS)}
    return {"question": 7, "size": "full", "seeds": seeds, "config": config, "results": results}


def test_confirmed_when_every_case_matches_and_counts_agree():
    label, reason = q07.verdict(metrics())
    assert label == "confirmed"
    assert "bert 8.00e-07" in reason and "1,000, 1,064" in reason


def test_confirmed_without_bert_says_it_was_skipped():
    label, reason = q07.verdict(metrics(bert=False))
    assert label == "confirmed" and "skipped: transformers is not installed" in reason
    assert "stack_pre 8.00e-07" in reason


def test_refuted_when_one_case_exceeds_the_tolerance():
    label, reason = q07.verdict(metrics(worst=3e-4))
    assert label == "refuted" and "bert differ" in reason and "3.00e-04" in reason


def test_refuted_when_a_parameter_count_disagrees_with_the_formula():
    label, reason = q07.verdict(metrics(checks=[check(), check("pre-LN", 1064, 1128, 1128)]))
    assert label == "refuted" and "pre-LN: formula 1064, model 1128, trace 1128" in reason
    # a trace that misses a parameter-owning step also refutes
    assert q07.verdict(metrics(checks=[check(traced=936)]))[0] == "refuted"


def test_inconclusive_with_too_few_seeds_or_at_smoke_size():
    label, reason = q07.verdict(metrics(seeds=2))
    assert label == "inconclusive" and "2 seeds" in reason
    smoke = metrics()
    smoke["size"] = "smoke"
    assert q07.verdict(smoke)[0] == "inconclusive"


def test_verdict_flips_when_the_numbers_do():
    good = metrics()
    bad = copy.deepcopy(good)
    bad["results"]["parity"][0]["max_abs_diff"] = 2 * q07.TOLERANCE
    assert q07.verdict(good)[0] == "confirmed" and q07.verdict(bad)[0] == "refuted"


def test_tables_name_the_dimensions_of_the_trace():
    columns, rows = q07.tables(metrics())[0]
    assert columns[3] == "named" and rows[0][3] == "(B, T, d)" and rows[-1][-1] == "1,000"


# -- the measurements themselves --------------------------------------------------------------


@pytest.mark.parametrize("name", list(q07.TRACE_VARIANTS))
def test_trace_formula_and_model_count_agree(name):
    c = q07.param_check(name, ModelConfig(**{**q07.TRACE, **q07.TRACE_VARIANTS[name]}))
    assert c["formula"]["total"] == c["model_total"] == c["trace_total"]
    assert c["formula"]["per_layer"] == c["model_per_layer"]
    modules = [r["module"] for r in c["trace"]]
    assert modules[:3] == ["encoder.embed", "encoder.position", "encoder.layers.0.self_attn.q_proj"]
    assert modules.count("encoder.layers.1.sub_ffn") == 1
    assert ("encoder.final_norm" in modules) == (name.startswith("pre-LN"))


def test_formula_counts_a_d512_layer_as_in_the_paper():
    cfg = ModelConfig(family="encoder", d_model=512, d_ff=2048, n_heads=8)
    assert q07.formula_params(cfg)["per_layer"] == 4 * 512**2 + 4 * 512 + 2 * 512 * 2048 + 2048 + 512 + 4 * 512


@pytest.mark.parametrize("placement", ["post", "pre"])
def test_parity_is_within_tolerance(placement):
    assert q07.layer_parity(placement, seed=1) < q07.TOLERANCE
    assert q07.stack_parity(placement, seed=1) < q07.TOLERANCE


def test_parity_catches_a_miswired_layer(monkeypatch):
    """Swapping the two norms of the reference must show as a difference far beyond the tolerance."""
    copy_weights = q07.torch_layer

    def swapped(layer, cfg):
        ref = copy_weights(layer, cfg)
        ref.norm1, ref.norm2 = ref.norm2, ref.norm1
        return ref

    monkeypatch.setattr(q07, "torch_layer", swapped)
    assert q07.layer_parity("post", seed=1) > 100 * q07.TOLERANCE


def test_parity_catches_a_missing_padding_mask(monkeypatch):
    monkeypatch.setattr(q07.masks, "padding_mask", lambda token_mask: None)
    assert q07.layer_parity("post", seed=1) > 100 * q07.TOLERANCE


def test_bert_parity_is_within_tolerance():
    pytest.importorskip("transformers")
    assert q07.bert_parity(seed=1) < q07.TOLERANCE


def test_trace_rows_follow_the_data_flow():
    rows = q07.trace(ModelConfig(**q07.TRACE))
    qkv = [r for r in rows if r["module"].endswith(("q_proj", "k_proj", "v_proj"))]
    n_heads, d_model = q07.TRACE["n_heads"], q07.TRACE["d_model"]
    heads = [q07.TRACE_BATCH, n_heads, max(q07.TRACE_LENGTHS), d_model // n_heads]
    assert [r["shape"] for r in qkv[:3]] == [heads] * 3  # (B, H, T, D)
    up = next(r for r in rows if r["module"] == "encoder.layers.0.ffn.up")
    assert up["shape"][-1] == q07.TRACE["d_ff"]
    assert torch.Size(rows[-1]["shape"]) == (q07.TRACE_BATCH, max(q07.TRACE_LENGTHS), q07.TRACE["d_model"])
