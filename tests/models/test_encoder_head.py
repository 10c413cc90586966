"""The MLM head's activation follows the body's, a gated one mapped to its gate's function."""

from __future__ import annotations

import pytest
import torch

from qkv import build_model
from qkv.config import Activation, _allowed
from qkv.models.encoder import HEAD_ACTIVATION, head_activation
from qkv.nn.ffn import ACTIVATION, FFN
from tests.conftest import tiny


@pytest.mark.parametrize("activation", _allowed(Activation))
def test_mlm_head_uses_the_configured_activation(activation):
    model = build_model(tiny(family="encoder", activation=activation))
    expected = {"swiglu": "silu", "geglu": "gelu"}.get(activation, activation)
    assert model.head.act is ACTIVATION[expected]
    assert head_activation(activation) == expected


def test_every_activation_has_a_head_activation_and_gated_ones_match_their_ffn_gate():
    for activation in _allowed(Activation):
        assert head_activation(activation) in ACTIVATION, activation  # no fallback to hide a gap
    for gated, plain in HEAD_ACTIVATION.items():
        ffn = FFN[gated](tiny(activation=gated))
        assert ffn.act is ACTIVATION[plain], f"{gated}'s gate is not {plain}"


def test_swiglu_and_geglu_heads_differ():
    """The old fallback gave both GELU; with the same weights their MLM logits now differ."""
    torch.manual_seed(0)
    swiglu = build_model(tiny(family="encoder", activation="swiglu", init_std=0.5)).eval()
    geglu = build_model(tiny(family="encoder", activation="geglu", init_std=0.5)).eval()
    geglu.load_state_dict(swiglu.state_dict())
    h = torch.randn(2, 5, 32)
    assert not torch.allclose(swiglu.head(h, None), geglu.head(h, None), atol=1e-4)
