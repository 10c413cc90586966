"""Reduced-precision inference: int8 linears and bf16 weights change the arithmetic, not the answer;
an int8 checkpoint reloads bit for bit; bad choices are one-line errors."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from qkv.checkpoint import WEIGHTS
from qkv.cli import main
from qkv.config import ModelConfig
from qkv.deploy import precision as P
from qkv.errors import InputError
from qkv.models import build_model
from qkv.tasks.run import open_checkpoint

SENTENCE = "Ein Mann fährt Fahrrad."


@pytest.fixture(scope="module")
def run_dir(tiny_mt_run):
    return tiny_mt_run


def translator() -> nn.Module:
    torch.manual_seed(0)
    cfg = ModelConfig(family="seq2seq", vocab_size=97, d_model=64, n_layers=2, n_heads=4, d_ff=128, max_len=32)
    return build_model(cfg).eval()


def logits(model: nn.Module, src: torch.Tensor, tgt: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(src, tgt).float()  # (B, T, V)


def test_int8_replaces_every_linear_and_stays_close_to_fp32():
    model = translator()
    n_linear = sum(type(m) is nn.Linear for m in model.modules())
    src, tgt = torch.randint(4, 97, (3, 12)), torch.randint(4, 97, (3, 9))
    q = P.with_precision(model, "int8")
    assert len(P.quantized_linears(q)) == n_linear > 0
    assert not any(type(m) is nn.Linear for m in q.modules())
    ref, got = logits(model, src, tgt), logits(q, src, tgt)
    assert not torch.equal(ref, got)  # the arithmetic really changed
    assert (got - ref).abs().max() < 0.05 * ref.abs().max()
    assert torch.equal(q.generate(src, max_new_tokens=8, eos_id=None)[:, :2],
                       model.generate(src, max_new_tokens=8, eos_id=None)[:, :2])


def test_bf16_casts_weights_and_activations():
    model = translator()
    b = P.with_precision(model, "bf16")
    assert all(p.dtype == torch.bfloat16 for p in b.parameters())
    assert next(model.parameters()).dtype == torch.float32  # the original is untouched
    src, tgt = torch.randint(4, 97, (2, 10)), torch.randint(4, 97, (2, 7))
    with torch.no_grad():
        out = b(src, tgt)
    assert out.dtype == torch.bfloat16
    ref = logits(model, src, tgt)
    assert 0 < (out.float() - ref).abs().max() < 0.05 * ref.abs().max()


def test_fp32_is_the_model_itself_and_unknown_precisions_are_refused():
    model = translator()
    assert P.with_precision(model, "fp32") is model
    with pytest.raises(InputError, match="'fp16' is not one of fp32, bf16, int8"):
        P.with_precision(model, "fp16")


def test_int8_checkpoint_reloads_bit_for_bit_and_is_smaller(run_dir, tmp_path):
    model, _, folder = open_checkpoint(run_dir, family="seq2seq")
    out = P.save_int8(model, folder, tmp_path / "int8")
    assert json.loads((out / "config.json").read_text())["precision"] == "int8"
    assert (out / "tokenizer.json").is_file()
    reloaded, in_memory = P.load_int8(out), P.with_precision(model, "int8")
    src, tgt = torch.randint(4, 300, (2, 8)), torch.randint(4, 300, (2, 6))
    assert torch.equal(logits(reloaded, src, tgt), logits(in_memory, src, tgt))
    # the linears shrink 4×; the embeddings stay fp32 (here they are most of the tiny model)
    assert (out / P.INT8_WEIGHTS).stat().st_size < 0.8 * (folder / WEIGHTS).stat().st_size
    with pytest.raises(InputError, match="already exists"):
        P.save_int8(model, folder, out)


@pytest.mark.parametrize("precision", ["fp32", "bf16", "int8"])
def test_translate_runs_at_each_precision(run_dir, precision, capsys):
    assert main(["translate", str(run_dir), SENTENCE, "--precision", precision, "--beam", "2"]) == 0
    assert capsys.readouterr().out.strip()


def test_an_int8_checkpoint_translates_and_refuses_another_precision(run_dir, tmp_path, capsys):
    model, _, folder = open_checkpoint(run_dir, family="seq2seq")
    out = P.save_int8(model, folder, tmp_path / "int8")
    assert main(["translate", str(out), SENTENCE]) == 0
    int8_line = capsys.readouterr().out
    assert main(["translate", str(run_dir), SENTENCE, "--precision", "int8"]) == 0
    assert capsys.readouterr().out == int8_line  # the saved int8 model is the in-memory one
    assert main(["translate", str(out), SENTENCE, "--precision", "bf16"]) == 2
    err = capsys.readouterr().err
    assert "holds int8 weights; it cannot run at bf16" in err and "Traceback" not in err
    assert main(["generate", str(out), "--prompt", "a"]) == 2
    assert "needs a lm model" in capsys.readouterr().err


def test_qkv_export_to_int8_then_translate(run_dir, tmp_path, capsys):
    out = tmp_path / "int8"
    assert main(["export", str(run_dir), "--to", "int8", "--out", str(out)]) == 0
    assert (out / P.INT8_WEIGHTS).is_file() and (out / "tokenizer.json").is_file()
    capsys.readouterr()
    assert main(["translate", str(out), SENTENCE]) == 0 and capsys.readouterr().out.strip()


def test_qkv_export_to_onnx_from_a_run_folder_matches_qkv(run_dir, tmp_path):
    from qkv.deploy.onnx_runtime import OnnxModel, onnx_generate

    out = tmp_path / "onnx"
    assert main(["export", str(run_dir), "--to", "onnx", "--out", str(out)]) == 0
    assert (out / "qkv_onnx.json").is_file() and (out / "tokenizer.json").is_file()
    model, tok, _ = open_checkpoint(run_dir, family="seq2seq")
    src = torch.tensor([tok.encode(SENTENCE, add_special_tokens=False) + [model.config.eos_id]])
    assert torch.equal(onnx_generate(OnnxModel(out), src, max_new_tokens=8, beams=2),
                       model.generate(src, max_new_tokens=8, beams=2))
