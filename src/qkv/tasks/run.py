"""``qkv train`` and ``qkv evaluate``: a preset, its overrides, a run folder, the trainer.

A run folder holds ``task.json`` (preset and overrides), ``tokenizer.json``, the trainer's
checkpoints (``checkpoint-*/``, ``best/``, ``averaged/``), ``metrics.jsonl`` and, at the end,
``results.json`` with the test metric of the final (averaged) weights.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import torch

from ..config import ConfigError, ModelConfig, parse_overrides
from ..models import build_model, describe
from ..train import Trainer
from ..train.checkpoint import latest_checkpoint, load
from ..train.config import TrainConfig
from . import get_task
from .common import TOKENIZER_FILE

TASK_FIELDS = {"vocab_size", "max_tokens", "tokenizer_kind", "train_limit", "test_limit", "batch_size",
               "steps_per_epoch", "init_from", "mask_prob", "random_prob", "tokenizer_score"}


def split_overrides(items: list[str]) -> tuple[list[str], list[str], dict]:
    """Route each ``key=value`` to ModelConfig, TrainConfig or the task; unknown keys fail."""
    model_keys = set(ModelConfig.__dataclass_fields__) - TASK_FIELDS
    train_keys = set(TrainConfig.__dataclass_fields__) - TASK_FIELDS
    model, train, task = [], [], {}
    for item in items:
        key, _, value = item.partition("=")
        if key in TASK_FIELDS:
            task[key] = _task_value(key, value)
        elif key in model_keys:
            model.append(item)
        elif key in train_keys:
            train.append(item)
        else:
            parse_overrides([item], ModelConfig)  # raises the "did you mean" message
            raise ConfigError(f"unknown override {key!r}")
    return model, train, task


def _task_value(key: str, value: str):
    if key in ("tokenizer_kind", "init_from", "tokenizer_score"):
        return value
    return float(value) if key in ("mask_prob", "random_prob") else int(value)


def configure(preset: str, overrides: list[str]):
    task = get_task(preset)
    model, train, extra = split_overrides(overrides)
    task.model = task.model.override(model)
    task.train = task.train.override(train)
    for key, value in extra.items():
        setattr(task, key, value)
    return task


def train(preset: str, overrides: list[str], *, out: str | None = None, resume: str | None = None,
          max_minutes: float | None = None, threads: int | None = None) -> int:
    if threads:
        torch.set_num_threads(threads)
    run_dir = Path(resume if resume and Path(resume, "task.json").exists() else out or f"runs/{preset}")
    if resume and not Path(resume, "task.json").exists():
        run_dir = Path(resume).parent  # a checkpoint folder inside the run folder
    if resume:
        saved = json.loads((run_dir / "task.json").read_text())
        preset, overrides = saved["preset"], saved["overrides"] + overrides
    task = configure(preset, overrides)
    if max_minutes is not None:
        task.train = task.train.replace(max_minutes=max_minutes)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "task.json").write_text(json.dumps({"preset": preset, "overrides": overrides}, indent=2))
    start = time.time()
    tok = task.prepare(run_dir)
    torch.manual_seed(task.train.seed)
    model = build_model(task.model_config())
    if hasattr(task, "initial_weights") and not resume:
        task.initial_weights(model)
    print(f"{preset}: {describe(model)}; tokenizer {tok.vocab_size} tokens ({time.time() - start:.0f}s to prepare)")
    trainer = Trainer(model, task.train, task.batches(), run_dir, evaluate=task.evaluate)
    if resume:
        trainer.resume(None if Path(resume) == run_dir else resume)
    result = trainer.fit()
    final = result.averaged or result.checkpoint
    for folder in {result.checkpoint, final, run_dir / "best"}:
        if folder.exists():
            shutil.copy(run_dir / TOKENIZER_FILE, folder / TOKENIZER_FILE)
    if result.stop_reason == "interrupted":
        print(f"interrupted; resume with: qkv train {preset} --resume {run_dir}")
        return 130
    metrics = task.test(load(final))
    metrics.update(checkpoint=str(final), steps=result.step, stop_reason=result.stop_reason,
                   train_minutes=round((time.time() - start) / 60, 1))
    (run_dir / "results.json").write_text(json.dumps(metrics, indent=2, ensure_ascii=False))
    print(json.dumps({k: v for k, v in metrics.items() if k != "examples"}, indent=2))
    return 0


def evaluate(checkpoint: str, *, split: str = "test", beams: int = 4, limit: int | None = None) -> dict:
    path = Path(checkpoint)
    run_dir = path if (path / "task.json").exists() else path.parent
    if not (run_dir / "task.json").exists():
        raise FileNotFoundError(f"no task.json in {path} or {path.parent}: is this a folder written by `qkv train`?")
    if path == run_dir:
        path = run_dir / "averaged" if (run_dir / "averaged").exists() else latest_checkpoint(run_dir)
    saved = json.loads((run_dir / "task.json").read_text())
    task = configure(saved["preset"], saved["overrides"])
    task.prepare(run_dir)
    return {"checkpoint": str(path), **task.test(load(path), split=split, beams=beams, limit=limit)}
