"""Every value of every switch changes the model it should, and still trains.

A switch that builds and trains but does nothing would pass a finite-loss check, so each
``(family, field, value)`` is also compared with the same field at another value, both models
built from the same seed. What changed is one of:

* ``structure`` — the names or shapes of the parameters (and persistent buffers);
* ``init`` — same structure, different initial weights;
* ``outputs`` — same weights copied across, different eval-mode logits;
* ``train`` — equal in eval mode, different in train mode under the same seed (dropout).

``EXPECTED`` says which effect each switch must have. A field the model cannot use in a
family (pooling without a classifier, say) must be listed by ``qkv.models.unused_fields`` —
and then the test holds the model exactly unchanged, so the list cannot lie either.
"""

from __future__ import annotations

import itertools
import typing

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from qkv import ConfigError, ModelConfig, build_model
from qkv.config import _allowed
from qkv.models import unused_fields
from tests.conftest import padded_batch, tiny

FAMILIES = ["seq2seq", "lm", "encoder"]
SKIP_FIELDS = {"family", "arch", "head", "sinusoidal_layout"}  # exercised by their own cases
DROPOUTS = {"dropout_embed", "dropout_residual", "dropout_attention", "dropout_activation"}


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
        ("window", 3), ("type_vocab_size", 2), ("sinusoidal_layout", "concat"), ("head", "classify"),
        ("dropout_embed", 0.3), ("dropout_residual", 0.3), ("dropout_attention", 0.3),
        ("dropout_activation", 0.3), ("n_decoder_layers", 1), ("embed_init_std", 0.5),
    ]
    return cases


# The effect each switch must have; a (field, value) entry overrides the field's. Everything
# else must change the outputs with the weights held equal.
EXPECTED: dict[object, str] = {
    **{name: "structure" for name in (
        "attention", "tie_qk", "bias", "embed_norm", "final_norm", "tie_embeddings", "output_bias",
        "n_kv_heads", "d_head", "type_vocab_size", "n_decoder_layers", "head", "norm",
    )},
    **{name: "train" for name in DROPOUTS},
    "embed_init_std": "init",
    **{("position", p): "structure" for p in ("sinusoidal", "learned", "shaw", "t5_bias")},
    **{("activation", a): "structure" for a in ("swiglu", "geglu")},
}

# Fields held at one value on both sides, so the switch itself is seen to act rather than a
# default it implies: pre-norm turns on the final norm (final_norm=None), which would show up as
# a structure change even if the placement were ignored.
HOLD = {"norm_placement": dict(final_norm=False)}


def other_value(field: str, value: object, base: ModelConfig) -> object:
    """A different value of the same field: the base's default, or the next allowed value."""
    if isinstance(value, bool):
        return not value
    if value != getattr(base, field):
        return getattr(base, field)
    return next(v for v in _allowed(typing.get_type_hints(ModelConfig)[field]) if v != value)


# ---------------------------------------------------------------------------------------------
# measuring what a switch changed


