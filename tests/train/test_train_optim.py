"""AdamW parameter groups: no decay on norms, biases and (tied) embeddings, configurable."""

from __future__ import annotations

import torch
from torch import nn

from qkv.nn.norm import NORM
from qkv.train import TrainConfig, build_optimizer, param_groups
from train_helpers import tiny_model


def expected_no_decay(model: nn.Module) -> set[int]:
    """Ids of parameters owned by an embedding or a norm, or named like a bias — derived from the
    module tree here, independently of qkv.train.optim."""
    ids = set()
    for module in model.modules():
        for name, p in module.named_parameters(recurse=False):
            if isinstance(module, nn.Embedding) or isinstance(module, tuple(NORM.values())) or "bias" in name:
                ids.add(id(p))
    return ids


def test_groups_spare_norms_biases_and_embeddings_and_cover_every_parameter_once() -> None:
    model = tiny_model("seq2seq", position="learned", norm="rms", output_bias=True)
    groups = param_groups(model, 0.1, ("norm", "bias", "embedding"))
    decay, spared = groups
    assert decay["weight_decay"] == 0.1 and spared["weight_decay"] == 0.0
    assert {id(p) for p in spared["params"]} == expected_no_decay(model)
    all_ids = [id(p) for g in groups for p in g["params"]]
    assert sorted(all_ids) == sorted({id(p) for p in model.parameters()})  # each once
    # the tied output projection is the token embedding, so it is spared too
    assert id(model.head.proj.weight) in {id(p) for p in spared["params"]}
    assert any("attn" in n or "ffn" in n or "proj" in n for n in decay["names"])


def test_no_decay_is_configurable_and_lstm_biases_are_biases() -> None:
    model = tiny_model("lm", tie_embeddings=False)
    everything = param_groups(model, 0.1, ())
    assert len(everything) == 1 and everything[0]["weight_decay"] == 0.1
    only_bias = param_groups(model, 0.1, ("bias",))
    assert all(n.endswith("bias") for n in only_bias[1]["names"])
    lstm = tiny_model("lm", arch="lstm")
    spared = param_groups(lstm, 0.1, ("bias",))[1]["names"]
    assert spared and all(n.split(".")[-1].startswith("bias") for n in spared)


def test_build_optimizer_is_adamw_with_the_config() -> None:
    model = tiny_model("lm")
    opt = build_optimizer(model, TrainConfig(lr=1e-3, betas=(0.8, 0.9), weight_decay=0.05))
    assert isinstance(opt, torch.optim.AdamW)
    assert [g["weight_decay"] for g in opt.param_groups] == [0.05, 0.0]
    assert all(g["lr"] == 1e-3 and g["betas"] == (0.8, 0.9) for g in opt.param_groups)
