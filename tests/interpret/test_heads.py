"""Head importance and physical pruning: pruning a head equals masking it, and the layer shrinks."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from qkv.config import ModelConfig
from qkv.interpret.heads import ablation_importance, gradient_importance, prune_heads, prune_least_important
from qkv.models import build_model
from qkv.models.common import n_params


def lm() -> torch.nn.Module:
    torch.manual_seed(0)
    cfg = ModelConfig(family="lm", vocab_size=30, d_model=32, n_layers=2, n_heads=4, d_ff=64, max_len=16,
                      dropout_embed=0.0, dropout_residual=0.0)
    return build_model(cfg).eval()


def loss_fn(model, batch):
    logits = model(batch["input_ids"])
    return F.cross_entropy(logits.flatten(0, 1), batch["labels"].flatten())


def batches():
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(0, 30, (3, 4, 13), generator=g)
    return [{"input_ids": x[:, :-1], "labels": x[:, 1:]} for x in ids]


def test_pruning_a_head_equals_masking_it_and_removes_its_parameters():
    model, ids = lm(), torch.randint(0, 30, (2, 10))
    attn = model.decoder.layers[1].self_attn
    attn.head_mask = torch.tensor([1.0, 0.0, 1.0, 0.0])
    with torch.no_grad():
        masked = model(ids)
    attn.head_mask = None
    before = n_params(model)
    prune_heads(attn, [0, 2])
    with torch.no_grad():
        pruned = model(ids)
    assert torch.allclose(masked, pruned, atol=1e-5)
    assert attn.n_heads == 2 and attn.q_proj.out_features == 16
    assert before - n_params(model) == 2 * (4 * 32 * 8 + 3 * 8)  # 2 heads × (q, k, v rows + o cols, q/k/v biases)


def mean_loss(model):
    with torch.no_grad():
        return sum(float(loss_fn(model, b)) for b in batches()) / 3


def test_ablation_is_the_loss_change_of_removing_the_head_and_gradient_its_derivative():
    model = lm().double()  # float64: the finite difference below needs more than fp32's digits
    ablation = ablation_importance(model, batches(), loss_fn)
    gradient = gradient_importance(model, batches()[:1], loss_fn)  # one batch: |∂loss/∂m_h| itself
    key, base = ("decoder", 0, "self"), mean_loss(model)
    first = lambda m: float(loss_fn(m, batches()[0]))  # noqa: E731
    attn = model.decoder.layers[0].self_attn
    assert attn.head_mask is None  # left as it was
    eps = 1e-5
    for h in range(4):
        attn.head_mask = torch.ones(4, dtype=torch.float64)
        attn.head_mask[h] = 1 - eps
        with torch.no_grad():
            shifted = first(model)
        attn.head_mask = None
        with torch.no_grad():
            slope = (first(model) - shifted) / eps  # finite difference of the loss in m_h
        assert abs(gradient[key][h] - abs(slope)) < 0.01 * abs(slope) + 1e-7
        pruned = lm().double()
        prune_heads(pruned.decoder.layers[0].self_attn, [x for x in range(4) if x != h])
        assert abs(ablation[key][h] - (mean_loss(pruned) - base)) < 1e-9


def test_prune_least_important_removes_k_heads_and_keeps_one_per_layer():
    model = lm()
    scores = {("decoder", 0, "self"): [0.0, 0.1, 0.2, 0.3], ("decoder", 1, "self"): [5.0, 6.0, 7.0, 8.0]}
    removed = prune_least_important(model, scores, k=4)
    assert sorted(removed) == [(("decoder", 0, "self"), 0), (("decoder", 0, "self"), 1), (("decoder", 0, "self"), 2),
                               (("decoder", 1, "self"), 0)]
    assert model.decoder.layers[0].self_attn.n_heads == 1 and model.decoder.layers[1].self_attn.n_heads == 3
    with torch.no_grad():
        assert model(torch.randint(0, 30, (1, 8))).shape == (1, 8, 30)