def run(model: nn.Module, family: str, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Logits ``(B, T, V)`` (or ``(B, C)`` from a classifier) for a padded batch."""
    return model(ids, ids, mask, mask) if family == "seq2seq" else model(ids, mask)


def structure(model: nn.Module) -> dict[str, tuple[int, ...]]:
    """Names and shapes of the distinct parameters and the persistent buffers."""
    persistent = model.state_dict().keys()
    named = list(model.named_parameters()) + [(n, b) for n, b in model.named_buffers() if n in persistent]
    return {n: tuple(t.shape) for n, t in named}


def outputs(model: nn.Module, family: str, train: bool) -> torch.Tensor:
    torch.manual_seed(1)
    ids, mask = padded_batch()
    model.train(train)
    torch.manual_seed(2)  # the same dropout draws for both models
    with torch.no_grad():
        return run(model, family, ids, mask)


def differ(a: torch.Tensor, b: torch.Tensor, exact: bool = False) -> bool:
    """A change beyond float rounding, or (``exact``) any change of any bit."""
    if a.shape != b.shape:
        return True
    return not torch.equal(a, b) if exact else not torch.allclose(a, b, rtol=1e-4, atol=1e-6)


def effects(cfg_a: ModelConfig, cfg_b: ModelConfig, exact: bool = False) -> set[str]:
    """What differs between the models two configs build from the same seed (see module doc).

    ``exact`` counts any bit of difference in the outputs (for "this field has no effect")."""
    torch.manual_seed(0)
    a = build_model(cfg_a)
    torch.manual_seed(0)
    b = build_model(cfg_b)
    if structure(a) != structure(b):
        return {"structure"}
    found = set()
    state_a, state_b = a.state_dict(), b.state_dict()
    if any(not torch.equal(state_a[k], state_b[k]) for k in state_a):
        found.add("init")
    b.load_state_dict(state_a)  # from here on only the computation can differ
    family = cfg_a.family
    if differ(outputs(a, family, train=False), outputs(b, family, train=False), exact):
        found.add("outputs")
    elif differ(outputs(a, family, train=True), outputs(b, family, train=True), exact):
        found.add("train")
    return found


def loss_and_grads(cfg: ModelConfig) -> None:
    model = build_model(cfg).train()
    ids, mask = padded_batch(vocab=cfg.vocab_size)
    logits = run(model, cfg.family, ids, mask)
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


def assert_unused(cfg: ModelConfig, other: ModelConfig, field: str) -> None:
    """A field the family cannot use: documented as such, and truly without effect."""
    assert field in unused_fields(other), f"{field} is unused at one value but not at {getattr(other, field)!r}"
    found = effects(cfg, other, exact=True)
    assert not found, f"unused_fields says {field} has no effect in {cfg.family}, but it changed: {found}"


# ---------------------------------------------------------------------------------------------
# the grid


@pytest.mark.parametrize("field,value", switch_values(), ids=lambda v: str(v))
@pytest.mark.parametrize("family", FAMILIES)
def test_each_switch_value_changes_the_model_and_trains(family, field, value):
    if field == "type_vocab_size" and family != "encoder":  # segment embeddings are encoder-only
        with pytest.raises(ConfigError, match="type_vocab_size"):
            tiny(family=family, **{field: value})
        return
    hold = HOLD.get(field, {})
    cfg = tiny(family=family, **hold, **{field: value})
    other = tiny(family=family, **hold, **{field: other_value(field, value, tiny(family=family))})
    if field in unused_fields(cfg):
        assert_unused(cfg, other, field)
    else:
        expected = EXPECTED.get((field, value), EXPECTED.get(field, "outputs"))
        found = effects(cfg, other)
        assert expected in found, (
            f"{field}={value!r} vs {getattr(other, field)!r} in {family}: expected a change in "
            f"{expected}, found {found or 'nothing'}"
        )
    loss_and_grads(cfg)


# Weights large enough that pre-activations are of order 1, where GELU and its tanh
# approximation part (at the default 0.02 they agree to float rounding).
ALIAS_INIT_STD = 0.5


def literal_fields() -> list[str]:
    hints = typing.get_type_hints(ModelConfig)
    return sorted({f for f, v in switch_values() if isinstance(v, str) and len(_allowed(hints[f])) > 2})


@pytest.mark.parametrize("field", literal_fields())
@pytest.mark.parametrize("family", FAMILIES)
def test_no_two_values_of_a_switch_build_the_same_model(family, field):
    """Beyond "differs from the default": no value is a silent alias of another (gelu_tanh of
    gelu, say). Two values with the same structure are run with the same weights."""
    if field in unused_fields(tiny(family=family)):
        return  # the grid holds every value of an unused field to "no effect" instead
    models = {}
    for value in _allowed(typing.get_type_hints(ModelConfig)[field]):
        torch.manual_seed(0)
        models[value] = build_model(tiny(family=family, init_std=ALIAS_INIT_STD, **{field: value}))
    for a, b in itertools.combinations(models, 2):
        if structure(models[a]) != structure(models[b]):
            continue  # told apart by their parameters
        models[b].load_state_dict(models[a].state_dict())
        # train mode counts too: the two BatchNorms agree in eval (running statistics) and
        # differ only in what a padded training batch contributes to its statistics
        assert any(differ(outputs(models[a], family, train), outputs(models[b], family, train))
                   for train in (False, True)), f"{field}={a!r} and {b!r} build the same {family} model"


# ---------------------------------------------------------------------------------------------
# combinations, heads and baselines

MIXTURES = [
    dict(position="rope", norm="rms", norm_placement="pre", activation="swiglu", n_kv_heads=2, bias=False),
    dict(position="alibi", window=4, attention="additive", norm="batch", residual=False),
    dict(position="shaw", tie_qk=True, attention_scale="none", activation="geglu", embed_scale=False),
    dict(position="t5_bias", norm_placement="pre", final_norm=False, tie_embeddings=False, output_bias=True),
    dict(position="learned", embed_norm=True, n_kv_heads=1, d_head=12, dropout_attention=0.2),
]


@pytest.mark.parametrize("mixture", MIXTURES, ids=lambda m: m["position"])
@pytest.mark.parametrize("family", FAMILIES)
def test_mixed_switches_train(family, mixture):
    loss_and_grads(tiny(family=family, **mixture))


@pytest.mark.parametrize("pooling", ["cls", "mean", "max"])
def test_classifier_head_pooling_acts_and_trains(pooling):
    cfg = tiny(family="encoder", head="classify", pooling=pooling, n_classes=2)
    assert "pooling" not in unused_fields(cfg)
    for other in ("cls", "mean", "max"):
        if other != pooling:
            assert effects(cfg, cfg.replace(pooling=other)) == {"outputs"}, f"{pooling} vs {other}"
    assert_unused(cfg.replace(tie_embeddings=False), cfg, "tie_embeddings")  # no vocabulary output
    loss_and_grads(cfg)


@pytest.mark.parametrize("field,value", switch_values(), ids=lambda v: str(v))
@pytest.mark.parametrize("family", ["seq2seq", "lm"])
def test_lstm_baselines_read_what_they_claim(family, field, value):
    """The LSTMs ignore the Transformer switches — documented by ``unused_fields`` — and act on
    the rest (``embed_scale`` only through the initial weights: see ``qkv.models.lstm``)."""
    if field == "type_vocab_size":
        return  # refused outside the encoder family, for every arch (see the grid above)
    cfg = tiny(family=family, arch="lstm", **{field: value})
    other = tiny(family=family, arch="lstm", **{field: other_value(field, value, tiny(family=family))})
    if field in unused_fields(cfg):
        assert_unused(cfg, other, field)
    else:
        assert effects(cfg, other), f"{field}={value!r} changes nothing in the {family} LSTM"


@pytest.mark.parametrize("family", ["seq2seq", "lm"])
def test_lstm_baselines_train(family):
    loss_and_grads(tiny(family=family, arch="lstm"))
