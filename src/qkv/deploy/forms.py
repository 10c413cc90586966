"""One trained translator in every deployment form qkv ships, side by side (question 35).

    form         what runs                                           weights on disk
    torch-fp32   eager PyTorch, the checkpoint as trained              fp32 safetensors
    torch-bf16   eager PyTorch, weights and activations in bf16        bf16 safetensors
    torch-int8   eager PyTorch, linear layers dynamic int8 (fbgemm)    int8 + fp32 rest
    onnx-fp32    ONNX Runtime, qkv's exported graphs                   the .onnx files
    onnx-int8    ONNX Runtime, its dynamic int8 quantisation of them   the .int8.onnx files
    ct2-fp32     CTranslate2, the exported spec                        model.bin
    ct2-int8     CTranslate2 with int8 weights                         model.bin
    torch-heads25  torch-fp32 with a quarter of its heads removed      fp32 safetensors
                 (``heads_pruned_form``: it needs validation batches to rank the heads)

:func:`build_forms` exports the model into a folder and returns each form as a ``translate``
callable with the same signature (sentences, beams, batch size → translations) and its size
in bytes, so the lab and the deployment benchmark measure them alike. Every form runs on the
number of threads it is given (1 in the lab).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Callable

import torch
from safetensors.torch import save_file
from torch import nn

from ..tasks.translation import translate
from ..train.runtime import cpu_has_fast_bf16

FORMS = ("torch-fp32", "torch-bf16", "torch-int8", "onnx-fp32", "onnx-int8", "ct2-fp32", "ct2-int8")
Translate = Callable[[list[str], int, int], list[str]]  # (sentences, beams, batch_size) → translations


@dataclass
class Form:
    name: str
    translate: Translate
    bytes: int  # the weights on disk in this form


def available(names: tuple[str, ...] = FORMS) -> list[str]:
    """The forms this machine runs: bf16 only where the CPU has native bf16 (AVX-512-BF16/AMX),
    CTranslate2 only where it is installed."""
    try:
        import ctranslate2  # noqa: F401
        has_ct2 = True
    except ImportError:
        has_ct2 = False
    return [n for n in names if (n != "torch-bf16" or cpu_has_fast_bf16()) and (not n.startswith("ct2") or has_ct2)]


def _saved_bytes(tensors: dict[str, torch.Tensor], path: Path) -> int:
    """Bytes of ``tensors`` as a safetensors file, a tied table stored once."""
    once: dict[int, tuple[str, torch.Tensor]] = {}
    for name, t in tensors.items():
        once.setdefault(t.data_ptr(), (name, t))
    save_file({name: t.contiguous() for name, t in once.values()}, str(path))
    return path.stat().st_size


def _torch_form(name: str, model: nn.Module, tok, folder: Path) -> Form:
    from .precision import int8_state, with_precision

    precision = name.split("-")[1]
    run = with_precision(model, precision)
    state = int8_state(run)[0] if precision == "int8" else run.state_dict()
    size = _saved_bytes(state, folder / f"{name}.safetensors")
    return Form(name, lambda s, beams, batch: translate(run, tok, s, beams=beams, batch_size=batch, truncate=True),
                size)


def _onnx_forms(model: nn.Module, tok, folder: Path, threads: int, names: list[str]) -> list[Form]:
    from .onnx_export import export_onnx
    from .onnx_runtime import OnnxModel, onnx_generate

    export_onnx(model, folder / "onnx", int8="onnx-int8" in names)
    forms = []
    for name in names:
        int8 = name == "onnx-int8"
        runtime = OnnxModel(folder / "onnx", int8=int8, threads=threads)
        decode = partial(onnx_generate, runtime)
        files = [p for p in (folder / "onnx").glob("*.onnx") if p.name.endswith(".int8.onnx") == int8]
        forms.append(Form(name, lambda s, beams, batch, r=runtime, d=decode: translate(
            r, tok, s, beams=beams, batch_size=batch, truncate=True, decode=d),
            sum(p.stat().st_size for p in files)))
    return forms


def _ct2_form(name: str, model: nn.Module, tok, folder: Path, threads: int) -> Form:
    from .ct2_export import ct2_translate, export_ctranslate2

    out = export_ctranslate2(model, tok, folder / name, int8=name == "ct2-int8")
    return Form(name, lambda s, beams, batch: ct2_translate(out, tok, s, beams=beams, batch_size=batch,
                                                            truncate=True, threads=threads),
                (out / "model.bin").stat().st_size)


def heads_pruned_form(model: nn.Module, tok, folder: Path, batches: list[dict], fraction: float = 0.25) -> Form:
    """torch-fp32 without the ``fraction`` of heads least important on ``batches`` (validation
    pairs collated by ``qkv.deploy.pruning.validation_batches``), removed physically."""
    from .pruning import heads_pruned

    pruned = heads_pruned(model.eval(), batches, fraction).eval()
    name = f"torch-heads{round(100 * fraction)}"
    size = _saved_bytes(pruned.state_dict(), folder / f"{name}.safetensors")
    return Form(name, lambda s, beams, batch: translate(pruned, tok, s, beams=beams, batch_size=batch, truncate=True),
                size)


def build_forms(model: nn.Module, tok, folder: Path, names: list[str], threads: int = 1) -> list[Form]:
    """``model`` (a trained translator, fp32) in each of ``names``, exported under ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    model = model.eval()
    forms = [_torch_form(n, model, tok, folder) for n in names if n.startswith("torch")]
    onnx = [n for n in names if n.startswith("onnx")]
    forms += _onnx_forms(model, tok, folder, threads, onnx) if onnx else []
    forms += [_ct2_form(n, model, tok, folder, threads) for n in names if n.startswith("ct2")]
    return sorted(forms, key=lambda f: names.index(f.name))


__all__ = ["FORMS", "Form", "available", "build_forms", "heads_pruned_form"]
