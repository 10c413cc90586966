"""Checkpoint directories: atomic writes, exact-resume state, loading with clear errors, averaging.

One checkpoint is one directory::

    checkpoint-00001200/
      config.json          {"qkv_version", "model": ModelConfig, "train": TrainConfig}
      model.safetensors    weights (a tied matrix is stored once; safetensors' save_model)
      optimizer.pt         {"optimizer", "scheduler", "scaler"} state dicts (torch.load weights_only)
      trainer_state.json   step, epoch, batch within the epoch, best metric, RNG states
      metrics.jsonl        every metrics line of the run up to this step

Atomicity: files are written into a hidden temporary directory beside the final one, fsynced,
and the directory is renamed into place. A rename within one file system is atomic, so a crash,
a full disk or an exception mid-write leaves either the old state or the new one under the
final name — never a half-written checkpoint. Leftover ``.tmp-*`` folders are ignored.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pickle

import torch
from safetensors import safe_open
from safetensors.torch import save_file, save_model
from torch import nn

# Reading lives in qkv.checkpoint (decoding uses it without the trainer); re-exported here.
from ..checkpoint import (CONFIG, PREFIX, WEIGHTS, _saved_shapes, check_weights, latest_checkpoint,  # noqa: F401
                          list_checkpoints, load, load_weights, read_config, require_dir, require_file)
from ..config import ModelConfig
from ..errors import CheckpointError  # re-exported
from .config import TrainConfig

OPTIMIZER, STATE, METRICS = "optimizer.pt", "trainer_state.json", "metrics.jsonl"



@dataclass
class TrainerState:
    """Where a run stands: enough, with the weights and optimizer, to continue it exactly.

    ``batch_in_epoch`` counts batches of epoch ``epoch`` already consumed; a resumed run skips
    that many. ``rng`` holds one entry per rank (see :mod:`qkv.train.rng`).
    """

    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    tokens_seen: int = 0
    best_metric: float | None = None
    evals_without_improvement: int = 0
    rng: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainerState":
        return cls(**data)


def checkpoint_name(step: int) -> str:
    return f"{PREFIX}{step:08d}"


# ---------------------------------------------------------------------------------------------
# atomic writing


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove(path: Path) -> None:
    """Delete a directory by first renaming it to a hidden name, so no half-deleted
    checkpoint is ever visible under a real name."""
    doomed = path.with_name(f".tmp-deleting-{path.name}-{secrets.token_hex(4)}")
    os.rename(path, doomed)
    shutil.rmtree(doomed, ignore_errors=True)


@contextmanager
def atomic_directory(final: str | Path) -> Iterator[Path]:
    """Yield a temporary directory; on a clean exit it becomes ``final`` in one rename.

    If ``final`` already exists it is replaced (moved aside first: POSIX cannot rename onto a
    non-empty directory). On an exception the temporary directory is removed and ``final`` is
    untouched.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".tmp-{final.name}-{os.getpid()}-{secrets.token_hex(4)}")
    tmp.mkdir()
    try:
        yield tmp
        for f in tmp.iterdir():
            _fsync(f)  # data on disk before the rename makes it visible
        _fsync(tmp)
        if final.exists():
            _remove(final)
        os.rename(tmp, final)
        _fsync(final.parent)  # the rename itself on disk
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n")


def write_checkpoint(
    directory: str | Path,
    model: nn.Module,
    train_config: TrainConfig,
    optimizer_state: dict[str, Any],
    state: TrainerState,
    metrics_file: Path | None = None,
) -> Path:
    """Write a complete checkpoint to ``directory`` atomically and return its path."""
    from .. import __version__

    with atomic_directory(directory) as tmp:
        _write_json(tmp / CONFIG, {"qkv_version": __version__, "model": model.config.to_dict(),
                                   "train": train_config.to_dict()})
        save_model(model, str(tmp / WEIGHTS))
        torch.save(optimizer_state, tmp / OPTIMIZER)
        _write_json(tmp / STATE, state.to_dict())
        if metrics_file is not None and metrics_file.exists():
            shutil.copyfile(metrics_file, tmp / METRICS)
        else:
            (tmp / METRICS).touch()
    return Path(directory)


# ---------------------------------------------------------------------------------------------
# finding and pruning checkpoints of a run


def prune_checkpoints(run_dir: str | Path, keep: int) -> None:
    """Delete all but the newest ``keep`` step checkpoints (``best``/``averaged`` stay)."""
    for old in list_checkpoints(run_dir)[:-keep]:
        _remove(old)


