"""Inference at reduced precision: bf16 weights and activations, int8 linear layers.

``with_precision(model, "bf16")`` casts every weight to bfloat16, so activations are bf16 too
(LayerNorm and softmax run in bf16 as well; on a CPU with AVX-512-BF16 or AMX the products are
native). ``with_precision(model, "int8")`` replaces each ``nn.Linear`` — the q/k/v/out
projections, the FFN and the output head — by PyTorch's dynamically quantised linear: weights
stored as int8 with one scale per output channel (symmetric, zero point 0), activations
quantised per batch on the fly, products in int32 by fbgemm. Embeddings and norms stay fp32: an
embedding is a lookup, not a product, and quantising it saves bytes but no time.

A deployable int8 checkpoint (``save_int8``) keeps those int8 weights and their scales in
``model.int8.safetensors`` — the quantised tensors themselves, so loading reproduces the model
bit for bit instead of re-quantising dequantised weights (which can move a weight by one step).
"""

from __future__ import annotations

import copy
import json
import shutil
import warnings
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from .. import __version__
from ..checkpoint import CONFIG, read_config
from ..config import ModelConfig
from ..errors import CheckpointError, InputError
from ..models import build_model

PRECISIONS = ("fp32", "bf16", "int8")
INT8_WEIGHTS = "model.int8.safetensors"
TOKENIZER_FILE = "tokenizer.json"


def check_precision(precision: str) -> None:
    if precision not in PRECISIONS:
        raise InputError(f"--precision {precision!r} is not one of {', '.join(PRECISIONS)}")


def _quantize_linears(model: nn.Module) -> nn.Module:
    """A copy of ``model`` with every ``nn.Linear`` dynamically quantised (int8, per channel)."""
    from torch.ao import quantization as tq

    with warnings.catch_warnings():  # torch marks the eager quantisation API as deprecated; it still works
        warnings.simplefilter("ignore")
        spec = {nn.Linear: tq.per_channel_dynamic_qconfig}
        return tq.quantize_dynamic(model, spec, dtype=torch.qint8, inplace=False)


def with_precision(model: nn.Module, precision: str) -> nn.Module:
    """``model`` for inference at ``precision`` (a copy; the original is left as it was)."""
    check_precision(precision)
    model = model.eval()
    if precision == "fp32":
        return model
    if next(model.parameters()).device.type != "cpu" and precision == "int8":
        raise InputError("int8 inference runs on the CPU (fbgemm); use --precision bf16 on a GPU")
    if precision == "bf16":
        return copy.deepcopy(model).to(torch.bfloat16)
    return _quantize_linears(model)


def quantized_linears(model: nn.Module) -> dict[str, nn.Module]:
    """name → dynamically quantised linear, for every one in ``model``."""
    from torch.ao.nn.quantized import dynamic as nnqd

    return {name: m for name, m in model.named_modules() if isinstance(m, nnqd.Linear)}


