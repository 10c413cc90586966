"""Probes find a linearly encoded property, and the control task tells it from memorisation."""

from __future__ import annotations

import torch

from qkv.interpret.probes import control_labels, probe_with_control


def data(n: int, seed: int, encoded: bool):
    """Features of n tokens of 50 types; the property (2 classes) is written along one direction
    when ``encoded``, else the features carry only the token's identity."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, 50, (n,), generator=g)
    prop = torch.randint(0, 2, (n,), generator=g)  # independent of the token type
    type_vectors = torch.randn(50, 16, generator=torch.Generator().manual_seed(99))
    x = type_vectors[ids] + 0.1 * torch.randn(n, 16, generator=g)
    if encoded:
        x[:, 0] += 3.0 * (2 * prop - 1)
    return x, prop, ids


def test_an_encoded_property_is_selective_and_an_absent_one_is_not():
    found = probe_with_control(data(2000, 0, True), data(500, 1, True), 2)
    absent = probe_with_control(data(2000, 0, False), data(500, 1, False), 2)
    assert found["accuracy"] > 0.95 and found["selectivity"] > 0.1
    assert absent["accuracy"] < 0.6  # token identity says nothing about this property
    assert absent["control_accuracy"] > absent["accuracy"] + 0.1  # memorising the types does solve the control


def test_control_labels_are_fixed_per_token_type():
    ids = torch.tensor([3, 7, 3, 3, 7, 1])
    labels = control_labels(ids, 4)
    assert labels[0] == labels[2] == labels[3] and labels[1] == labels[4]
    assert torch.equal(labels, control_labels(ids, 4))