def remove_temporaries(run_dir: str | Path) -> None:
    """Delete the hidden ``.tmp-*`` leftovers of a run killed in the middle of a write."""
    for stale in Path(run_dir).glob(".tmp-*"):
        if stale.is_dir():
            shutil.rmtree(stale, ignore_errors=True)
        else:
            stale.unlink(missing_ok=True)


# ---------------------------------------------------------------------------------------------
# reading (the rest lives in qkv.checkpoint, which decoding uses without the trainer)


def read_optimizer_state(checkpoint_dir: str | Path) -> dict[str, Any]:
    """The optimizer/scheduler/scaler state dicts; ``weights_only`` refuses pickled code."""
    path = require_file(require_dir(checkpoint_dir), OPTIMIZER)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        if "Weights only load failed" not in str(e):
            raise CheckpointError(f"{path} is truncated or corrupted (UnpicklingError: {e})") from None
        # weights_only refuses pickles that would construct arbitrary objects (run code):
        # say the file was refused as unsafe, not that it is damaged.
        reason = str(e).split("\n")[-1].strip() or "it holds objects other than tensors and plain containers"
        raise CheckpointError(f"{path} was refused as unsafe: loading it would run code from the file "
                              f"({reason[:160]}); only load optimizer states you wrote yourself") from None
    except Exception as e:  # torch raises several types for a damaged zip
        raise CheckpointError(f"{path} is truncated or corrupted ({type(e).__name__}: {str(e)[:200]})") from None


def read_trainer_state(checkpoint_dir: str | Path) -> TrainerState:
    path = require_file(require_dir(checkpoint_dir), STATE)
    try:
        return TrainerState.from_dict(json.loads(path.read_text()))
    except (json.JSONDecodeError, TypeError) as e:
        raise CheckpointError(f"{path} cannot be read as trainer state ({e})") from None


def check_model_config(checkpoint_dir: str | Path, config: ModelConfig) -> None:
    """Raise unless the checkpoint was trained with ``config`` (resuming into another model)."""
    saved, current = read_config(checkpoint_dir)["model"], config.to_dict()
    diff = sorted(k for k in set(saved) | set(current) if saved.get(k) != current.get(k))
    if diff:
        details = ", ".join(f"{k}: checkpoint {saved.get(k)!r} vs model {current.get(k)!r}" for k in diff[:5])
        raise CheckpointError(f"{checkpoint_dir} was trained with a different ModelConfig ({details})")


# ---------------------------------------------------------------------------------------------
# averaging


def average_checkpoints(checkpoint_dirs: list[str | Path], out_dir: str | Path) -> Path:
    """Write a model-only checkpoint whose weights are the mean of the given checkpoints'.

    Averaging the last few checkpoints smooths out the noise of the final updates (Vaswani et
    al., 2017 §6.1 average the last 5 or 20). Integer buffers are taken from the last one.
    """
    if len(checkpoint_dirs) < 2:
        raise CheckpointError(f"averaging needs at least 2 checkpoints, got {len(checkpoint_dirs)}")
    total: dict[str, torch.Tensor] = {}
    dtypes: dict[str, torch.dtype] = {}
    for d in checkpoint_dirs:
        path = require_file(require_dir(d), WEIGHTS)
        if total and _saved_shapes(path) != {k: tuple(v.shape) for k, v in total.items()}:
            raise CheckpointError(f"{path} has different tensors from {checkpoint_dirs[0]}; cannot average")
        with safe_open(str(path), framework="pt") as f:
            for k in f.keys():
                t = f.get_tensor(k)
                dtypes[k] = t.dtype
                if k in total and t.is_floating_point():
                    total[k] += t.float()  # accumulate in float32 even for half-precision weights
                else:
                    total[k] = t.float() if t.is_floating_point() else t
    n = len(checkpoint_dirs)
    averaged = {k: (v / n).to(dtypes[k]) if v.is_floating_point() else v for k, v in total.items()}
    config = read_config(checkpoint_dirs[-1])
    config["averaged_from"] = [Path(d).name for d in checkpoint_dirs]
    with atomic_directory(out_dir) as tmp:
        _write_json(tmp / CONFIG, config)
        save_file(averaged, str(tmp / WEIGHTS))
    return Path(out_dir)


__all__ = ["CheckpointError", "TrainerState", "atomic_directory", "write_checkpoint", "load", "load_weights",
           "check_weights", "check_model_config", "read_config", "read_trainer_state", "read_optimizer_state", "list_checkpoints",
           "latest_checkpoint", "prune_checkpoints", "remove_temporaries", "average_checkpoints", "checkpoint_name"]