def int8_state(model: nn.Module) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Plain tensors of an int8 model — each quantised weight as int8 values and fp32 scales, each
    bias, every other parameter or buffer as it is — and the aliases of tied tensors (a table
    shared by several names is stored once: name → the stored name)."""
    tensors: dict[str, torch.Tensor] = {}
    linears = quantized_linears(model)
    for name, lin in linears.items():
        weight, bias = lin._weight_bias()
        tensors[f"{name}.weight.int8"] = weight.int_repr().contiguous()  # (out, in)
        tensors[f"{name}.weight.scale"] = weight.q_per_channel_scales().float().contiguous()  # (out,)
        if bias is not None:
            tensors[f"{name}.bias"] = bias.detach().contiguous()
    stored: dict[int, str] = {}
    aliases: dict[str, str] = {}
    owners = tuple(f"{name}." for name in linears)
    for name, t in model.state_dict().items():
        if name.startswith(owners) or not isinstance(t, torch.Tensor):
            continue
        if t.data_ptr() in stored:
            aliases[name] = stored[t.data_ptr()]
        else:
            stored[t.data_ptr()], tensors[name] = name, t.detach().contiguous()
    return tensors, aliases


def save_int8(model: nn.Module, folder: Path, out: Path) -> Path:
    """Write the int8 form of the checkpoint in ``folder`` (whose fp32 model is ``model``) to ``out``:
    config.json marked ``"precision": "int8"``, the int8 weights, and the tokenizer."""
    if out.exists() and any(out.iterdir()):
        raise InputError(f"{out} already exists and is not empty", hint="choose a new --out folder")
    quantized = with_precision(model, "int8")
    out.mkdir(parents=True, exist_ok=True)
    tensors, aliases = int8_state(quantized)
    config = {**read_config(folder), "precision": "int8", "int8_aliases": aliases, "qkv_version": __version__}
    (out / CONFIG).write_text(json.dumps(config, indent=1) + "\n")
    save_file(tensors, str(out / INT8_WEIGHTS))
    for candidate in (folder / TOKENIZER_FILE, folder.parent / TOKENIZER_FILE):
        if candidate.is_file():
            shutil.copy(candidate, out / TOKENIZER_FILE)
            break
    return out


def load_int8(folder: Path) -> nn.Module:
    """The int8 model saved by :func:`save_int8`, exactly as it was saved."""
    data = read_config(folder)
    path = folder / INT8_WEIGHTS
    if data.get("precision") != "int8" or not path.is_file():
        raise CheckpointError(f"{folder} is not an int8 checkpoint (no {INT8_WEIGHTS} with precision int8)")
    model = _quantize_linears(build_model(ModelConfig.from_dict(data["model"])).eval())
    tensors = load_file(str(path))
    for name, lin in quantized_linears(model).items():
        values, scales = tensors.pop(f"{name}.weight.int8"), tensors.pop(f"{name}.weight.scale")
        zero = torch.zeros_like(scales, dtype=torch.long)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            qweight = torch._make_per_channel_quantized_tensor(values, scales.double(), zero, 0)
        lin.set_weight_bias(qweight, tensors.pop(f"{name}.bias", None))
    owners = tuple(f"{name}." for name in quantized_linears(model))
    # the rest (embeddings, norms, biases of the head) by name; the state dict's tensors share
    # storage with the model's, so copying into them loads the model
    state = {k: v for k, v in model.state_dict().items() if not k.startswith(owners)}
    tensors.update({name: tensors[stored] for name, stored in data.get("int8_aliases", {}).items()})
    missing, unexpected = sorted(set(state) - set(tensors)), sorted(set(tensors) - set(state))
    if missing or unexpected:
        raise CheckpointError(f"{path} does not fit its config: missing {missing[:3]}, unexpected {unexpected[:3]}")
    with torch.no_grad():
        for name, value in tensors.items():
            state[name].copy_(value)
    return model.eval()


def is_int8_checkpoint(folder: Path) -> bool:
    try:
        return read_config(folder).get("precision") == "int8"
    except CheckpointError:
        return False


def open_model(path: str | Path, *, family: str, command: str, precision: str | None = None):
    """(model, tokenizer, folder) for inference: an fp32 checkpoint run at ``precision`` (default
    fp32), or an int8 checkpoint written by ``qkv export --to int8`` (precision int8 or unset)."""
    from ..tasks.common import find_tokenizer
    from ..tasks.run import checkpoint_folder, open_checkpoint

    if precision is not None:
        check_precision(precision)
    folder = checkpoint_folder(path)
    if is_int8_checkpoint(folder):
        if precision not in (None, "int8"):
            raise InputError(f"{folder} holds int8 weights; it cannot run at {precision}",
                             hint="use the fp32 checkpoint it was made from, or drop --precision")
        found = read_config(folder)["model"].get("family")
        if found != family:
            raise InputError(f"{folder} holds a {found} model; {command} needs a {family} model")
        return load_int8(folder), find_tokenizer(folder), folder
    model, tok, folder = open_checkpoint(folder, family=family, command=command)
    return with_precision(model, precision or "fp32"), tok, folder


__all__ = ["PRECISIONS", "check_precision", "with_precision", "save_int8", "load_int8", "is_int8_checkpoint",
           "quantized_linears", "open_model", "INT8_WEIGHTS"]
