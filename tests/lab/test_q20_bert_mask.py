"""Question 20's verdict follows the numbers (every outcome, and the flips between them); the
two-stream mask and the hiding schemes do what they say."""

from __future__ import annotations

import torch

from qkv.config import ModelConfig
from qkv.lab import q20_bert_mask as q20
from qkv.models import build_model


def metrics(query_1=0.0, query_2=0.3, column_1=2.0, elsewhere=0.0, cheat=2.0, absent_harm=1.5,
            visible_gap=0.6, finetune_gap=0.03, probe_gap=0.03, noise=0.02, seeds=3, size="full") -> dict:
    runs, down = [], []
    for s in range(seeds):
        wobble = noise * (s - (seeds - 1) / 2)
        acc = wobble / 4  # accuracies wobble on a smaller scale than losses in nats
        own = {"query-1": 5.0, "query-2": 5.0 - cheat + wobble, "column-1": 1.0, "column-2": 1.0,
               "mask-1": 5.0, "mask-2": 5.0, "bert-2": 5.0}
        for name in q20.RUNS:
            absent = 5.0 + absent_harm - wobble if name == "query-2" else 5.0
            row = {"run": name, "seed": s, "own_loss": own[name], "absent_mask_loss": absent}
            if q20.RUNS[name][0] != "mask":
                row["leak"] = {"query-1": query_1, "query-2": query_2}.get(name, column_1)
                row["leak_elsewhere"] = elsewhere if name.startswith("column") else 0.0
            runs.append(row)
        down += [{"init": "bert-2", "seed": s, "visible_accuracy": 0.2 + visible_gap + acc,
                  "finetune_accuracy": 0.8 + finetune_gap + acc, "probe_accuracy": 0.7 + probe_gap - acc},
                 {"init": "mask-2", "seed": s, "visible_accuracy": 0.2, "finetune_accuracy": 0.8,
                  "probe_accuracy": 0.7},
                 {"init": "scratch", "seed": s, "finetune_accuracy": 0.75, "probe_accuracy": 0.6}]
    return {"question": 20, "size": size, "seeds": seeds, "results": {"runs": runs, "downstream": down}}


def test_confirmed_only_if_one_layer_column_masking_hid_the_token_too():
    label, reason = q20.verdict(metrics(column_1=0.0))
    assert label == "confirmed"
    assert "+2.00" in reason and "+60.00" in reason and "+3.00" in reason


def test_depends_when_the_residual_leaks_at_one_layer():
    label, reason = q20.verdict(metrics())
    assert label == "depends" and "fails: one_layer_hides" in reason and "2.0e+00 already at 1 layer" in reason


def test_depends_when_the_mismatch_does_not_reach_downstream():
    label, reason = q20.verdict(metrics(column_1=0.0, finetune_gap=0.002))
    assert label == "depends" and "fails: finetune" in reason and "+0.20" in reason


def test_refuted_when_the_mask_does_not_hide_or_nothing_cheats():
    assert q20.verdict(metrics(query_1=1e-3))[0] == "refuted"
    assert q20.verdict(metrics(elsewhere=1e-3))[0] == "refuted"
    label, reason = q20.verdict(metrics(cheat=0.05, visible_gap=0.01))
    assert label == "refuted" and "neither" in reason


def test_noise_larger_than_the_effects_flips_the_verdict():
    assert q20.verdict(metrics(column_1=0.0, noise=0.02))[0] == "confirmed"
    noisy = metrics(column_1=0.0, cheat=0.8, absent_harm=0.8, visible_gap=0.2, finetune_gap=0.03, noise=1.0)
    assert q20.verdict(noisy)[0] == "refuted"


def test_too_few_seeds_and_smoke_size_are_inconclusive():
    assert q20.verdict(metrics(seeds=2))[0] == "inconclusive"
    label, reason = q20.verdict(metrics(size="smoke"))
    assert label == "inconclusive" and "qkv ask 20 --size full" in reason


def test_query_stream_mask_by_hand():
    token_mask = torch.tensor([[True, True, False]])  # two tokens, one pad
    selected = torch.tensor([[False, True, False]])  # token 1 hidden
    m = q20.query_stream_mask(token_mask, selected)[0, 0].int()  # (6, 6): c0 q0 c1 q1 c2 q2
    expected = torch.tensor([
        [1, 0, 1, 0, 0, 0],  # c0 sees the real content c0, c1
        [1, 1, 0, 0, 0, 0],  # q0 sees unselected content c0 and itself
        [1, 0, 1, 0, 0, 0],  # c1
        [1, 0, 0, 1, 0, 0],  # q1: c0 and itself, never c1
        [1, 0, 1, 0, 0, 0],  # c2 (padding query): as any content slot
        [1, 0, 0, 0, 0, 1],  # q2 (padding query)
    ])
    assert torch.equal(m, expected)


def tiny(layers: int) -> torch.nn.Module:
    torch.manual_seed(0)
    cfg = ModelConfig(family="encoder", head="mlm", vocab_size=20, d_model=16, n_layers=layers, n_heads=2, d_ff=32,
                      max_len=32, position="rope", dropout_embed=0.0, dropout_residual=0.0, dropout_attention=0.0)
    return build_model(cfg).eval()


def batches(n_changed: int = 1):
    ids = torch.tensor([[2, 7, 8, 9, 10, 3]])  # (1, 6)
    selected = torch.zeros_like(ids, dtype=torch.bool)
    selected[0, 2] = True
    other = ids.clone()
    other[0, 2] = 15
    mask = torch.ones_like(selected)
    return ({"input_ids": ids, "mask": mask, "selected": selected, "labels": ids[selected]},
            {"input_ids": other, "mask": mask, "selected": selected, "labels": ids[selected]})


def test_leak_pattern_of_each_scheme():
    a, b = batches()
    for layers, query_leaks in ((1, False), (2, True)):
        model = tiny(layers)
        query = q20.leak(q20.HiddenTokenMLM(model, "query", 4), [a], [b])
        column = q20.leak(q20.HiddenTokenMLM(model, "column", 4), [a], [b])
        assert (query["leak"] > q20.LEAK_TOLERANCE) == query_leaks
        assert column["leak"] > 1e-2  # the token's own residual stream, at any depth
        assert column["leak_elsewhere"] == 0.0  # no query sees the hidden key
    assert model.encoder.mask_hook is None  # the hook is removed after each pass


def test_logistic_probe_separates_separable_data():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(200, 3, generator=g)
    y = (x[:, 0] > 0).long()
    assert q20.logistic_probe(x, y, -x, 1 - y) > 0.95
