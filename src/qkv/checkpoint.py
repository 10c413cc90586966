"""Reading checkpoint directories for inference: ``qkv.load`` and the checks behind it.

Training writes checkpoints (``qkv.train.checkpoint``); everything that only *reads* one —
``qkv translate``, ``qkv generate``, evaluation, export — comes here, so decoding never imports
the trainer. Every failure is a :class:`~qkv.errors.CheckpointError` that names the folder or
file and what is wrong with it.

A checkpoint directory holds ``config.json`` (``{"qkv_version", "model", "train"}``) and
``model.safetensors``; a training checkpoint adds ``optimizer.pt`` and ``trainer_state.json``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_model
from torch import nn

from .config import ModelConfig
from .errors import CheckpointError
from .models import build_model

CONFIG, WEIGHTS = "config.json", "model.safetensors"
PREFIX = "checkpoint-"


def list_checkpoints(run_dir: str | Path) -> list[Path]:
    """The complete step checkpoints of a run directory, oldest first."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        return []
    found = [p for p in run_dir.iterdir() if p.is_dir() and p.name.startswith(PREFIX)]
    return sorted(found, key=lambda p: p.name)  # zero-padded step numbers sort as text


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    found = list_checkpoints(run_dir)
    return found[-1] if found else None


def require_dir(checkpoint_dir: str | Path) -> Path:
    path = Path(checkpoint_dir)
    if not path.exists():
        raise CheckpointError(f"checkpoint directory {path} does not exist")
    if not path.is_dir():
        raise CheckpointError(f"{path} is a file, not a checkpoint directory")
    if not (path / CONFIG).exists():
        latest = latest_checkpoint(path)
        hint = (f"; it looks like a training run directory, pass one of its checkpoints, e.g. {latest}"
                if latest else f"; it holds {sorted(p.name for p in path.iterdir()) or 'nothing'}")
        raise CheckpointError(f"{path} has no {CONFIG}, so it is not a complete checkpoint{hint}")
    return path


def read_config(checkpoint_dir: str | Path) -> dict[str, Any]:
    """``config.json`` as a dict with keys ``qkv_version``, ``model`` and ``train``."""
    path = require_dir(checkpoint_dir) / CONFIG
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{path} is not valid JSON ({e}); the checkpoint is corrupted") from None
    if "model" not in data:
        raise CheckpointError(f"{path} has no 'model' section (found keys {sorted(data)})")
    return data


def require_file(directory: Path, name: str) -> Path:
    path = directory / name
    if not path.is_file():
        raise CheckpointError(f"{directory} has no {name}; the checkpoint is incomplete")
    return path


def _saved_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """Tensor name → shape from a safetensors header, failing clearly on a damaged file."""
    try:
        with safe_open(str(path), framework="pt") as f:
            return {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{path} is truncated or corrupted and cannot be read ({e})") from None


def _shared_groups(state: dict[str, torch.Tensor]) -> dict[str, frozenset[str]]:
    """Name → all names of the same tensor (tied weights appear under several names)."""
    by_ptr: dict[tuple, set[str]] = {}
    for name, t in state.items():
        key = (t.data_ptr(), tuple(t.shape)) if t.numel() else (name,)
        by_ptr.setdefault(key, set()).add(name)
    return {name: frozenset(group) for group in by_ptr.values() for name in group}


def check_weights(path: Path, model: nn.Module) -> None:
    """Raise :class:`CheckpointError` unless the file at ``path`` fits ``model`` exactly.

    Names the first tensors whose shapes differ (expected from the model's config, found in the
    file), and the tensors missing or unexpected, instead of torch's long strict-load dump.
    """
    found = _saved_shapes(path)
    expected = {k: v for k, v in model.state_dict().items()}
    groups = _shared_groups(expected)
    wrong = [f"{k}: config expects {tuple(expected[k].shape)}, file has {found[k]}"
             for k in expected if k in found and tuple(expected[k].shape) != found[k]]
    missing = sorted(k for k in expected if not (groups[k] & found.keys()))
    unexpected = sorted(k for k in found if k not in expected)
    problems = []
    if wrong:
        problems.append(f"{len(wrong)} tensor(s) have the wrong shape — " + "; ".join(wrong[:3]))
    if missing:
        problems.append(f"{len(missing)} tensor(s) the config's model needs are missing — {missing[:3]}")
    if unexpected:
        problems.append(f"{len(unexpected)} tensor(s) in the file are not in the model — {unexpected[:3]}")
    if problems:
        raise CheckpointError(
            f"{path} does not match the model its {CONFIG} describes: " + " | ".join(problems)
            + ". The weights and the config come from different models."
        )


def load_weights(model: nn.Module, checkpoint_dir: str | Path) -> None:
    """Copy a checkpoint's weights into ``model`` in place, after checking they fit."""
    path = require_file(require_dir(checkpoint_dir), WEIGHTS)
    check_weights(path, model)
    device = next(model.parameters()).device
    load_model(model, str(path), strict=True, device=str(device))


def load(checkpoint_dir: str | Path, *, device: str | torch.device = "cpu") -> nn.Module:
    """The model saved in a checkpoint directory, rebuilt from its config, in eval mode.

    Raises :class:`CheckpointError` for a missing directory or file, a truncated or corrupted
    ``model.safetensors``, or weights whose shapes do not match the config.
    """
    data = read_config(checkpoint_dir)
    try:
        config = ModelConfig.from_dict(data["model"])
    except (ValueError, TypeError) as e:
        raise CheckpointError(f"{Path(checkpoint_dir) / CONFIG} holds an invalid model config: {e}") from None
    model = build_model(config).to(device)
    load_weights(model, checkpoint_dir)
    return model.eval()


__all__ = ["CheckpointError", "CONFIG", "WEIGHTS", "PREFIX", "load", "load_weights", "check_weights",
           "read_config", "list_checkpoints", "latest_checkpoint", "require_file"]
