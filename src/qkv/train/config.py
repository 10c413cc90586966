"""``TrainConfig``: every knob of a training run as one typed, frozen, JSON-able record.

Like ``ModelConfig``, each choice is a ``Literal`` string (a registry key), and ``__post_init__``
rejects a bad value with a message naming the field, the value and what is allowed, so a typo
fails when the config is made rather than an hour into a run. The config is saved whole in every
checkpoint's ``config.json``, which is how a resumed run knows how it was started.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass
from typing import Literal

from ..config import Config, ConfigError, check_types

Schedule = Literal["noam", "linear", "cosine", "constant"]
Precision = Literal["auto", "fp32", "bf16", "fp16"]
Device = Literal["auto", "cpu", "cuda"]
NoDecay = Literal["norm", "bias", "embedding"]
Mode = Literal["min", "max"]


@dataclass(frozen=True)
class TrainConfig(Config):
    """All switches of a training run. Defaults follow the base Transformer recipe.

    Adam with β = (0.9, 0.98), ε = 1e-9, the Noam schedule with 4000 warm-up steps and label
    smoothing 0.1 are Vaswani et al. (2017) §5.3–5.4; weight decay is decoupled AdamW
    (Loshchilov & Hutter, 2019) and, by default, not applied to norms, biases and embeddings.
    One optimizer *step* consumes ``accumulation_steps`` batches from the batch iterable. How
    big a batch is belongs to whoever builds the batches (the task's ``max_tokens`` or
    ``batch_size``), not to the trainer.
    """

    # Written by qkv 0.1.0 but never read (batch sizes are the task's): dropped on load.
    RETIRED: typing.ClassVar[frozenset[str]] = frozenset({"max_tokens", "batch_size"})

    # optimizer (AdamW)
    lr: float = 5e-4  # the peak learning rate, reached at the end of warm-up
    betas: tuple[float, float] = (0.9, 0.98)
    eps: float = 1e-9
    weight_decay: float = 0.01
    no_decay: tuple[NoDecay, ...] = ("norm", "bias", "embedding")
    # learning-rate schedule
    schedule: Schedule = "noam"
    warmup_steps: int = 4000
    min_lr_ratio: float = 0.0  # floor of linear / cosine decay, as a fraction of lr
    # how long
    max_steps: int | None = 100_000  # the base model's 100k steps (Vaswani et al., 2017 §5.2)
    max_epochs: int | None = None
    max_minutes: float | None = None  # wall-clock budget: save and stop cleanly when spent
    # the update
    accumulation_steps: int = 1
    grad_clip: float | None = 1.0  # max global L2 norm of the gradient; None = no clipping
    label_smoothing: float = 0.1
    # "auto": bf16 autocast where the hardware runs it fast (CUDA with bf16; a CPU with
    # AVX-512-BF16 or AMX), fp32 elsewhere — on other CPUs bf16 is several times slower.
    precision: Precision = "auto"
    gradient_checkpointing: bool = False
    # evaluation, early stopping, checkpoints
    eval_every: int | None = None  # steps; None = at the end of each epoch
    save_every: int | None = None  # steps; a checkpoint is always written at the end too
    early_stopping_patience: int | None = None  # evaluations without improvement before stopping
    early_stopping_metric: str = "loss"
    early_stopping_mode: Mode = "min"
    keep_last: int | None = 3  # step checkpoints kept on disk (None = all)
    average_last: int | None = None  # average the last N checkpoints' weights at the end
    log_every: int = 1
    seed: int = 0
    device: Device = "auto"

    def __post_init__(self) -> None:
        check_types(self)
        _check_values(self)


# ---------------------------------------------------------------------------------------------
# validation


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


def _check_values(c: TrainConfig) -> None:
    _require(c.lr > 0, f"lr={c.lr} must be > 0")
    _require(all(0.0 <= b < 1.0 for b in c.betas), f"betas={c.betas} must both lie in [0, 1)")
    _require(c.eps > 0, f"eps={c.eps} must be > 0")
    _require(c.weight_decay >= 0, f"weight_decay={c.weight_decay} must be >= 0")
    _require(len(set(c.no_decay)) == len(c.no_decay), f"no_decay={c.no_decay} lists a kind twice")
    _require(c.warmup_steps >= 0, f"warmup_steps={c.warmup_steps} must be >= 0")
    _require(
        c.schedule != "noam" or c.warmup_steps >= 1,
        f"warmup_steps={c.warmup_steps} is not allowed with schedule='noam'; Noam's decay "
        f"step^-0.5 is scaled by warmup^-1.5, so warmup_steps must be >= 1",
    )
    _require(0.0 <= c.min_lr_ratio <= 1.0, f"min_lr_ratio={c.min_lr_ratio} must lie in [0, 1]")
    for name in ("max_steps", "max_epochs", "eval_every", "save_every",
                 "early_stopping_patience", "keep_last"):
        value = getattr(c, name)
        _require(value is None or value >= 1, f"{name}={value} must be a positive integer or None")
    for name in ("accumulation_steps", "log_every"):
        _require(getattr(c, name) >= 1, f"{name}={getattr(c, name)} must be a positive integer")
    _require(c.max_minutes is None or c.max_minutes > 0, f"max_minutes={c.max_minutes} must be > 0 or None")
    _require(
        c.max_steps is not None or c.max_epochs is not None or c.max_minutes is not None,
        "max_steps, max_epochs and max_minutes are all None; set at least one so training ends",
    )
    _require(c.grad_clip is None or c.grad_clip > 0, f"grad_clip={c.grad_clip} must be > 0 or None")
    _require(0.0 <= c.label_smoothing < 1.0, f"label_smoothing={c.label_smoothing} must lie in [0, 1)")
    _require(
        c.average_last is None or c.average_last >= 2,
        f"average_last={c.average_last} must be >= 2 (averaging one checkpoint is that checkpoint) or None",
    )
    _require(
        c.average_last is None or c.keep_last is None or c.average_last <= c.keep_last,
        f"average_last={c.average_last} exceeds keep_last={c.keep_last}: the checkpoints to "
        f"average would already be deleted; raise keep_last or lower average_last",
    )
    _require(bool(c.early_stopping_metric), "early_stopping_metric='' must name a metric of the eval dict")


__all__ = ["TrainConfig", "Schedule", "Precision", "Device", "NoDecay"]
