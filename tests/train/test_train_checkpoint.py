"""Checkpoint directories: round trip, clear errors on damage, atomic writes, averaging."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import qkv
from qkv.train import CheckpointError, TrainConfig, Trainer, average_checkpoints
from qkv.train import checkpoint as ckpt
from train_helpers import lm_batch, lm_windows, tiny_config, tiny_model


def trained_checkpoint(tmp_path: Path, steps: int = 2, **config: object) -> tuple[Trainer, Path]:
    model = tiny_model("lm")
    batch = lm_batch(lm_windows()[:4])
    cfg = TrainConfig(lr=1e-2, schedule="constant", warmup_steps=0, max_steps=steps, device="cpu", precision="fp32",
                      **config)
    trainer = Trainer(model, cfg, lambda epoch: [batch], tmp_path / "run", progress=False)
    result = trainer.fit()
    return trainer, result.checkpoint


def test_load_rebuilds_the_model_with_identical_weights(tmp_path: Path) -> None:
    trainer, path = trained_checkpoint(tmp_path)
    assert {p.name for p in path.iterdir()} == {"config.json", "model.safetensors", "optimizer.pt",
                                                "trainer_state.json", "metrics.jsonl"}
    config = json.loads((path / "config.json").read_text())
    assert config["qkv_version"] == qkv.__version__ and config["train"]["max_steps"] == 2
    loaded = qkv.load(path)
    assert not loaded.training
    for (name, a), (_, b) in zip(trainer.model.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), name
    assert loaded.head.proj.weight is loaded.decoder.embed.weight  # the tie survives
    optimizer = torch.load(path / "optimizer.pt", weights_only=True)
    assert set(optimizer) == {"optimizer", "scheduler", "scaler"}
    state = json.loads((path / "trainer_state.json").read_text())
    assert state["step"] == 2 and len(state["rng"]) == 1 and len(state["rng"][0]["torch"]) > 0


def test_missing_directory_and_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="does not exist"):
        qkv.load(tmp_path / "nope")
    _, path = trained_checkpoint(tmp_path)
    with pytest.raises(CheckpointError, match="training run directory.*checkpoint-00000002"):
        qkv.load(path.parent)  # the run directory, not a checkpoint
    (path / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match="no model.safetensors"):
        qkv.load(path)


@pytest.mark.parametrize("keep_bytes", [5, 200, -16])
def test_truncated_safetensors_is_reported_as_such(tmp_path: Path, keep_bytes: int) -> None:
    _, path = trained_checkpoint(tmp_path)
    weights = path / "model.safetensors"
    size = weights.stat().st_size
    with weights.open("r+b") as f:
        f.truncate(keep_bytes if keep_bytes > 0 else size + keep_bytes)
    with pytest.raises(CheckpointError, match="truncated or corrupted"):
        qkv.load(path)


def test_config_of_another_shape_names_the_tensor_and_both_shapes(tmp_path: Path) -> None:
    _, path = trained_checkpoint(tmp_path)
    config = json.loads((path / "config.json").read_text())
    config["model"]["d_model"] = 48  # as if config.json came from a wider model
    (path / "config.json").write_text(json.dumps(config))
    wide = qkv.build_model(tiny_config("lm", d_model=48)).state_dict()
    saved = load_file(path / "model.safetensors")
    name = "decoder.embed.weight"
    with pytest.raises(CheckpointError) as info:
        qkv.load(path)
    message = str(info.value)
    assert name in message
    assert str(tuple(wide[name].shape)) in message and str(tuple(saved[name].shape)) in message


def test_config_of_another_family_lists_missing_tensors(tmp_path: Path) -> None:
    _, path = trained_checkpoint(tmp_path)
    config = json.loads((path / "config.json").read_text())
    config["model"]["family"] = "seq2seq"
    (path / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="needs are missing.*cross_attn"):
        qkv.load(path)


def test_a_write_failing_midway_leaves_the_previous_checkpoint_intact(tmp_path: Path, monkeypatch) -> None:
    trainer, good = trained_checkpoint(tmp_path, steps=2)
    before = {k: v.clone() for k, v in load_file(good / "model.safetensors").items()}
    trainer.state.step += 1  # pretend we moved on

    def half_written(model, filename, *args, **kwargs):
        Path(filename).write_bytes(b"\x00" * 100)
        raise OSError("No space left on device")

    monkeypatch.setattr(ckpt, "save_model", half_written)
    with pytest.raises(OSError, match="No space"):
        trainer.save()
    run = good.parent
    assert [p.name for p in ckpt.list_checkpoints(run)] == [good.name]
    assert not [p for p in run.iterdir() if p.name.startswith(".tmp")]
    after = load_file(good / "model.safetensors")
    assert all(torch.equal(before[k], after[k]) for k in before)
    # and the same when replacing an existing directory: the old one survives a failed write
    with pytest.raises(OSError):
        trainer.save(good)
    assert all(torch.equal(before[k], v) for k, v in load_file(good / "model.safetensors").items())


def test_atomic_directory_replaces_only_on_success(tmp_path: Path) -> None:
    target = tmp_path / "d"
    with ckpt.atomic_directory(target) as tmp:
        (tmp / "a").write_text("1")
    with pytest.raises(RuntimeError):
        with ckpt.atomic_directory(target) as tmp:
            (tmp / "a").write_text("2")
            raise RuntimeError("boom")
    assert (target / "a").read_text() == "1" and os.listdir(tmp_path) == ["d"]
    with ckpt.atomic_directory(target) as tmp:
        (tmp / "b").write_text("3")
    assert os.listdir(target) == ["b"]


def test_average_of_checkpoints_is_the_elementwise_mean(tmp_path: Path) -> None:
    _, last = trained_checkpoint(tmp_path, steps=3, save_every=1, keep_last=None)
    dirs = ckpt.list_checkpoints(last.parent)
    assert [d.name for d in dirs] == [f"checkpoint-{i:08d}" for i in (1, 2, 3)]
    out = average_checkpoints(dirs[1:], tmp_path / "avg")
    a, b = (load_file(d / "model.safetensors") for d in dirs[1:])
    averaged = qkv.load(out).state_dict()
    name = "decoder.layers.0.ffn.up.weight"
    torch.testing.assert_close(averaged[name], (a[name] + b[name]) / 2)
    assert not torch.equal(a[name], b[name])  # the average is not trivially one of them
    shutil.rmtree(dirs[0])
    with pytest.raises(CheckpointError, match="at least 2"):
        average_checkpoints(dirs[2:], tmp_path / "avg2")


def test_resume_into_a_different_model_names_the_differing_field(tmp_path: Path) -> None:
    _, path = trained_checkpoint(tmp_path)
    other = tiny_model("lm", n_heads=2)
    trainer = Trainer(other, TrainConfig(device="cpu"), lambda e: [], tmp_path / "other", progress=False)
    with pytest.raises(CheckpointError, match="n_heads: checkpoint 4 vs model 2"):
        trainer.resume(path)
