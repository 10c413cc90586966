"""Question 15's verdict follows the numbers."""

from __future__ import annotations

from qkv.lab import q15_cross_attention as q15


def metrics(best=0.4, diagonal=0.8, layer_means=(0.7, 0.5), noise=0.01, seeds=3, size="full") -> dict:
    runs = []
    for s in range(seeds):
        wobble = noise * (s - 1)
        heads = {}
        for layer, m in enumerate(layer_means):
            heads[f"{layer}.mean"] = m + wobble * (1 if layer % 2 else -1)  # layers wobble apart
            heads[f"{layer}.0"] = m + 0.1
            heads[f"{layer}.1"] = (best if layer == len(layer_means) - 1 else m + 0.05) + wobble
        runs.append({"seed": s, "bleu": 20.0, "heads": heads, "diagonal": diagonal, "sentences": 100})
    return {"question": 15, "size": size, "seeds": seeds, "results": {"runs": runs}}


def test_confirmed_when_a_head_aligns_and_the_last_layer_is_best():
    label, reason = q15.verdict(metrics())
    assert label == "confirmed", reason
    assert "best head error 0.400 vs diagonal 0.800" in reason and "best heads, layer.head: 1.1" in reason


def test_depends_when_an_earlier_layer_aligns_better():
    label, reason = q15.verdict(metrics(layer_means=(0.45, 0.6)))
    assert label == "depends" and "the last layer aligns best: fails" in reason


def test_refuted_when_attention_is_no_better_than_the_diagonal_and_the_last_layer_is_worse():
    assert q15.verdict(metrics(best=0.8, diagonal=0.8, layer_means=(0.85, 0.9)))[0] == "refuted"


def test_noise_and_smoke_are_inconclusive():
    assert q15.verdict(metrics(best=0.78, layer_means=(0.8, 0.79), noise=0.2))[0] == "inconclusive"
    assert q15.verdict(metrics(size="smoke"))[1].startswith("smoke size")
