"""The deployment-forms benchmark at tiny size: every form this machine runs is measured, and
the forms that compute in fp32 translate exactly as the PyTorch model does."""

from __future__ import annotations

import pytest

from benchmarks import deploy_forms
from qkv.deploy.forms import FORMS, available

from .deploy.test_serve import tiny_checkpoint


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    folder = tiny_checkpoint(tmp_path_factory.mktemp("forms") / "mt", "seq2seq")
    return deploy_forms.main([str(folder), "--size", "tiny", "--threads", "1"])


def test_every_available_form_is_measured(result):
    assert list(result["forms"]) == available() and set(result["forms"]) <= set(FORMS)
    for row in result["forms"].values():
        assert row["sentences_per_s"] > 0 and row["mib"] > 0 and 0 <= row["bleu"] <= 100


def test_the_fp32_runtimes_translate_as_pytorch_does(result):
    assert result["forms"]["torch-fp32"]["same_as_fp32"] == 1.0
    assert result["forms"]["onnx-fp32"]["same_as_fp32"] == 1.0  # the same search on the same function
    assert result["forms"]["torch-int8"]["mib"] < result["forms"]["torch-fp32"]["mib"]
    assert sum(result["torch_fp32_profile"].values()) == pytest.approx(1.0, abs=0.01)
