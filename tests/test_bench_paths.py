"""The benchmarks time what they claim to time, and their scripts run end to end.

* The fused attention path the speed benchmark trains through gives the same loss and gradients
  as the readable reference path (every attention module ``capture=True``), on the benchmark's
  own seq2seq and LM models and batches at a reduced size.
* The peers are built to the same shape: parameter counts within 5% of qkv's at the full size.
* Each script's ``main`` runs at its tiny size and its JSON has the keys and positive values the
  docs and ``qkv bench`` read.
"""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch
from torch.testing import assert_close

from benchmarks import attention_scaling, train_speed
from benchmarks.train_speed import PEERS, SIZES, Shape, loss_of, make_batch, trainable_params
from qkv import bench
from qkv.nn.attention import MultiHeadAttention

REDUCED = dict(
    seq2seq=Shape("seq2seq", vocab=300, d=64, heads=4, d_ff=128, layers=2, batch=4, length=24),
    lm=Shape("lm", vocab=300, d=64, heads=4, d_ff=128, layers=2, batch=3, length=32),
)


def _loss_and_grads(peer: train_speed.Peer, batch: dict) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    peer.model.zero_grad(set_to_none=True)
    loss = loss_of(peer, batch)
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in peer.model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("task", ["seq2seq", "lm"])
def test_fused_path_equals_reference_path_on_benchmark_models(task):
    peer = PEERS[task]["qkv"](REDUCED[task], "cpu")
    peer.model.eval()  # dropout off (the benchmark's default is 0 anyway)
    batch = make_batch(REDUCED[task], "cpu")
    fused_loss, fused_grads = _loss_and_grads(peer, batch)
    modules = [m for m in peer.model.modules() if isinstance(m, MultiHeadAttention)]
    assert modules
    for m in modules:
        m.capture = True
    ref_loss, ref_grads = _loss_and_grads(peer, batch)
    assert all(m.weights is not None for m in modules)  # the reference path really ran
    assert_close(fused_loss, ref_loss, rtol=1e-5, atol=1e-6)
    assert fused_grads.keys() == ref_grads.keys()
    for name in fused_grads:
        assert_close(fused_grads[name], ref_grads[name], rtol=1e-4, atol=1e-6, msg=name)


def test_attention_scaling_variants_compute_the_same_causal_attention():
    layer = attention_scaling.LAYER["tiny"]
    outputs = {}
    for variant in ("reference", "fused", "fused_mask", "sdpa_is_causal"):
        torch.manual_seed(0)  # same weights and input for every variant
        forward, _ = attention_scaling.build(variant, layer, 40, "cpu")
        outputs[variant] = forward().detach()
    for variant in ("fused", "fused_mask", "sdpa_is_causal"):
        assert_close(outputs[variant], outputs["reference"], rtol=1e-5, atol=1e-5, msg=variant)


@pytest.mark.parametrize("task", ["seq2seq", "lm"])
def test_peers_match_qkv_parameter_count_at_full_size(task):
    shape = SIZES["full"][task]
    counts = {name: trainable_params(build(shape, "cpu").model) for name, build in PEERS[task].items()}
    for name, n in counts.items():
        assert abs(n / counts["qkv"] - 1) <= 0.05, (name, n, counts["qkv"])


def _positive(row: dict, keys: tuple[str, ...]) -> None:
    for k in keys:
        assert k in row, k
        assert row[k] > 0, (k, row[k])


@pytest.fixture(scope="module")
def tiny_results(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    train = train_speed.main(["--size", "tiny", "--out", str(out / "train.json")])
    attn = attention_scaling.main(["--size", "tiny", "--out", str(out / "attn.json")])
    assert json.loads((out / "train.json").read_text()) == train  # the file holds what was printed
    return dict(train_speed=train, attention_scaling=attn)


@pytest.mark.slow
def test_train_speed_smoke(tiny_results):
    r = tiny_results["train_speed"]
    assert set(r["tasks"]) == {"seq2seq", "lm"}
    for task, t in r["tasks"].items():
        assert set(t["peers"]) == set(PEERS[task])
        _positive(t, ("tokens_per_step", "model_gflop_per_step", "matmul_peak_gflops"))
        for row in t["peers"].values():
            _positive(row, ("params", "step_s_median", "tokens_per_s", "gflops", "mfu",
                            "total_peak_mib", "step_peak_mib"))
        for ratio in t["qkv_over_peer"].values():
            _positive(ratio, ("tokens_per_s", "total_peak_mib", "step_peak_mib"))


@pytest.mark.slow
def test_attention_scaling_smoke(tiny_results):
    r = tiny_results["attention_scaling"]
    assert set(r["variants"]) == set(attention_scaling.VARIANTS)
    for variant, by_length in r["variants"].items():
        assert set(by_length) == {str(T) for T in r["lengths"]}
        for entry in by_length.values():
            _positive(entry, ("ms", "gflops", "peak_mib"))
    for pair, by_length in r["time_ratios"].items():
        assert set(by_length) == {str(T) for T in r["lengths"]}, pair
        _positive(by_length, tuple(by_length))


def test_attention_scaling_skips_over_the_memory_cap_instead_of_running():
    todo = attention_scaling.runnable("full", cap_gib=8.0)
    assert todo["reference"] == attention_scaling.LENGTHS["full"]
    assert todo["additive"] and max(todo["additive"]) < 8192  # O(n²·d): stopped early
    assert attention_scaling.estimated_bytes("additive", 8192, 256, 4, 1) > 8 * 2**30


@pytest.mark.slow
def test_bench_table_names_every_peer_and_variant(tiny_results):
    table = bench.format_tables(tiny_results)
    for name in [*PEERS["seq2seq"], *PEERS["lm"], *attention_scaling.VARIANTS]:
        assert name in table


def test_shape_round_trips_through_the_child_command_line():
    shape = dataclasses.replace(SIZES["full"]["seq2seq"], dropout=0.1)
    assert train_speed.parse_shape(train_speed.format_shape(shape)) == shape
