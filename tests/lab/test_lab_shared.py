"""The shared LM is trained once per (size, seed), then loaded; a failed training caches nothing."""

from __future__ import annotations

import pytest
import torch

from qkv.data import sequential_lm_batches
from qkv.lab import shared
from qkv.models import build_model
from qkv.tasks.common import mean_token_loss


def untrained_loss(seed: int) -> float:
    torch.manual_seed(seed)
    model = build_model(shared.lm_config("smoke")).eval()
    s = shared.LM_SIZES["smoke"]
    held_out = shared.shakespeare_ids("val")[: s["val_chars"]]
    return mean_token_loss(model, sequential_lm_batches(held_out, s["context"], 64))["loss"]


def test_the_shared_lm_is_trained_once_then_loaded(monkeypatch, tmp_path):
    monkeypatch.setenv("QKV_LAB_CACHE", str(tmp_path))
    calls = []
    real = shared.train_lm
    monkeypatch.setattr(shared, "train_lm", lambda *a: calls.append(a) or real(*a))
    first, record = shared.trained_lm("smoke", 3)
    second, again = shared.trained_lm("smoke", 3)
    assert len(calls) == 1 and record == again
    assert record["steps"] == shared.LM_SIZES["smoke"]["steps"]
    assert record["loss"] < untrained_loss(3) - 0.2  # even 20 steps learn something
    ids = torch.randint(4, 260, (1, 16))
    assert torch.equal(first(ids), second(ids))
    assert [p.name for p in tmp_path.iterdir()] == ["shakespeare-lm-smoke-seed3"]


def test_an_interrupted_training_leaves_no_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("QKV_LAB_CACHE", str(tmp_path))

    def interrupted(size, seed, folder):
        (folder / "partial").write_text("half a run")
        raise KeyboardInterrupt

    monkeypatch.setattr(shared, "train_lm", interrupted)
    with pytest.raises(KeyboardInterrupt):
        shared.trained_lm("smoke", 0)
    assert list(tmp_path.iterdir()) == []


def test_the_shared_translator_is_trained_once_then_loaded(monkeypatch, tmp_path):
    monkeypatch.setenv("QKV_LAB_CACHE", str(tmp_path))
    calls = []
    real = shared.train_translator
    monkeypatch.setattr(shared, "train_translator", lambda *a: calls.append(a) or real(*a))
    first, tok, record = shared.trained_translator("smoke", 1)
    second, _, again = shared.trained_translator("smoke", 1)
    assert len(calls) == 1 and record == again
    assert record["steps"] == shared.TRANSLATOR_SIZES["smoke"]["steps"] and record["beams"] == 4
    assert record["n"] == shared.TRANSLATOR_SIZES["smoke"]["test_limit"] and 0.0 <= record["bleu"] <= 100.0
    assert tok.vocab_size == first.config.vocab_size
    src = torch.tensor([tok.encode("Ein Mann läuft.", add_special_tokens=False) + [first.config.eos_id]])
    assert torch.equal(first.generate(src, max_new_tokens=5), second.generate(src, max_new_tokens=5))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["multi30k-bpe300-1000", "multi30k-translator-smoke-seed1"]


def test_an_interrupted_translator_training_leaves_no_translator(monkeypatch, tmp_path):
    monkeypatch.setenv("QKV_LAB_CACHE", str(tmp_path))

    def interrupted(size, seed, folder):
        (folder / "partial").write_text("half a run")
        raise KeyboardInterrupt

    monkeypatch.setattr(shared, "train_translator", interrupted)
    with pytest.raises(KeyboardInterrupt):
        shared.trained_translator("smoke", 0)
    assert list(tmp_path.iterdir()) == []
