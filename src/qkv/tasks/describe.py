"""``qkv presets NAME``: a preset's whole recipe, every field with its value, in three groups."""

from __future__ import annotations

import dataclasses
import json

from ..config import ModelConfig
from ..train.config import TrainConfig
from .base import Task, option_names


def _rows(values: dict, defaults: dict) -> list[str]:
    width = max(map(len, values))
    rows = []
    for key, value in values.items():
        mark = "" if value == defaults.get(key, value) else f"   (library default {json.dumps(defaults[key])})"
        rows.append(f"  {key:<{width}} = {json.dumps(value, ensure_ascii=False)}{mark}")
    return rows


def recipe(task: Task) -> str:
    """The preset's task options, model and training fields; each marked where the preset sets
    it away from the library default. Vocabulary size and special ids come from the tokenizer."""
    options = {name: getattr(task, name) for name in option_names(type(task))}
    option_defaults = {f.name: f.default for f in dataclasses.fields(task) if f.default is not dataclasses.MISSING}
    lines = [f"{task.name}: {task.description}", "", f"task ({type(task).__name__}):"]
    lines += _rows(options, option_defaults)
    lines += ["", "model (ModelConfig; vocab_size and the special ids are set from the trained tokenizer):"]
    lines += _rows(task.model.to_dict(), ModelConfig().to_dict())
    lines += ["", "training (TrainConfig):"]
    lines += _rows(task.train.to_dict(), TrainConfig().to_dict())
    lines += ["", f"Change any of them with key=value: qkv train {task.name} lr=5e-4 position=rope"]
    return "\n".join(lines)


__all__ = ["recipe"]
