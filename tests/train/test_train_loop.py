"""The Trainer end to end on tiny models: it learns, stops cleanly, and its gradients are right."""

from __future__ import annotations

import copy
import json
import os
import signal
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import qkv
from qkv.train import TrainConfig, Trainer, TrainingError
from train_helpers import IGNORE, lm_batch, lm_windows, ragged_lm_batches, tiny_model


def fast_config(**changes: object) -> TrainConfig:
    fields = dict(lr=3e-3, schedule="constant", warmup_steps=5, label_smoothing=0.0, weight_decay=0.0,
                  max_steps=10, device="cpu", precision="fp32")  # exact-arithmetic checks need fp32
    fields.update(changes)
    return TrainConfig(**fields)


def metrics(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_tiny_lm_overfits_a_paragraph(tmp_path: Path) -> None:
    model = tiny_model("lm")
    batch = lm_batch(lm_windows())
    result = Trainer(model, fast_config(max_steps=250), lambda e: [batch], tmp_path, progress=False).fit()
    losses = [m["loss"] for m in metrics(tmp_path)]
    assert result.stop_reason == "max_steps" and len(losses) == 250
    assert losses[0] > 3.0 and losses[-1] < 0.05
    predicted = qkv.load(result.checkpoint).forward_batch(batch).argmax(-1)
    # after a few characters of context every next character is determined by the paragraph
    assert torch.equal(predicted[:, 4:], batch["labels"][:, 4:])


def seq2seq_batch() -> dict[str, torch.Tensor]:
    """Five pairs 'copy the digits reversed', hand-padded like a translation collator's output."""
    pairs = [([5, 6, 7], [7, 6, 5]), ([8, 9], [9, 8]), ([10, 11, 12, 13], [13, 12, 11, 10]),
             ([14], [14]), ([6, 15, 9], [9, 15, 6])]
    pad, bos, eos = 0, 2, 3
    S = max(len(s) for s, _ in pairs) + 1
    rows = {k: [] for k in ("src", "tgt_in", "labels")}
    for src, tgt in pairs:
        rows["src"].append(src + [eos] + [pad] * (S - len(src) - 1))
        rows["tgt_in"].append([bos] + tgt + [pad] * (S - len(tgt) - 1))
        rows["labels"].append(tgt + [eos] + [IGNORE] * (S - len(tgt) - 1))
    batch = {k: torch.tensor(v) for k, v in rows.items()}
    batch["src_mask"], batch["tgt_mask"] = batch["src"] != pad, batch["tgt_in"] != pad
    return batch


def test_tiny_seq2seq_overfits_a_handful_of_pairs(tmp_path: Path) -> None:
    model = tiny_model("seq2seq")
    batch = seq2seq_batch()
    result = Trainer(model, fast_config(max_steps=150), lambda e: [batch], tmp_path, progress=False).fit()
    assert metrics(tmp_path)[-1]["loss"] < 0.05
    predicted = qkv.load(result.checkpoint).forward_batch(batch).argmax(-1)
    keep = batch["labels"] != IGNORE
    assert torch.equal(predicted[keep], batch["labels"][keep])


def test_nan_loss_stops_naming_the_step_and_keeps_the_last_good_checkpoint(tmp_path: Path) -> None:
    model = tiny_model("lm")
    forward = model.forward_batch
    model.forward_batch = lambda b: forward(b) * (float("nan") if b.get("poison") else 1.0)
    good = lm_batch(lm_windows()[:4])
    data = [good, good, good, good, {**good, "poison": True}, good]
    trainer = Trainer(model, fast_config(save_every=2, keep_last=None), lambda e: data, tmp_path, progress=False)
    with pytest.raises(TrainingError, match=r"loss is nan at step 5.*checkpoint-00000004"):
        trainer.fit()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint-00000002", "checkpoint-00000004",
                                                          "metrics.jsonl"]
    saved = load_file(tmp_path / "checkpoint-00000004" / "model.safetensors")
    current = model.state_dict()
    assert all(torch.equal(current[k], v) for k, v in saved.items())  # no update from the NaN step
    assert [m["step"] for m in metrics(tmp_path)] == [1, 2, 3, 4]


def test_sigint_saves_a_checkpoint_then_returns(tmp_path: Path) -> None:
    batch = lm_batch(lm_windows()[:4])
    previous = signal.getsignal(signal.SIGINT)

    def batches(epoch: int):
        for i in range(20):
            if i == 3:
                os.kill(os.getpid(), signal.SIGINT)  # "Ctrl-C" while the run is going
            yield batch

    trainer = Trainer(tiny_model("lm"), fast_config(max_steps=20), batches, tmp_path, progress=False)
    result = trainer.fit()
    assert result.stop_reason == "interrupted" and 1 <= result.step < 20
    assert result.checkpoint == tmp_path / f"checkpoint-{result.step:08d}" and result.checkpoint.is_dir()
    assert json.loads((result.checkpoint / "trainer_state.json").read_text())["step"] == result.step
    assert signal.getsignal(signal.SIGINT) is previous


