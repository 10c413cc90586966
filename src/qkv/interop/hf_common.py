"""What the Hugging Face families share: activation names, errors that name the setting, and
state-dict renaming through tables of module names.

A family file (``hf_gpt2``, ``hf_bert``, ``hf_marian``) holds a *module* table, qkv module path →
HF module path, with ``{i}`` standing for the layer index. Both directions use the same table,
so a name can only be wrong once; ``.weight``/``.bias`` follow the module they belong to.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor

from ..config import ModelConfig

# HF's ACT2FN names → qkv's ACTIVATION keys. Several HF names are the same function
# ("gelu_new" and "gelu_pytorch_tanh" are both the tanh approximation GPT-2 uses).
ACT_FROM_HF = {
    "gelu": "gelu",
    "gelu_python": "gelu",
    "gelu_new": "gelu_tanh",
    "gelu_pytorch_tanh": "gelu_tanh",
    "gelu_python_tanh": "gelu_tanh",
    "relu": "relu",
    "silu": "silu",
    "swish": "silu",
}
# qkv → HF: the name each function is best known by in its home architecture.
ACT_TO_HF = {"gelu": "gelu", "gelu_tanh": "gelu_new", "relu": "relu", "silu": "silu"}

StateDict = dict[str, Tensor]


# ---------------------------------------------------------------------------------------------
# errors that say which setting is the problem


def hf_require(ok: bool, arch: str, setting: str, value: Any, why: str) -> None:
    """Reject an HF config setting qkv has no switch for."""
    if not ok:
        raise ValueError(f"{arch}: {setting}={value!r} is not supported by qkv ({why})")


def cfg_require(ok: bool, arch: str, field: str, value: Any, why: str) -> None:
    """Reject a qkv config field the HF architecture cannot express."""
    if not ok:
        raise ValueError(f"{arch} cannot express qkv {field}={value!r}: {why}")


def check_fields(cfg: ModelConfig, arch: str, needs: dict[str, tuple[Any, ...]]) -> None:
    """Each named field of ``cfg`` must hold one of the allowed values."""
    for field, allowed in needs.items():
        value = getattr(cfg, field)
        shown = " or ".join(repr(a) for a in dict.fromkeys(allowed))
        cfg_require(value in allowed, arch, field, value, f"it needs {field}={shown}")


def common_needs(cfg: ModelConfig) -> dict[str, tuple[Any, ...]]:
    """What all three architectures fix: plain multi-head dot attention with biases, LayerNorm,
    residuals, ``d_head = d_model / n_heads`` and one activation (no gated FFN)."""
    return {
        "arch": ("transformer",),
        "attention": ("dot",),
        "tie_qk": (False,),
        "n_kv_heads": (None, cfg.n_heads),
        "d_head": (None, cfg.d_model // cfg.n_heads),
        "window": (None,),
        "bias": (True,),
        "norm": ("layer",),
        "residual": (True,),
        "activation": tuple(ACT_TO_HF),
    }


def activation_from_hf(name: Any, arch: str, setting: str) -> str:
    hf_require(
        isinstance(name, str) and name in ACT_FROM_HF, arch, setting, name,
        f"qkv maps only {', '.join(sorted(ACT_FROM_HF))}",
    )
    return ACT_FROM_HF[name]


def token_id(value: Any, fallback: int) -> int:
    """An HF special-token id (None, an int or a list of ints) as one int."""
    if isinstance(value, (list, tuple)):
        value = value[0] if value else None
    return fallback if value is None else int(value)


# ---------------------------------------------------------------------------------------------
# renaming


def expand(layer_table: dict[str, str], n: int, qkv_prefix: str, hf_prefix: str) -> dict[str, str]:
    """The per-layer table written out for layers ``0..n-1`` (qkv module → HF module)."""
    return {
        f"{qkv_prefix}.{i}.{q}": f"{hf_prefix}.{i}.{h}"
        for i in range(n)
        for q, h in layer_table.items()
    }


def to_qkv_names(hf_sd: StateDict, modules: dict[str, str], qkv_keys: list[str]) -> StateDict:
    """For every qkv parameter name, the HF tensor its module maps to (same parameter name)."""
    out = {}
    for key in qkv_keys:
        module, _, param = key.rpartition(".")
        out[key] = hf_sd[f"{modules[module]}.{param}"]
    return out


def to_hf_names(qkv_sd: StateDict, modules: dict[str, str]) -> StateDict:
    """The qkv state dict under HF names (tied qkv tensors appear once per HF name)."""
    out = {}
    for key, tensor in qkv_sd.items():
        module, _, param = key.rpartition(".")
        out[f"{modules[module]}.{param}"] = tensor
    return out
