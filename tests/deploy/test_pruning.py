"""Feed-forward neurons pruned physically compute what the unpruned model computes with those
neurons masked out; magnitude pruning keeps the shapes and zeroes the share asked for."""

from __future__ import annotations

import copy

import pytest
import torch

from qkv import ModelConfig, build_model
from qkv.data import TranslationCollator
from qkv.deploy.pruning import (feed_forward_blocks, heads_pruned, magnitude_prune, neuron_importance,
                                prune_ffn_fraction, translation_loss)
from qkv.interpret import ablation_importance, attention_modules
from qkv.errors import InputError


def translator(activation: str = "relu"):
    torch.manual_seed(0)
    cfg = ModelConfig(family="seq2seq", vocab_size=60, d_model=32, n_layers=2, n_heads=2, d_ff=64, max_len=32,
                      activation=activation, dropout_embed=0.0, dropout_residual=0.0)
    return build_model(cfg).eval()


@pytest.mark.parametrize("activation", ["relu", "swiglu"])
def test_pruned_neurons_equal_the_same_neurons_masked_out(activation):
    model = translator(activation)
    src, tgt = torch.randint(4, 60, (2, 9)), torch.randint(4, 60, (2, 7))
    masked = copy.deepcopy(model)
    for key, ffn in feed_forward_blocks(masked).items():  # reference: zero the down columns of the weakest half
        weakest = torch.argsort(neuron_importance(ffn))[:32]
        with torch.no_grad():
            ffn.down.weight[:, weakest] = 0.0
    assert prune_ffn_fraction(model, 0.5) == 32 * 4  # 2 encoder + 2 decoder blocks
    assert all(ffn.up.out_features == 32 and ffn.down.in_features == 32 for ffn in feed_forward_blocks(model).values())
    with torch.no_grad():
        assert torch.allclose(model(src, tgt), masked(src, tgt), atol=1e-5)
        assert not torch.allclose(model(src, tgt), translator(activation)(src, tgt), atol=1e-3)


def test_magnitude_pruning_zeroes_the_share_asked_for_and_keeps_every_shape():
    model = translator()
    shapes = {k: v.shape for k, v in model.state_dict().items()}
    src, tgt = torch.randint(4, 60, (1, 5)), torch.randint(4, 60, (1, 4))
    with torch.no_grad():
        before = model(src, tgt)
        share = magnitude_prune(model, 0.5)
        after = model(src, tgt)
    assert 0.5 <= share < 0.52 and {k: v.shape for k, v in model.state_dict().items()} == shapes
    assert not torch.allclose(before, after, atol=1e-3)


def test_bad_fractions_are_clear_errors():
    with pytest.raises(InputError, match="fraction 1"):
        prune_ffn_fraction(translator(), 1.0)
    with pytest.raises(InputError, match="sparsity -0.1"):
        magnitude_prune(translator(), -0.1)


def test_heads_pruned_removes_the_least_important_quarter_from_a_copy():
    model = translator()
    collate = TranslationCollator(0, 2, 3)
    batches = [collate([(torch.randint(4, 60, (7,)).tolist(), torch.randint(4, 60, (5,)).tolist()) for _ in range(4)])]
    importance = ablation_importance(model, batches, translation_loss)  # 6 modules x 2 heads
    ranked = sorted((score, key, h) for key, scores in importance.items() for h, score in enumerate(scores))
    pruned = heads_pruned(model, batches, 0.25)
    heads = {key: m.n_heads for key, m in attention_modules(pruned).items()}
    assert sum(heads.values()) == 9 and all(m.n_heads == 2 for m in attention_modules(model).values())
    weakest = [key for _, key, _ in ranked[:3]]
    assert all(heads[key] < 2 for key in weakest)  # the three lowest-scoring heads are the ones gone
    assert sum(p.numel() for p in pruned.parameters()) < sum(p.numel() for p in model.parameters())
