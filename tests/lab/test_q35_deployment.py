"""Question 35's verdict follows the numbers: every outcome, and the flips between them."""

from __future__ import annotations

from qkv.lab import q35_deployment as q35

FORMS = ["torch-fp32", "torch-bf16", "torch-int8", "onnx-fp32", "onnx-int8", "ct2-fp32", "ct2-int8", "torch-heads25"]


def students(gain: float, noise: float, seeds: int) -> list[dict]:
    """Teacher and student rows: the distilled student ``gain`` BLEU over the reference-trained one."""
    rows = [{"role": "teacher", "seed": 0, "bleu": 38.0, "sentences_per_s": 10.0, "parameters": 7_000_000}]
    for s in range(seeds):
        wobble = noise * (s - (seeds - 1) / 2)
        rows += [{"role": "references", "seed": s, "bleu": 33.0 + s, "sentences_per_s": 20.0, "parameters": 2_000_000},
                 {"role": "distilled", "seed": s, "bleu": 33.0 + s + gain + wobble, "sentences_per_s": 21.0,
                  "parameters": 2_000_000}]
    return rows


def metrics(speed=None, drop=None, noise=0.02, seeds=3, size="full", forms=FORMS, gain=1.0) -> dict:
    """Synthetic rows: ``speed`` form → × torch-fp32's sentences/s, ``drop`` form → BLEU lost,
    ``gain`` → BLEU the distilled student adds over its twin trained on the references."""
    speed = {f: 2.0 for f in forms} if speed is None else speed
    drop = drop or {}
    rows = []
    for s in range(seeds):
        wobble = noise * (s - (seeds - 1) / 2)
        for f in forms:
            ratio = 1.0 if f == "torch-fp32" else speed.get(f, 1.0) + wobble
            rows.append({"form": f, "seed": s, "bleu": 30.0 - drop.get(f, 0.0) + (0 if f == "torch-fp32" else wobble),
                         "sentences_per_s": 10.0 * ratio, "mib": 10.0, "same_as_fp32": 1.0})
    return {"question": 35, "size": size, "seeds": seeds,
            "results": {"rows": rows, "forms": forms, "distillation": students(gain, noise, seeds)}}


def test_confirmed_when_int8_keeps_quality_and_every_runtime_and_bf16_is_faster():
    label, reason = q35.verdict(metrics())
    assert label == "confirmed" and "torch-int8 ×2.00" in reason and "torch-bf16 ×2.00" in reason
    assert "distillation: holds (BLEU distilled − references +1.00 ± 0.02 over 3 seeds" in reason
    assert "pruning: holds (torch-heads25 ×2.00" in reason


def test_distillation_within_noise_or_below_a_half_point_is_not_a_win():
    assert "distillation: unclear" in q35.verdict(metrics(gain=1.0, noise=1.0))[1]
    assert "distillation: fails" in q35.verdict(metrics(gain=0.1))[1]
    assert "distillation: fails" in q35.verdict(metrics(gain=-2.0))[1]


def test_pruned_heads_no_faster_fails_the_pruning_claim():
    label, reason = q35.verdict(metrics(speed={**{f: 2.0 for f in FORMS}, "torch-heads25": 1.0}))
    assert label == "depends" and "pruning: fails (torch-heads25 ×1.00" in reason


def test_an_int8_form_that_loses_a_bleu_point_breaks_the_int8_claim():
    label, reason = q35.verdict(metrics(drop={"onnx-int8": 1.0}))
    assert label == "depends" and "int8: unclear" in reason
    assert "onnx-int8 ×2.00 ± 0.02 speed (faster), BLEU fp32 − int8 +1.00 ± 0.02 (lost)" in reason
    assert "torch-int8 ×2.00 ± 0.02 speed (faster), BLEU fp32 − int8 +0.00 ± 0.02 (kept)" in reason


def test_every_int8_form_lossless_but_no_faster_fails_the_int8_claim():
    label, reason = q35.verdict(metrics(speed={f: 2.0 for f in FORMS if "int8" not in f}))
    assert label == "depends" and "int8: fails" in reason and "runtime: unclear" in reason


def test_refuted_when_nothing_is_faster_and_distillation_gains_nothing():
    assert q35.verdict(metrics(speed={}, gain=0.0))[0] == "refuted"
    assert q35.verdict(metrics(speed={}))[0] == "depends"  # the distilled student still wins


def test_bf16_slower_than_fp32_fails_its_claim():
    label, reason = q35.verdict(metrics(speed={**{f: 2.0 for f in FORMS}, "torch-bf16": 0.5}))
    assert label == "depends" and "bf16: fails" in reason


def test_without_native_bf16_its_claim_is_unclear_not_failed():
    forms = [f for f in FORMS if f != "torch-bf16"]
    label, reason = q35.verdict(metrics(forms=forms))
    assert label == "depends" and "bf16: unclear (not measured" in reason


def test_seed_noise_flips_a_speedup_into_unclear():
    assert q35.speedup(metrics(noise=0.02), "onnx-fp32")["outcome"] == "faster"
    assert q35.speedup(metrics(speed={"onnx-fp32": 1.2}, noise=0.5), "onnx-fp32")["outcome"] == "unclear"
    assert q35.speedup(metrics(speed={"onnx-fp32": 1.0}, noise=0.02), "onnx-fp32")["outcome"] == "not faster"


def test_too_few_seeds_and_smoke_are_inconclusive():
    assert q35.verdict(metrics(seeds=2))[0] == "inconclusive"
    assert q35.verdict(metrics(size="smoke"))[0] == "inconclusive"


def test_the_smoke_run_serves_the_translator_with_and_without_micro_batching(smoke_results):
    served = smoke_results[1][35]["results"]["served"]
    on, off = served["batching_on"], served["batching_off"]
    assert on["ok"] > 0 and off["ok"] > 0 and on["errors_by_status"] == off["errors_by_status"] == {}
    assert set(off["server_batch_sizes"]) == {"1"}  # off: the server never batched
    assert sum(off["server_batch_sizes"].values()) == off["ok"]
    assert served["throughput_ratio_on_over_off"] == round(on["throughput_rps"] / off["throughput_rps"], 2)
    header, rows = q35.served_table(smoke_results[1][35])
    assert [r[0] for r in rows] == ["batching on", "batching off"] and rows[1][-1] == "×1"
