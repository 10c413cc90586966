"""The switches the lab's experiments need: each changes exactly what it says, and nothing else."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.testing import assert_close

from qkv import ModelConfig, build_model
from qkv.models import unused_fields
from qkv.train import per_position_loss, smoothed_cross_entropy
from tests.conftest import tiny


@pytest.mark.parametrize("family", ["lm", "seq2seq"])
def test_without_the_causal_mask_early_outputs_see_later_tokens(family):
    """causal_mask=False: changing token 7 changes the output at 2; the default model does not."""
    ids = torch.randint(4, 50, (2, 10))
    changed = ids.clone()
    changed[:, 7] = (ids[:, 7] - 4 + 1) % 46 + 4  # a different real token
    outputs = {}
    for causal in (True, False):
        torch.manual_seed(0)
        model = build_model(tiny(family=family, causal_mask=causal)).eval()
        run = (lambda x: model(x)) if family == "lm" else (lambda x: model(ids[:, :5], x))  # noqa: E731
        outputs[causal] = (run(ids)[:, :7], run(changed)[:, :7])
    assert_close(*outputs[True], rtol=1e-5, atol=1e-6)
    assert (outputs[False][0] - outputs[False][1]).abs().amax() > 1e-3


def test_causal_mask_is_listed_as_unused_by_an_encoder():
    assert "causal_mask" in unused_fields(tiny(family="encoder"))
    assert "causal_mask" not in unused_fields(tiny(family="lm"))


def test_mask_hook_restricts_attention_to_what_it_allows():
    """A hook that lets each query see only itself makes every position independent of the rest."""
    model = build_model(tiny(family="encoder", position="none")).eval()
    seen = []

    def diagonal_only(mask, T, S):
        seen.append(mask)
        return torch.eye(T, S, dtype=torch.bool)[None, None]  # (1, 1, T, S)

    ids = torch.randint(4, 50, (2, 6))
    model.encoder.mask_hook = diagonal_only
    hooked = model(ids)
    alone = torch.cat([model(ids[:, t : t + 1]) for t in range(6)], dim=1)  # one token at a time
    assert seen and seen[0] is None  # an unpadded encoder has no mask of its own to pass in
    assert_close(hooked, alone, rtol=1e-5, atol=1e-6)
    model.encoder.mask_hook = None
    assert (model(ids) - hooked).abs().amax() > 1e-3


def test_mask_hook_receives_the_causal_mask_of_a_decoder():
    model = build_model(tiny(family="lm")).eval()
    seen = []
    model.decoder.mask_hook = lambda mask, T, S: seen.append(mask) or mask
    ids = torch.randint(4, 50, (1, 5))
    out = model(ids)
    assert torch.equal(seen[0][0, 0], torch.ones(5, 5, dtype=torch.bool).tril())
    model.decoder.mask_hook = None
    assert_close(model(ids), out)  # passing the mask through unchanged changes nothing


def test_embed_init_std_sets_the_table_init_whatever_embed_scale_says():
    tables = {}
    for scale in (True, False):
        torch.manual_seed(0)
        model = build_model(tiny(family="lm", d_model=64, embed_scale=scale, embed_init_std=0.3))
        tables[scale] = model.decoder.embed.weight.detach()
    assert torch.equal(tables[True], tables[False])
    assert abs(float(tables[True].std()) - 0.3) < 0.02
    default = build_model(tiny(family="lm", d_model=64)).decoder.embed.weight.detach()
    assert abs(float(default.std()) - 64**-0.5) < 0.01  # the coupled default is kept


def test_embed_init_std_must_be_positive():
    with pytest.raises(ValueError, match="embed_init_std=0.0 must be > 0"):
        ModelConfig(embed_init_std=0.0)


def test_naive_batchnorm_counts_padding_and_the_padding_aware_one_does_not():
    """The same real tokens with and without trailing padding: only the naive norm changes."""
    ids = torch.randint(4, 50, (3, 6))
    padded = torch.cat([ids, torch.zeros(3, 4, dtype=torch.long)], dim=1)
    mask = (torch.arange(10)[None] < 6).expand(3, -1)
    diffs = {}
    for norm in ("batch", "batch_naive"):
        torch.manual_seed(0)
        model = build_model(tiny(family="encoder", norm=norm)).train()
        plain = model(ids, torch.ones(3, 6, dtype=torch.bool))
        diffs[norm] = float((model(padded, mask)[:, :6] - plain).abs().amax())
    assert diffs["batch"] < 1e-5
    assert diffs["batch_naive"] > 1e-2


def test_per_position_loss_sums_to_the_total_and_skips_ignored_labels():
    logits = torch.randn(4, 7, 11)
    labels = torch.randint(0, 11, (4, 7))
    labels[1, 5:] = -100
    loss, count = per_position_loss(logits, labels)
    assert loss.shape == count.shape == (7,)
    assert count.tolist() == [4, 4, 4, 4, 4, 3, 3]
    total, n = smoothed_cross_entropy(logits, labels)
    assert_close(loss.sum(), total)
    assert int(count.sum()) == int(n)
    first = F.cross_entropy(logits[:, 0], labels[:, 0], reduction="sum")
    assert_close(loss[0], first)
