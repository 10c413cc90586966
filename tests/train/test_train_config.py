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
