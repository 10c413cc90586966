"""Weight import and export with Hugging Face ``transformers``: GPT-2, BERT and Marian.

    from_hf(GPT2LMHeadModel | BertForMaskedLM | MarianMTModel) -> qkv model
    to_hf(qkv lm | encoder (mlm) | seq2seq model)              -> the HF model of that shape

Each family file (``hf_gpt2``, ``hf_bert``, ``hf_marian``) says how config fields and module
names correspond. This file picks the family, builds the target model, loads the renamed tensors
and checks that nothing was lost on the way: every target tensor is filled, and tensors that the
target ties into one must arrive equal (a silent tie would make one of them win unnoticed).
``transformers`` is imported only when a conversion runs, so qkv does not depend on it.
"""

from __future__ import annotations

from types import ModuleType

import torch
from torch import nn

from ..models import build_model
from . import hf_bert, hf_gpt2, hf_marian
from .hf_common import StateDict

# qkv family -> the HF architecture of that shape
FAMILIES: dict[str, ModuleType] = {"lm": hf_gpt2, "encoder": hf_bert, "seq2seq": hf_marian}


def from_hf(hf_model: nn.Module) -> nn.Module:
    """A qkv model computing the same logits as ``hf_model``, weights copied (not shared).

    Raises ``TypeError`` for a model class qkv does not map and ``ValueError`` naming the HF
    config setting qkv has no switch for. The result is on ``hf_model``'s device and dtype and
    in its train/eval mode.
    """
    family = _family_of(hf_model)
    cfg = family.config_from_hf(hf_model.config)
    first = next(hf_model.parameters())
    model = build_model(cfg).to(device=first.device, dtype=first.dtype)
    hf_sd = {k: v.detach() for k, v in hf_model.state_dict().items()}
    sd = family.weights_from_hf(hf_sd, cfg, list(model.state_dict()))
    _check_ties(model, sd, family.ARCH)
    model.load_state_dict(sd, strict=True)
    return model.train(hf_model.training)


def to_hf(model: nn.Module) -> nn.Module:
    """The HF model (config and weights) equivalent to a qkv ``lm``, ``encoder`` or ``seq2seq``.

    Raises ``ValueError`` naming the first qkv config field that the target architecture cannot
    express (e.g. ``position='rope'`` for GPT-2), before any weight is touched.
    """
    cfg = model.config
    family = FAMILIES[cfg.family]
    hf_config = family.config_to_hf(cfg)
    first = next(model.parameters())
    hf_model = family.model_class()(hf_config).to(device=first.device, dtype=first.dtype)
    sd = family.weights_to_hf({k: v.detach() for k, v in model.state_dict().items()}, cfg)
    _load_hf(hf_model, sd, family.DERIVED, family.ARCH)
    return hf_model.train(model.training)


# ---------------------------------------------------------------------------------------------


def _family_of(hf_model: nn.Module) -> ModuleType:
    for family in FAMILIES.values():
        if isinstance(hf_model, family.model_class()):
            return family
    names = ", ".join(f.model_class().__name__ for f in FAMILIES.values())
    raise TypeError(f"from_hf maps {names}; got {type(hf_model).__name__}")


def _tie_groups(module: nn.Module) -> dict[str, frozenset[str]]:
    """Each state-dict key → all keys naming the same tensor object (itself included)."""
    by_id: dict[int, set[str]] = {}
    tensors = module.state_dict(keep_vars=True)
    for key, tensor in tensors.items():
        by_id.setdefault(id(tensor), set()).add(key)
    return {key: frozenset(by_id[id(tensor)]) for key, tensor in tensors.items()}


def _check_ties(model: nn.Module, sd: StateDict, arch: str) -> None:
    """Keys qkv ties (a shared embedding) must come from equal source tensors."""
    for group in set(_tie_groups(model).values()):
        first, *rest = sorted(group)
        for key in rest:
            if not torch.equal(sd[first], sd[key]):
                raise ValueError(
                    f"{arch}: qkv ties {first} and {key} into one tensor, but the HF model holds "
                    f"different weights for them (an untied HF model, e.g. tie_word_embeddings=False "
                    f"in a Marian model, which unties its encoder and decoder embeddings as well)"
                )


def _load_hf(hf_model: nn.Module, sd: StateDict, derived: tuple[str, ...], arch: str) -> None:
    """Load ``sd`` and prove it took: no name unknown, none left unset, none overwritten by a tie."""
    missing, unexpected = hf_model.load_state_dict(sd, strict=False)
    if unexpected:
        raise RuntimeError(f"{arch}: qkv produced tensors HF does not have: {unexpected}")
    groups = _tie_groups(hf_model)
    unset = [k for k in missing if k not in derived and groups[k].isdisjoint(sd)]
    if unset:
        raise RuntimeError(f"{arch}: qkv has no weights for {unset}")
    loaded = hf_model.state_dict()
    for key, tensor in sd.items():
        if not torch.equal(loaded[key], tensor.to(loaded[key].dtype)):
            raise ValueError(
                f"{arch} ties {sorted(groups[key])} into one tensor, but the qkv weights for "
                f"them differ (check tie_embeddings)"
            )
