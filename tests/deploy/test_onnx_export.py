"""ONNX export: the onnxruntime graphs against the PyTorch model they came from (tiny, random)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime")

from qkv import ModelConfig, build_model  # noqa: E402
from qkv.deploy.onnx_export import export_onnx  # noqa: E402
from qkv.deploy.onnx_runtime import OnnxModel, OnnxStepper, onnx_generate  # noqa: E402
from qkv.errors import CheckpointError, InputError  # noqa: E402

V = 50


def _model(family):
    torch.manual_seed(0)
    cfg = ModelConfig(family=family, vocab_size=V, d_model=32, n_layers=2, n_heads=4, d_ff=48, max_len=64)
    return build_model(cfg).eval()


@pytest.fixture(scope="module", params=["seq2seq", "lm"])
def exported(request, tmp_path_factory):
    model = _model(request.param)
    out = tmp_path_factory.mktemp(request.param)
    export_onnx(model, out, int8=True)
    return model, out


def _batch(model):
    torch.manual_seed(1)
    ids, mask = torch.randint(3, V, (3, 7)), torch.ones(3, 7, dtype=torch.bool)
    if model.config.family == "seq2seq":
        mask[1, 4:] = False  # right-padded source
    else:
        mask[1, :3] = False  # left-padded prompt
    return ids.masked_fill(~mask, model.config.pad_id), mask


@torch.no_grad()
def test_encoder_and_cached_steps_match_pytorch(exported):
    model, out = exported
    ids, mask = _batch(model)
    onnx = OnnxStepper(OnnxModel(out, threads=1), ids, mask)
    if model.config.family == "seq2seq":
        memory = onnx.model.run("encoder", [ids.numpy(), mask.numpy()])[0]
        np.testing.assert_allclose(memory, model.encode(ids, mask).numpy(), atol=1e-4)
    from qkv.generate import Stepper
    torch_stepper = Stepper(model, ids, mask, max_new_tokens=8)
    torch.testing.assert_close(onnx.prefill(), torch_stepper.prefill(), atol=1e-4, rtol=0)
    for _ in range(4):  # several steps, each through the grown cache
        tokens = torch.randint(3, V, (3,))
        torch.testing.assert_close(onnx.step(tokens), torch_stepper.step(tokens), atol=1e-4, rtol=0)


@pytest.mark.parametrize("beams", [1, 3])
def test_greedy_and_beam_equal_qkv_generate(exported, beams):
    model, out = exported
    ids, mask = _batch(model)
    got = onnx_generate(OnnxModel(out, threads=1), ids, mask, max_new_tokens=10, beams=beams)
    assert got.tolist() == model.generate(ids, mask, max_new_tokens=10, beams=beams).tolist()


@torch.no_grad()
def test_int8_graphs_run_close_to_fp32(exported):
    model, out = exported
    ids, mask = _batch(model)
    fp32 = OnnxStepper(OnnxModel(out, threads=1), ids, mask).prefill()
    int8 = OnnxStepper(OnnxModel(out, threads=1, int8=True), ids, mask).prefill()
    assert int8.isfinite().all()
    assert (int8 - fp32).abs().max() < 0.1 * fp32.abs().max()  # measured ~1-3% of the logit range


def test_export_refuses_other_kinds_and_missing_parent(tmp_path):
    encoder = build_model(ModelConfig(family="encoder", vocab_size=V, d_model=32, n_heads=4, max_len=16))
    with pytest.raises(CheckpointError, match="cannot be exported"):
        export_onnx(encoder, tmp_path / "enc")
    with pytest.raises(InputError, match="parent folder"):
        export_onnx(_model("lm"), tmp_path / "no" / "such")
