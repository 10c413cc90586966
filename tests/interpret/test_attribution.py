"""Integrated Gradients: completeness holds at the step count reported, padding gets nothing,
re-initialised weights give different attributions, and translators are attributed per token."""

from __future__ import annotations

import torch

from qkv.config import ModelConfig
from qkv.interpret.attribution import classifier_ig, rank_correlation, translation_ig
from qkv.models import build_model


def classifier(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    cfg = ModelConfig(family="encoder", head="classify", n_classes=2, pooling="mean", vocab_size=40, d_model=16,
                      n_layers=2, n_heads=2, d_ff=32, max_len=16, dropout_embed=0.0, dropout_residual=0.0)
    return build_model(cfg).eval()


def test_attributions_sum_to_the_output_change_and_padding_gets_none():
    model = classifier()
    ids = torch.randint(4, 40, (2, 8))
    mask = torch.ones(2, 8, dtype=torch.bool)
    mask[1, 5:] = False
    ig = classifier_ig(model, ids, mask, tolerance=0.01)
    assert ig["tokens"].shape == (2, 8)
    gap = ig["f_input"] - ig["f_baseline"]
    assert torch.allclose(ig["tokens"].sum(-1), gap, rtol=0.02, atol=1e-4)  # completeness, checked here
    assert float(ig["delta"].max()) <= 0.01 and ig["steps"] in (16, 32, 64, 128, 256, 512)
    assert torch.all(ig["tokens"][1, 5:] == 0)  # padded tokens cannot move the output


def test_randomised_weights_change_the_attributions():
    ids = torch.randint(4, 40, (1, 12))
    trained_like, shuffled = classifier(0), classifier(1)
    target = torch.tensor([0])
    a = classifier_ig(trained_like, ids, target=target)["tokens"]
    b = classifier_ig(shuffled, ids, target=target)["tokens"]
    assert rank_correlation(a, a) > 0.999 and rank_correlation(a, b) < 0.9


def test_translation_ig_attributes_a_generated_token_to_the_source():
    torch.manual_seed(0)
    cfg = ModelConfig(family="seq2seq", vocab_size=40, d_model=16, n_layers=1, n_heads=2, d_ff=32, max_len=16,
                      dropout_embed=0.0, dropout_residual=0.0)
    model = build_model(cfg).eval()
    src = torch.randint(4, 40, (1, 6))
    out = model.generate(src, max_new_tokens=4, eos_id=None)  # (1, 4)
    start = cfg.decoder_start_id if cfg.decoder_start_id is not None else cfg.bos_id
    tgt_in = torch.cat([torch.full((1, 1), start), out[:, :-1]], dim=1)
    ig = translation_ig(model, src, tgt_in, position=2, token=out[:, 2])
    assert ig["tokens"].shape == (1, 6)
    assert torch.allclose(ig["tokens"].sum(-1), ig["f_input"] - ig["f_baseline"], rtol=0.02, atol=1e-4)
