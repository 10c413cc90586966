"""The language-model and SST-2 presets run end to end at a tiny size."""

from __future__ import annotations

import json

import torch

from qkv import load
from qkv.cli import main
from qkv.tasks.run import configure

LM_TINY = ["d_model=32", "n_layers=1", "n_heads=2", "d_ff=64", "max_steps=60", "warmup_steps=5",
           "eval_every=30", "save_every=30", "steps_per_epoch=30", "batch_size=8"]


def test_shakespeare_preset_learns_characters(tmp_path):
    torch.set_num_threads(1)
    assert main(["train", "lm-shakespeare", *LM_TINY, "lr=3e-3", "--out", str(tmp_path)]) == 0
    results = json.loads((tmp_path / "results.json").read_text())
    # 260 byte ids: a uniform guess costs ln 260 = 5.56 nats; 60 steps must already beat unigram-ish
    assert results["loss"] < 3.6, results["loss"]
    assert isinstance(results["sample"], str) and len(results["sample"]) > 0


def test_lm_batches_are_reproducible_per_epoch(tmp_path):
    task = configure("lm-shakespeare", LM_TINY)
    task.prepare(tmp_path)
    batches = task.batches()
    first = [b["input_ids"] for b in batches(3)]
    again = [b["input_ids"] for b in batches(3)]
    other = [b["input_ids"] for b in batches(4)]
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    assert not torch.equal(first[0], other[0])
    assert torch.equal(first[0][:, 1:], next(iter(batches(3)))["labels"][:, :-1])


SST_TINY = ["d_model=32", "n_layers=1", "n_heads=2", "d_ff=64", "vocab_size=500", "max_tokens=3000",
            "max_epochs=none", "warmup_steps=5"]


def test_mlm_then_classify_from_the_mlm_encoder(tmp_path):
    torch.set_num_threads(1)
    mlm_dir, cls_dir = tmp_path / "mlm", tmp_path / "cls"
    assert main(["train", "mlm-sst2", *SST_TINY, "max_steps=20", "save_every=20", "eval_every=20",
                 "--out", str(mlm_dir)]) == 0
    mlm = load(mlm_dir / "checkpoint-00000020")
    assert main(["train", "classify-sst2", *SST_TINY, "max_steps=40", "save_every=40", "eval_every=40",
                 "lr=1e-3", f"init_from={mlm_dir / 'checkpoint-00000020'}", "--out", str(cls_dir)]) == 0
    results = json.loads((cls_dir / "results.json").read_text())
    assert 0.0 <= results["accuracy"] <= 1.0 and results["n"] == 872
    classifier = load(cls_dir / "checkpoint-00000040")
    # the classifier's body started from the MLM encoder: the token table moved only a little
    start = mlm.state_dict()["encoder.embed.weight"]
    end = classifier.state_dict()["encoder.embed.weight"]
    assert (end - start).norm() < 0.5 * start.norm()


def test_sst2_vocabulary_keeps_frequent_words_whole(tmp_path):
    # The preset trains WordPiece with the frequency score: common words stay one token each.
    # The textbook likelihood score at 8k splits them into letters (it prefers pairs whose parts
    # rarely occur apart), which cost the encoder ~8 points of dev accuracy (docs/benchmarks.md).
    words = ["the", "new", "film", "movie", "often", "funny"]
    task = configure("classify-sst2", [])
    task.prepare(tmp_path / "frequency")
    assert all(len(task.tok.encode(w, add_special_tokens=False)) == 1 for w in words)
    textbook = configure("classify-sst2", ["tokenizer_score=likelihood"])
    textbook.prepare(tmp_path / "likelihood")
    split = [w for w in words if len(textbook.tok.encode(w, add_special_tokens=False)) > 1]
    assert split, "the likelihood vocabulary was expected to split common words"
