"""Every value of every switch builds, runs forward and backward on a padded batch, and gives
finite loss and gradients — one switch varied at a time from a base config, plus mixtures."""

from __future__ import annotations

import typing

import pytest
import torch
import torch.nn.functional as F

from qkv import ConfigError, ModelConfig, build_model
from qkv.config import _allowed
from tests.conftest import padded_batch, tiny

SKIP_FIELDS = {"family", "arch", "head", "sinusoidal_layout"}  # exercised by their own cases


def switch_values() -> list[tuple[str, object]]:
    """(field, value) for every Literal value and both settings of every bool field."""
    cases: list[tuple[str, object]] = []
    for name, tp in typing.get_type_hints(ModelConfig).items():
        if name in SKIP_FIELDS:
            continue
        if tp is bool or tp == (bool | None):
            cases += [(name, True), (name, False)]
        else:
            cases += [(name, v) for v in _allowed(tp)]
    cases += [
        ("attention_scale", 0.5), ("n_kv_heads", 2), ("n_kv_heads", 1), ("d_head", 16),
        ("window", 3), ("type_vocab_size", 2), ("sinusoidal_layout", "concat"),
        ("dropout_embed", 0.3), ("dropout_residual", 0.3), ("dropout_attention", 0.3),
        ("dropout_activation", 0.3), ("n_decoder_layers", 1),
    ]
    return cases


MIXTURES = [
    dict(position="rope", norm="rms", norm_placement="pre", activation="swiglu", n_kv_heads=2, bias=False),
    dict(position="alibi", window=4, attention="additive", norm="batch", residual=False),
    dict(position="shaw", tie_qk=True, attention_scale="none", activation="geglu", embed_scale=False),
    dict(position="t5_bias", norm_placement="pre", final_norm=False, tie_embeddings=False, output_bias=True),
    dict(position="learned", embed_norm=True, n_kv_heads=1, d_head=12, dropout_attention=0.2),
]


def loss_and_grads(cfg: ModelConfig) -> None:
    model = build_model(cfg).train()
    ids, mask = padded_batch(vocab=cfg.vocab_size)
    if cfg.family == "seq2seq":
        logits = model(ids, ids, mask, mask)
    elif cfg.family == "encoder" and cfg.head == "classify":
        logits = model(ids, mask)
    else:
        logits = model(ids, mask)
    if logits.dim() == 2:
        loss = F.cross_entropy(logits, torch.tensor([0, 1, 0]))
    else:
        loss = F.cross_entropy(logits[mask], ids[mask])
    loss.backward()
    assert torch.isfinite(loss), f"loss is {loss}"
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert any(g is not None and g.abs().sum() > 0 for g in grads)
    for name, p in model.named_parameters():
        assert p.grad is None or torch.isfinite(p.grad).all(), f"non-finite gradient in {name}"


@pytest.mark.parametrize("field,value", switch_values(), ids=lambda v: str(v))
@pytest.mark.parametrize("family", ["seq2seq", "lm", "encoder"])
def test_each_switch_value_trains(family, field, value):
    if field == "type_vocab_size" and family != "encoder":  # segment embeddings are encoder-only
        with pytest.raises(ConfigError, match="type_vocab_size"):
            tiny(family=family, **{field: value})
        return
    loss_and_grads(tiny(family=family, **{field: value}))


@pytest.mark.parametrize("mixture", MIXTURES, ids=lambda m: m["position"])
@pytest.mark.parametrize("family", ["seq2seq", "lm", "encoder"])
def test_mixed_switches_train(family, mixture):
    loss_and_grads(tiny(family=family, **mixture))


@pytest.mark.parametrize("pooling", ["cls", "mean", "max"])
def test_classifier_head_trains(pooling):
    loss_and_grads(tiny(family="encoder", head="classify", pooling=pooling, n_classes=2))


@pytest.mark.parametrize("family", ["seq2seq", "lm"])
def test_lstm_baselines_train(family):
    loss_and_grads(tiny(family=family, arch="lstm"))
