"""TrainConfig: validation messages name field, value and what is allowed; JSON round trip."""

from __future__ import annotations

import json

import pytest

from qkv.config import ConfigError
from qkv.train import TrainConfig


def test_defaults_are_valid_and_round_trip_through_json() -> None:
    config = TrainConfig(betas=(0.9, 0.999), no_decay=("bias",), schedule="cosine", precision="bf16",
                         max_minutes=1.5, average_last=2)
    text = config.to_json()
    assert json.loads(text)["betas"] == [0.9, 0.999]  # plain JSON, no Python tuples
    assert TrainConfig.from_json(text) == config
    assert TrainConfig.from_dict(TrainConfig().to_dict()) == TrainConfig()


@pytest.mark.parametrize(
    "changes, words",
    [
        ({"schedule": "exponential"}, ["schedule", "'exponential'", "'noam'", "'cosine'"]),
        ({"precision": "fp8"}, ["precision", "'fp8'", "'bf16'", "'fp16'"]),
        ({"device": "tpu"}, ["device", "'tpu'", "'auto'"]),
        ({"no_decay": ("norm", "layers")}, ["no_decay", "'layers'", "'embedding'"]),
        ({"lr": -1.0}, ["lr", "-1.0"]),
        ({"label_smoothing": 1.0}, ["label_smoothing", "1.0"]),
        ({"accumulation_steps": 0}, ["accumulation_steps", "0"]),
        ({"schedule": "noam", "warmup_steps": 0}, ["warmup_steps", "noam"]),
        ({"max_steps": None, "max_epochs": None}, ["max_steps", "max_epochs", "max_minutes"]),
        ({"average_last": 5, "keep_last": 3}, ["average_last", "5", "keep_last", "3"]),
        ({"grad_clip": True}, ["grad_clip", "True"]),
    ],
)
def test_invalid_values_name_field_value_and_allowed(changes: dict, words: list[str]) -> None:
    with pytest.raises(ConfigError) as info:
        TrainConfig(**changes)
    for word in words:
        assert word in str(info.value)


def test_overrides_parse_types_including_tuples() -> None:
    config = TrainConfig().override(["lr=0.001", "schedule=linear", "betas=0.9,0.999", "grad_clip=none",
                                     "no_decay=bias,norm", "gradient_checkpointing=true"])
    assert config.lr == 0.001 and config.schedule == "linear" and config.betas == (0.9, 0.999)
    assert config.grad_clip is None and config.no_decay == ("bias", "norm") and config.gradient_checkpointing
    with pytest.raises(ConfigError, match="lrr"):
        TrainConfig().override(["lrr=1"])
    with pytest.raises(ConfigError, match="no_decay"):
        TrainConfig().override(["no_decay=bias,weights"])


def test_checkpoints_of_older_runs_still_load_their_train_config() -> None:
    # qkv 0.1.0 wrote max_tokens/batch_size into TrainConfig although only the task reads them.
    old = {**TrainConfig().to_dict(), "max_tokens": None, "batch_size": None}
    assert TrainConfig.from_dict(old) == TrainConfig()
    with pytest.raises(ConfigError, match="max_token"):
        TrainConfig().override(["max_tokens=3500"])  # now a task option, not a training field


@pytest.mark.parametrize("fast,expected", [(True, "bf16"), (False, "fp32")])
def test_precision_auto_picks_bf16_only_where_the_cpu_runs_it_fast(monkeypatch, fast, expected) -> None:
    import torch

    from qkv.train import runtime

    monkeypatch.setattr(runtime, "cpu_has_fast_bf16", lambda: fast)
    assert TrainConfig().precision == "auto"
    assert runtime.resolve_precision("auto", torch.device("cpu")) == expected
    assert runtime.resolve_precision("fp32", torch.device("cpu")) == "fp32"  # an explicit choice stays
    assert runtime.resolve_precision("bf16", torch.device("cpu")) == "bf16"
    with pytest.raises(ConfigError, match="fp16"):
        runtime.resolve_precision("fp16", torch.device("cpu"))


def test_trainer_runs_the_resolved_precision(monkeypatch, tmp_path) -> None:
    import torch

    from qkv.train import Trainer, runtime
    from tests.conftest import tiny

    from qkv import build_model

    seen = []
    real = runtime.autocast
    monkeypatch.setattr(runtime, "cpu_has_fast_bf16", lambda: False)
    monkeypatch.setattr(runtime, "autocast", lambda p, d: seen.append(p) or real(p, d))
    model = build_model(tiny(family="lm"))
    batch = {"input_ids": torch.randint(4, 50, (2, 6)), "labels": torch.randint(4, 50, (2, 6))}
    trainer = Trainer(model, TrainConfig(max_steps=1, device="cpu"), lambda e: [batch], tmp_path, progress=False)
    trainer.fit()
    assert trainer.precision == "fp32" and seen == ["fp32"]
