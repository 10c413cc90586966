"""The translation preset end to end: tokenizer, batches, trainer, checkpoint, BLEU, CLI."""

from __future__ import annotations

import json
import statistics

import pytest
import torch

from qkv import load
from qkv.cli import main
from qkv.tasks.run import configure

TINY = ["d_model=128", "n_layers=2", "n_heads=4", "d_ff=256", "norm_placement=pre", "dropout_embed=0", "dropout_residual=0",
        "dropout_attention=0", "vocab_size=400", "train_limit=64", "test_limit=8", "max_tokens=2000"]


@pytest.fixture(scope="module")
def overfit_run(tmp_path_factory):
    """64 real Multi30k pairs, trained until memorised (the acceptance overfit check)."""
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("run")
    code = main(["train", "translate-de-en", *TINY, "lr=3e-3", "schedule=constant", "warmup_steps=30",
                 "max_steps=450", "average_last=none", "max_epochs=none", "label_smoothing=0", "save_every=150",
                 "eval_every=450", "--out", str(out)])
    assert code == 0
    return out


def test_tiny_translator_overfits_64_pairs(overfit_run):
    lines = [json.loads(line) for line in (overfit_run / "metrics.jsonl").read_text().splitlines()]
    losses = [line["loss"] for line in lines if "loss" in line]
    assert losses[0] > 4.0 and statistics.median(losses[-10:]) < 0.1, (losses[0], losses[-10:])
    task = configure("translate-de-en", TINY)
    task.prepare(overfit_run)
    model = load(overfit_run / "checkpoint-00000450")
    result = task.test(model, split="train", beams=2, limit=16)  # memorised pairs come back
    assert result["bleu"] > 80, result


def test_results_and_tokenizer_are_saved(overfit_run):
    results = json.loads((overfit_run / "results.json").read_text())
    assert results["n"] == 8 and 0 <= results["bleu"] <= 100 and results["examples"]
    assert (overfit_run / "checkpoint-00000450" / "tokenizer.json").exists()


def test_translate_command(overfit_run, capsys):
    assert main(["translate", str(overfit_run / "checkpoint-00000450"), "Zwei Hunde spielen.", "--beam", "2"]) == 0
    out = capsys.readouterr().out.strip()
    assert out and "\n" not in out


def test_unknown_preset_and_override_are_clear_errors(capsys):
    assert main(["train", "translate-xx"]) == 2
    assert "unknown preset 'translate-xx'" in capsys.readouterr().err
    assert main(["train", "translate-de-en", "d_modle=3"]) == 2
    assert "did you mean d_model" in capsys.readouterr().err
