"""``TrainConfig``: every knob of a training run as one typed, frozen, JSON-able record.

Like ``ModelConfig``, each choice is a ``Literal`` string (a registry key), and ``__post_init__``
rejects a bad value with a message naming the field, the value and what is allowed, so a typo
fails when the config is made rather than an hour into a run. The config is saved whole in every
checkpoint's ``config.json``, which is how a resumed run knows how it was started.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from dataclasses import dataclass
from typing import Any, Literal, get_args, get_origin

from ..config import ConfigError, _describe, _matches, _unknown_message, parse_overrides

Schedule = Literal["noam", "linear", "cosine", "constant"]
Precision = Literal["fp32", "bf16", "fp16"]
Device = Literal["auto", "cpu", "cuda"]
NoDecay = Literal["norm", "bias", "embedding"]
Mode = Literal["min", "max"]


@dataclass(frozen=True)
class TrainConfig:
    """All switches of a training run. Defaults follow the base Transformer recipe.

    Adam with β = (0.9, 0.98), ε = 1e-9, the Noam schedule with 4000 warm-up steps and label
    smoothing 0.1 are Vaswani et al. (2017) §5.3–5.4; weight decay is decoupled AdamW
    (Loshchilov & Hutter, 2019) and, by default, not applied to norms, biases and embeddings.
    One optimizer *step* consumes ``accumulation_steps`` batches from the batch iterable.
    """

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
    # batches (read by whoever builds the batch iterable; the trainer only records them)
    max_tokens: int | None = None
    batch_size: int | None = None
    # the update
    accumulation_steps: int = 1
    grad_clip: float | None = 1.0  # max global L2 norm of the gradient; None = no clipping
    label_smoothing: float = 0.1
    precision: Precision = "fp32"
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
        _check_types(self)
        _check_values(self)

    # -- serialisation ---------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}

    def to_json(self, **kwargs: Any) -> str:
        return json.dumps(self.to_dict(), indent=2, **kwargs)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainConfig":
        unknown = set(data) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ConfigError(_unknown_message(sorted(unknown)[0], cls))
        types = typing.get_type_hints(cls)
        # JSON has no tuples: turn the lists of tuple-typed fields back into tuples.
        fixed = {k: tuple(v) if _is_tuple(types[k]) and isinstance(v, list) else v for k, v in data.items()}
        return cls(**fixed)

    @classmethod
    def from_json(cls, text: str) -> "TrainConfig":
        return cls.from_dict(json.loads(text))

    def replace(self, **changes: Any) -> "TrainConfig":
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise ConfigError(_unknown_message(sorted(unknown)[0], type(self)))
        return dataclasses.replace(self, **changes)

    def override(self, items: list[str]) -> "TrainConfig":
        """Apply ``key=value`` strings; tuple fields take comma lists (``betas=0.9,0.999``)."""
        types = typing.get_type_hints(type(self))
        plain, tuples = [], {}
        for item in items:
            key, sep, text = item.partition("=")
            if sep and key.strip() in types and _is_tuple(types[key.strip()]):
                tuples[key.strip()] = _parse_tuple(text.strip(), types[key.strip()], key.strip())
            else:
                plain.append(item)
        return self.replace(**parse_overrides(plain, type(self)), **tuples)


# ---------------------------------------------------------------------------------------------
# validation


def _is_tuple(tp: Any) -> bool:
    return get_origin(tp) is tuple


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _element_types(tp: Any, n: int) -> list[Any]:
    """``tuple[X, ...]`` → [X] * n; ``tuple[X, Y]`` → [X, Y]."""
    args = get_args(tp)
    return [args[0]] * n if len(args) == 2 and args[1] is Ellipsis else list(args)


def _tuple_matches(value: Any, tp: Any) -> bool:
    if not isinstance(value, tuple):
        return False
    element_types = _element_types(tp, len(value))
    return len(element_types) == len(value) and all(_matches(v, t) for v, t in zip(value, element_types))


def _describe_tuple(tp: Any) -> str:
    args = get_args(tp)
    if len(args) == 2 and args[1] is Ellipsis:
        return f"a tuple of {_describe(args[0])}"
    return f"a tuple ({', '.join(_describe(a) for a in args)})"


def _parse_tuple(text: str, tp: Any, key: str) -> tuple:
    parts = [p.strip() for p in text.split(",") if p.strip()]
    out: list[Any] = []
    for part, element in zip(parts, _element_types(tp, len(parts))):
        out.append(float(part) if element is float else part)
    value = tuple(out)
    if not _tuple_matches(value, tp):
        raise ConfigError(f"override {key}={text!r} is not allowed; expected {_describe_tuple(tp)}")
    return value


def _check_types(cfg: TrainConfig) -> None:
    for name, tp in typing.get_type_hints(type(cfg)).items():
        value = getattr(cfg, name)
        ok = _tuple_matches(value, tp) if _is_tuple(tp) else _matches(value, tp)
        if not ok:
            expected = _describe_tuple(tp) if _is_tuple(tp) else _describe(tp)
            raise ConfigError(f"{name}={value!r} is not allowed; expected {expected}")


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
    for name in ("max_steps", "max_epochs", "max_tokens", "batch_size", "eval_every", "save_every",
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
