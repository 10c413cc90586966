"""ModelConfig: validation messages, overrides, JSON round trip, presets."""

from __future__ import annotations

import pytest

from qkv import ConfigError, ModelConfig
from qkv.config import parse_overrides
from qkv.presets import PRESETS


@pytest.mark.parametrize(
    "changes, words",
    [
        (dict(d_model=250, n_heads=4), ["d_model=250", "n_heads=4", "d_head"]),
        (dict(n_heads=4, n_kv_heads=3), ["n_heads=4", "n_kv_heads=3"]),
        (dict(position="absolute"), ["position='absolute'", "'rope'", "'alibi'"]),
        (dict(norm="group"), ["norm='group'", "'layer'", "'rms'", "'batch'"]),
        (dict(activation="tanh"), ["activation='tanh'", "'swiglu'"]),
        (dict(attention_scale="sqrt"), ["attention_scale='sqrt'", "'sqrt_dk'", "float"]),
        (dict(attention_scale=-1.0), ["attention_scale=-1.0", "> 0"]),
        (dict(dropout_attention=1.0), ["dropout_attention=1.0", "[0, 1)"]),
        (dict(n_layers=0), ["n_layers=0", "positive"]),
        (dict(d_model=32.0), ["d_model=32.0", "int"]),
        (dict(tie_qk=True, n_kv_heads=2), ["tie_qk", "n_kv_heads=2"]),
        (dict(position="rope", d_model=30, n_heads=2), ["rope", "even", "15"]),
        (dict(arch="lstm", family="encoder"), ["arch='lstm'", "family='encoder'"]),
        (dict(pad_id=9000), ["pad_id=9000", "vocabulary"]),
    ],
)
def test_bad_configs_name_field_value_and_allowed(changes, words):
    with pytest.raises(ConfigError) as err:
        ModelConfig(**changes)
    for word in words:
        assert word in str(err.value), f"{word!r} missing from: {err.value}"


def test_overrides_are_typed():
    cfg = ModelConfig().override(
        ["d_model=128", "position=rope", "attention_scale=0.25", "tie_qk=true", "n_kv_heads=none", "window=8"]
    )
    assert (cfg.d_model, cfg.position, cfg.attention_scale, cfg.tie_qk, cfg.n_kv_heads, cfg.window) == (
        128, "rope", 0.25, True, None, 8,
    )
    assert ModelConfig().override(["attention_scale=none"]).attention_scale == "none"


@pytest.mark.parametrize(
    "item, words",
    [
        ("d_modle=3", ["d_modle", "did you mean", "d_model"]),
        ("d_model=big", ["d_model='big'", "int"]),
        ("tie_qk=maybe", ["tie_qk='maybe'", "bool"]),
        ("position", ["key=value"]),
    ],
)
def test_bad_overrides(item, words):
    with pytest.raises(ConfigError) as err:
        parse_overrides([item])
    for word in words:
        assert word in str(err.value)


def test_json_round_trip_and_unknown_keys():
    cfg = ModelConfig(position="alibi", attention_scale=0.3, n_kv_heads=2, window=5)
    assert ModelConfig.from_json(cfg.to_json()) == cfg
    with pytest.raises(ConfigError, match="unknown field 'heads' \\(not a ModelConfig field\\); did you mean .*n_heads"):
        ModelConfig.from_dict({**cfg.to_dict(), "heads": 3})


def test_derived_sizes():
    cfg = ModelConfig(d_model=256, n_heads=8)
    assert (cfg.head_dim, cfg.kv_heads, cfg.decoder_layers) == (32, 8, cfg.n_layers)
    assert ModelConfig(d_model=250, n_heads=4, d_head=64).head_dim == 64


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_build(name):
    cfg = PRESETS[name]()
    assert isinstance(cfg, ModelConfig)