def test_time_budget_saves_and_stops(tmp_path: Path) -> None:
    batch = lm_batch(lm_windows()[:4])
    trainer = Trainer(tiny_model("lm"), fast_config(max_steps=1000, max_minutes=1e-9), lambda e: [batch],
                      tmp_path, progress=False)
    result = trainer.fit()
    assert result.stop_reason == "time_budget" and result.step == 1 and result.checkpoint.is_dir()


def test_early_stopping_keeps_best_and_prunes_and_averages(tmp_path: Path) -> None:
    batch = lm_batch(lm_windows()[:4])
    scores = iter([3.0, 2.0, 2.5, 2.6, 2.7, 1.0])

    def evaluate(model: torch.nn.Module) -> dict[str, float]:
        assert not model.training and not torch.is_grad_enabled()
        return {"bleu": next(scores)}

    config = fast_config(max_steps=50, eval_every=1, save_every=1, keep_last=2, average_last=2,
                         early_stopping_metric="bleu", early_stopping_mode="max", early_stopping_patience=3)
    result = Trainer(tiny_model("lm"), config, lambda e: [batch], tmp_path, evaluate=evaluate,
                     progress=False).fit()
    assert result.stop_reason == "early_stopping" and result.step == 4 and result.best_metric == 3.0
    assert json.loads((tmp_path / "best" / "trainer_state.json").read_text())["step"] == 1
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == [
        "averaged", "best", "checkpoint-00000003", "checkpoint-00000004"]
    assert [m["eval"]["bleu"] for m in metrics(tmp_path) if "eval" in m] == [3.0, 2.0, 2.5, 2.6]
    qkv.load(result.averaged)


def gradients(model: torch.nn.Module, config: TrainConfig, batches: list[dict], tmp_path: Path) -> dict:
    trainer = Trainer(model, config, lambda e: batches, tmp_path, progress=False)
    trainer.accumulate_gradients(batches)
    return {n: p.grad.clone() for n, p in model.named_parameters()}


def test_accumulation_gives_the_gradient_of_the_whole_batch(tmp_path: Path) -> None:
    a, b = ragged_lm_batches(2, B=3)
    whole = {k: torch.cat([a[k], b[k]]) for k in a}
    model = tiny_model("lm")
    split = gradients(model, fast_config(accumulation_steps=2, label_smoothing=0.1), [a, b], tmp_path / "1")
    plain = gradients(copy.deepcopy(model), fast_config(label_smoothing=0.1), [whole], tmp_path / "2")
    for name in plain:
        torch.testing.assert_close(split[name], plain[name], rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("family", ["lm", "seq2seq"])
def test_gradient_checkpointing_gives_the_same_gradients(tmp_path: Path, family: str) -> None:
    model = tiny_model(family)
    batch = ragged_lm_batches(1)[0] if family == "lm" else seq2seq_batch()
    plain = gradients(model, fast_config(), [batch], tmp_path / "1")
    again = copy.deepcopy(model)
    checkpointed = gradients(again, fast_config(gradient_checkpointing=True), [batch], tmp_path / "2")
    assert all(m.gradient_checkpointing for m in again.modules() if isinstance(m, qkv.nn.Stack))
    for name in plain:
        torch.testing.assert_close(checkpointed[name], plain[name], rtol=1e-5, atol=1e-7)


def test_bf16_autocast_on_cpu_trains(tmp_path: Path) -> None:
    batch = lm_batch(lm_windows()[:4])
    result = Trainer(tiny_model("lm"), fast_config(max_steps=3, precision="bf16"), lambda e: [batch], tmp_path,
                     progress=False).fit()
    losses = [m["loss"] for m in metrics(tmp_path)]
    assert result.step == 3 and all(l == l for l in losses) and losses[-1] < losses[0]
    with pytest.raises(ValueError, match="fp16"):
        Trainer(tiny_model("lm"), fast_config(precision="fp16"), lambda e: [batch], tmp_path / "x")


def test_epochs_and_fresh_output_dir(tmp_path: Path) -> None:
    data = ragged_lm_batches(5)
    config = fast_config(max_steps=None, max_epochs=2, accumulation_steps=2)
    result = Trainer(tiny_model("lm"), config, lambda e: data, tmp_path, progress=False).fit()
    lines = metrics(tmp_path)
    assert result.stop_reason == "max_epochs" and result.step == 6  # ceil(5 / 2) steps per epoch
    assert [m["epoch"] for m in lines] == [0, 0, 0, 1, 1, 1]
    with pytest.raises(qkv.train.CheckpointError, match="resume"):
        Trainer(tiny_model("lm"), config, lambda e: data, tmp_path, progress=False).fit()


def test_early_stopping_needs_an_evaluate_callable(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="early_stopping_patience=2 needs an evaluate"):
        Trainer(tiny_model("lm"), fast_config(early_stopping_patience=2), lambda e: [], tmp_path)
