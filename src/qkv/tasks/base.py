"""``Task``: the one shape every preset has — a corpus, a tokenizer, a model and a recipe.

    task.prepare(run_dir)        train or load the tokenizer, read and encode the data
    task.model_config()          the ModelConfig with the tokenizer's vocabulary and special ids
    task.initial_weights(model)  optional warm start (e.g. an MLM encoder for a classifier)
    task.batches()               batches(epoch) for the Trainer
    task.evaluate(model)         validation metrics during training
    task.test(model, split=...)  the preset's published metric on a split

A task is a keyword-only dataclass. Its fields fall in three groups: ``name``/``description``, the two
configs (``model``, ``train``), and the task's own options (vocabulary size, batch budget, ...).
The options are exactly the dataclass fields not marked ``fixed`` and not private; command-line
``key=value`` overrides are routed to them by that declaration (see :func:`option_names`),
typed by their annotations.
"""

from __future__ import annotations

import abc
import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from torch import nn

from ..config import ModelConfig, check_types, coerce
from ..errors import ConfigError
from ..train.config import TrainConfig
from ..train.loop import Batches


def fixed(default: Any = dataclasses.MISSING) -> Any:
    """A task field that defines the task (its corpus, its direction) and is not an option."""
    return field(default=default, metadata={"fixed": True})


@dataclass(kw_only=True)
class Task(abc.ABC):
    """What every preset provides. Subclasses add their options as dataclass fields."""

    name: str = fixed()
    model: ModelConfig = fixed()
    train: TrainConfig = fixed()
    description: str = fixed("")

    family: ClassVar[str]  # the ModelConfig family this task trains ("seq2seq", "lm", "encoder")
    splits: ClassVar[tuple[str, ...]]  # splits test() can score
    test_split: ClassVar[str]  # the split behind the preset's documented number

    def __post_init__(self) -> None:
        check_types(self, option_names(type(self)))
        if self.model.family != self.family:
            raise ConfigError(f"preset {self.name!r} trains family {self.family!r}, not family={self.model.family!r}")

    @abc.abstractmethod
    def prepare(self, out_dir: Path) -> Any:
        """Train (or load from ``out_dir``) the tokenizer and encode the data; returns the tokenizer."""

    @abc.abstractmethod
    def model_config(self) -> ModelConfig:
        """``self.model`` completed with the prepared tokenizer's vocabulary and special ids."""

    @abc.abstractmethod
    def batches(self) -> Batches:
        """``batches(epoch)``: the training batches of one epoch, deterministic in ``epoch``."""

    @abc.abstractmethod
    def evaluate(self, model: nn.Module) -> dict[str, float]:
        """Validation metrics, called by the trainer during training."""

    @abc.abstractmethod
    def test(self, model: nn.Module, split: str | None = None, beams: int = 4, limit: int | None = None) -> dict:
        """The preset's metric on ``split`` (default ``test_split``); ``limit`` = first N examples."""

    def initial_weights(self, model: nn.Module) -> None:
        """Warm-start ``model`` before training (a fresh run only). Default: keep the initialisation."""

    def check_split(self, split: str | None) -> str:
        split = split or self.test_split
        if split not in self.splits:
            raise ConfigError(f"preset {self.name!r} has no split {split!r} to score; choose one of "
                              f"{', '.join(self.splits)}")
        return split

    def with_options(self, options: dict[str, str]) -> "Task":
        """A copy with the given option strings (``{"vocab_size": "4000"}``) parsed and set."""
        types = typing.get_type_hints(type(self))
        known = option_names(type(self))
        values = {}
        for key, text in options.items():
            if key not in known:
                raise ConfigError(f"{key!r} is not an option of preset {self.name!r}")
            values[key] = coerce(text, types[key], key)
        return dataclasses.replace(self, **values)


def option_names(task_cls: type) -> list[str]:
    """The task's own ``key=value`` options: its fields not marked fixed and not private."""
    return [f.name for f in dataclasses.fields(task_cls)
            if not f.metadata.get("fixed") and not f.name.startswith("_")]


__all__ = ["Task", "fixed", "option_names"]
