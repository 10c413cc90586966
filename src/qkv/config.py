"""``ModelConfig``: every design choice of a qkv model as one typed, frozen, JSON-able record.

Each switch the 35 questions discuss is a field with a ``Literal`` type (the registry key of the
variant that implements it). ``__post_init__`` rejects bad values and bad combinations with a
message that names the field, the value and what is allowed, so a mistake surfaces when the
config is made, not as a shape error deep inside torch.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import types
import typing
from dataclasses import dataclass
from typing import Any, Literal, Union, get_args, get_origin

from .errors import ConfigError  # re-exported

Family = Literal["seq2seq", "lm", "encoder"]
Arch = Literal["transformer", "lstm"]
Attention = Literal["dot", "additive"]
Scale = Literal["sqrt_dk", "none"]
Position = Literal["sinusoidal", "learned", "shaw", "t5_bias", "rope", "alibi", "none"]
Norm = Literal["layer", "rms", "batch", "batch_naive"]
Placement = Literal["post", "pre"]
Activation = Literal["relu", "gelu", "gelu_tanh", "silu", "swiglu", "geglu"]
Head = Literal["mlm", "classify"]
Pooling = Literal["cls", "mean", "max"]
SinusoidLayout = Literal["interleave", "concat"]


class Config:
    """What ``ModelConfig``, ``TrainConfig`` and the tasks' configs share: JSON round trips,
    checked ``replace``, and ``key=value`` overrides typed by the dataclass's annotations.

    Subclasses are frozen dataclasses. ``RETIRED`` names fields an older qkv wrote into
    ``config.json`` that no longer exist; ``from_dict`` drops them so old checkpoints load.
    """

    RETIRED: typing.ClassVar[frozenset[str]] = frozenset()

    def to_dict(self) -> dict[str, Any]:
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}  # type: ignore[arg-type]

    def to_json(self, **kwargs: Any) -> str:
        return json.dumps(self.to_dict(), indent=2, **kwargs)

    @classmethod
    def from_dict(cls, data: dict[str, Any]):
        data = {k: v for k, v in data.items() if k not in cls.RETIRED}
        unknown = set(data) - field_names(cls)
        if unknown:
            raise ConfigError(unknown_message(sorted(unknown)[0], cls))
        types = _field_types(cls)
        # JSON has no tuples: turn the lists of tuple-typed fields back into tuples.
        return cls(**{k: tuple(v) if _is_tuple(types[k]) and isinstance(v, list) else v for k, v in data.items()})

    @classmethod
    def from_json(cls, text: str):
        return cls.from_dict(json.loads(text))

    def replace(self, **changes: Any):
        unknown = set(changes) - field_names(type(self))
        if unknown:
            raise ConfigError(unknown_message(sorted(unknown)[0], type(self)))
        return dataclasses.replace(self, **changes)  # type: ignore[type-var]

    def override(self, items: list[str]):
        """Apply command-line ``key=value`` strings, each checked against the field's type;
        tuple fields take comma lists (``betas=0.9,0.999``)."""
        return self.replace(**parse_overrides(items, type(self)))


@dataclass(frozen=True)
class ModelConfig(Config):
    """All switches of a model. Defaults are a small post-norm Transformer (Vaswani et al., 2017).

    Sizes: ``d_head`` defaults to ``d_model // n_heads`` (question 6), ``n_kv_heads`` to
    ``n_heads`` (plain multi-head; fewer gives grouped-query, 1 gives multi-query attention),
    ``n_decoder_layers`` to ``n_layers``.
    """

    family: Family = "seq2seq"
    arch: Arch = "transformer"
    vocab_size: int = 8000
    d_model: int = 256
    n_layers: int = 3
    n_decoder_layers: int | None = None
    n_heads: int = 4
    n_kv_heads: int | None = None
    d_head: int | None = None
    d_ff: int = 1024
    max_len: int = 512
    # attention
    attention: Attention = "dot"
    attention_scale: Union[Scale, float] = "sqrt_dk"
    tie_qk: bool = False
    causal_mask: bool = True  # False: decoders see the future too (question 16's "cheating" model)
    window: int | None = None
    # Transformer-XL segment memory (decoders): cached decoding keeps the last xl_memory positions'
    # keys/values and every new segment attends to them too, so text runs on past max_len.
    xl_memory: int | None = None
    bias: bool = True
    # positions
    position: Position = "sinusoidal"
    sinusoidal_layout: SinusoidLayout = "interleave"
    shaw_max_distance: int = 16
    t5_num_buckets: int = 32
    t5_max_distance: int = 128
    rope_base: float = 10000.0
    # norms and residual wiring
    norm: Norm = "layer"
    norm_eps: float = 1e-5
    norm_placement: Placement = "post"
    residual: bool = True
    embed_norm: bool = False
    final_norm: bool | None = None
    # feed-forward
    activation: Activation = "relu"
    # embeddings and output
    embed_scale: bool = True
    embed_init_std: float | None = None  # None: d_model^-½ when embed_scale, else init_std
    tie_embeddings: bool = True
    type_vocab_size: int = 0
    output_bias: bool = False
    # dropout
    dropout_embed: float = 0.1
    dropout_residual: float = 0.1
    dropout_attention: float = 0.0
    dropout_activation: float = 0.0
    # encoder-only heads
    head: Head = "mlm"
    n_classes: int = 2
    pooling: Pooling = "cls"
    # special ids used by generation and the heads
    pad_id: int = 0
    bos_id: int = 2
    eos_id: int = 3
    decoder_start_id: int | None = None
    init_std: float = 0.02

    def __post_init__(self) -> None:
        check_types(self)
        _check_values(self)

    # -- derived sizes -------------------------------------------------------------------------
    @property
    def head_dim(self) -> int:
        return self.d_head if self.d_head is not None else self.d_model // self.n_heads

    @property
    def kv_heads(self) -> int:
        return self.n_kv_heads if self.n_kv_heads is not None else self.n_heads

    @property
    def decoder_layers(self) -> int:
        return self.n_decoder_layers if self.n_decoder_layers is not None else self.n_layers

    @property
    def use_final_norm(self) -> bool:
        """Pre-norm stacks need a last norm (their residual stream is never normalised)."""
        return self.final_norm if self.final_norm is not None else self.norm_placement == "pre"

    @property
    def start_id(self) -> int:
        """First decoder input of a seq2seq model (Marian starts from pad, most from bos)."""
        return self.decoder_start_id if self.decoder_start_id is not None else self.bos_id


# ---------------------------------------------------------------------------------------------
# validation


_UNIONS = (Union, types.UnionType)


def _field_types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _allowed(tp: Any) -> list[Any]:
    """The Literal values a type admits (flattening unions)."""
    if get_origin(tp) is Literal:
        return list(get_args(tp))
    if get_origin(tp) in _UNIONS:
        return [v for arg in get_args(tp) for v in _allowed(arg)]
    return []


def _matches(value: Any, tp: Any) -> bool:
    origin = get_origin(tp)
    if origin is Literal:
        return value in get_args(tp)
    if origin in _UNIONS:
        return any(_matches(value, arg) for arg in get_args(tp))
    if tp is type(None):
        return value is None
    if tp is bool:
        return isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, tp)


def _describe(tp: Any) -> str:
    allowed = _allowed(tp)
    parts = [repr(a) for a in allowed]
    for arg in get_args(tp) if get_origin(tp) is not Literal else ():
        if get_origin(arg) is not Literal:
            parts.append("None" if arg is type(None) else arg.__name__)
    return " or ".join(parts) if parts else getattr(tp, "__name__", str(tp))


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


def describe_type(tp: Any) -> str:
    """What a field of type ``tp`` accepts, in words (``'rope' or 'alibi'``, ``int or None``)."""
    if _is_tuple(tp):
        args = get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return f"a comma-separated list of {_describe(args[0])}"
        return f"a comma-separated list ({', '.join(_describe(a) for a in args)})"
    return _describe(tp)


def check_types(cfg: Any, names: typing.Iterable[str] | None = None) -> None:
    """Raise :class:`ConfigError` naming the first field (of ``names``, default all) whose
    value its annotation refuses."""
    hints = _field_types(type(cfg))
    for name in names if names is not None else field_names(type(cfg)):
        value, tp = getattr(cfg, name), hints[name]
        if not (_tuple_matches(value, tp) if _is_tuple(tp) else _matches(value, tp)):
            raise ConfigError(f"{name}={value!r} is not allowed; expected {describe_type(tp)}")


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


def _check_values(c: ModelConfig) -> None:
    for name in ("vocab_size", "d_model", "n_layers", "n_heads", "d_ff", "max_len", "n_classes"):
        _require(getattr(c, name) >= 1, f"{name}={getattr(c, name)} must be a positive integer")
    for name in ("n_decoder_layers", "n_kv_heads", "d_head", "window", "xl_memory"):
        value = getattr(c, name)
        _require(value is None or value >= 1, f"{name}={value} must be a positive integer or None")
    for name in ("dropout_embed", "dropout_residual", "dropout_attention", "dropout_activation"):
        p = getattr(c, name)
        _require(0.0 <= p < 1.0, f"{name}={p} must be a probability in [0, 1)")
    _require(c.embed_init_std is None or c.embed_init_std > 0,
             f"embed_init_std={c.embed_init_std} must be > 0 or None")
    if isinstance(c.attention_scale, float) or isinstance(c.attention_scale, int):
        _require(c.attention_scale > 0, f"attention_scale={c.attention_scale} must be > 0")
    _require(
        c.d_head is not None or c.d_model % c.n_heads == 0,
        f"d_model={c.d_model} is not divisible by n_heads={c.n_heads}; "
        f"choose n_heads that divides d_model or set d_head explicitly",
    )
    _require(
        c.n_heads % c.kv_heads == 0,
        f"n_heads={c.n_heads} is not divisible by n_kv_heads={c.kv_heads}; "
        f"each key/value head must serve a whole group of query heads",
    )
    _require(
        not c.tie_qk or c.kv_heads == c.n_heads,
        f"tie_qk=True needs n_kv_heads == n_heads (got n_kv_heads={c.kv_heads}, "
        f"n_heads={c.n_heads}): a shared Wq=Wk must produce as many key heads as query heads",
    )
    _require(
        c.position != "rope" or c.head_dim % 2 == 0,
        f"position='rope' rotates pairs of dimensions, so d_head must be even (got {c.head_dim})",
    )
    _require(
        c.position != "sinusoidal" or c.d_model % 2 == 0,
        f"position='sinusoidal' needs an even d_model (got {c.d_model})",
    )
    _require(
        c.arch != "lstm" or c.family in ("seq2seq", "lm"),
        f"arch='lstm' builds family 'seq2seq' or 'lm', not family={c.family!r}",
    )
    _require(
        c.type_vocab_size == 0 or c.family == "encoder",
        f"type_vocab_size={c.type_vocab_size} (segment embeddings) is only used by family='encoder'",
    )
    for name in ("pad_id", "bos_id", "eos_id"):
        _require(
            0 <= getattr(c, name) < c.vocab_size,
            f"{name}={getattr(c, name)} is outside the vocabulary [0, {c.vocab_size})",
        )


# ---------------------------------------------------------------------------------------------
# key=value overrides


def field_names(cls: type) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


def unknown_message(key: str, *classes: type) -> str:
    """``unknown field 'lr0' (not a ModelConfig, TrainConfig or task field); did you mean lr?``

    The "did you mean" searches every class given, so a training key mistyped on the command
    line is matched against training keys too, not only the model's.
    """
    names = sorted({name for cls in classes for name in field_names(cls)})
    kinds = ", ".join(cls.__name__ for cls in classes[:-1]) + (" or " if len(classes) > 1 else "") + classes[-1].__name__
    close = difflib.get_close_matches(key, names, n=3, cutoff=0.6)
    hint = f"did you mean {', '.join(close)}?" if close else f"known fields: {', '.join(names)}"
    return f"unknown field {key!r} (not a {kinds} field); {hint}"


def _coerce_one(text: str, option: Any) -> tuple[bool, Any]:
    """(True, value) if ``text`` reads as ``option`` (one member of a union), else (False, None)."""
    if option is type(None):
        return (True, None) if text.lower() in ("none", "null") else (False, None)
    if get_origin(option) is Literal:
        return (True, text) if text in get_args(option) else (False, None)
    if option is bool:
        lowered = text.lower()
        if lowered in ("true", "1", "yes", "on", "false", "0", "no", "off"):
            return True, lowered in ("true", "1", "yes", "on")
        return False, None
    if option in (int, float, str):
        try:
            return True, option(text)
        except ValueError:
            return False, None
    return False, None


def coerce(text: str, tp: Any, key: str) -> Any:
    """Turn the string of a ``key=value`` override into a value of the field's type."""
    if _is_tuple(tp):
        parts = [part.strip() for part in text.split(",") if part.strip()]
        elements = _element_types(tp, len(parts))
        value = tuple(coerce(part, t, key) for part, t in zip(parts, elements))
        if not _tuple_matches(value, tp):
            raise ConfigError(f"override {key}={text!r} is not allowed; expected {describe_type(tp)}")
        return value
    options = get_args(tp) if get_origin(tp) in _UNIONS else (tp,)
    # None and Literal strings first, then numbers: "none" must not become the string "none".
    ordered = sorted(options, key=lambda o: (o is not type(None) and get_origin(o) is not Literal, o is str))
    for option in ordered:
        ok, value = _coerce_one(text, option)
        if ok:
            return value
    raise ConfigError(f"override {key}={text!r} is not allowed; expected {describe_type(tp)}")


def split_item(item: str) -> tuple[str, str]:
    """``"lr=1e-3"`` → ``("lr", "1e-3")``; anything without ``=`` is refused."""
    key, sep, text = item.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"override {item!r} must look like key=value (e.g. lr=1e-3)")
    return key.strip(), text.strip()


def parse_overrides(items: list[str], cls: type = ModelConfig) -> dict[str, Any]:
    """Parse ``["d_model=128", "position=rope"]`` into typed values for ``cls``'s fields."""
    types = _field_types(cls)
    out: dict[str, Any] = {}
    for item in items:
        key, text = split_item(item)
        if key not in field_names(cls):
            raise ConfigError(unknown_message(key, cls))
        out[key] = coerce(text, types[key], key)
    return out


__all__ = ["Config", "ModelConfig", "ConfigError", "parse_overrides", "check_types", "coerce", "split_item",
           "unknown_message", "describe_type", "field_names"]
