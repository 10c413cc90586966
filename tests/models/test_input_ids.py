"""An id outside the vocabulary is an InputError naming the id and where it is, in every family."""

from __future__ import annotations

import pytest
import torch

from qkv import build_model
from qkv.errors import InputError
from qkv.nn.ids import check_ids
from tests.conftest import tiny

V = 50  # tiny()'s vocabulary


def good_ids() -> torch.Tensor:
    return torch.randint(4, V, (2, 6))


def with_bad(value: int, at: tuple[int, int] = (1, 3)) -> torch.Tensor:
    ids = good_ids()
    ids[at] = value
    return ids


@pytest.mark.parametrize("family,arch", [("lm", "transformer"), ("encoder", "transformer"), ("lm", "lstm")])
def test_single_input_families_name_the_bad_id(family, arch):
    model = build_model(tiny(family=family, arch=arch)).eval()
    with pytest.raises(InputError, match=r"input_ids hold id 9000 at \(1, 3\), outside the vocabulary \[0, 50\)"):
        model(with_bad(9000))
    assert model(good_ids()).shape[:2] == (2, 6)  # in-range ids still run


@pytest.mark.parametrize("arch", ["transformer", "lstm"])
def test_seq2seq_says_whether_source_or_target_is_bad(arch):
    model = build_model(tiny(family="seq2seq", arch=arch)).eval()
    with pytest.raises(InputError, match=r"src hold id 50 at \(1, 3\)"):
        model(with_bad(V), good_ids())
    with pytest.raises(InputError, match=r"tgt_in hold id -1 at \(0, 0\)"):
        model(good_ids(), with_bad(-1, at=(0, 0)))


def test_cached_decoding_checks_each_new_token():
    model = build_model(tiny(family="lm")).eval()
    cache = model.new_cache(max_len=8)
    model(good_ids()[:, :4], cache=cache)
    with pytest.raises(InputError, match=r"id 77 at \(0, 0\)"):
        model(torch.tensor([[77], [5]]), cache=cache)


def test_the_first_bad_id_is_reported_and_is_not_an_index_error():
    ids = torch.tensor([[1, 2, 3], [4, 60, -5]])
    with pytest.raises(InputError, match=r"id 60 at \(1, 1\)") as info:
        check_ids(ids, V)
    assert not isinstance(info.value, IndexError)
    assert isinstance(info.value, ValueError)  # InputError is also a ValueError
    check_ids(torch.empty(0, 3, dtype=torch.long), V)  # nothing to check


def test_accelerator_tensors_are_not_read_back():
    """On a non-CPU device the check would cost a host sync per forward, so it is skipped."""
    ids = torch.full((1, 2), 10**6, dtype=torch.long, device="meta")
    check_ids(ids, V)  # meta tensors hold no values; reading them would raise
