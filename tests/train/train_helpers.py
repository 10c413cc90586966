"""Tiny models and hand-made batches for the training tests (no dependency on qkv.data).

Imported by the tests and by the scripts the tests run in subprocesses (resume-after-kill,
torchrun), so both sides build exactly the same model, config and batches.
"""

from __future__ import annotations

from typing import Any

import torch

import qkv
from qkv.train import TrainConfig

PARAGRAPH = (
    "It is a truth universally acknowledged, that a single man in possession of a good fortune, "
    "must be in want of a wife."
)
IGNORE = -100
NO_DROPOUT = dict(dropout_embed=0.0, dropout_residual=0.0, dropout_attention=0.0, dropout_activation=0.0)


def tiny_config(family: str = "lm", **changes: Any) -> qkv.ModelConfig:
    fields = dict(family=family, vocab_size=64, d_model=32, n_layers=2, n_heads=4, d_ff=64, max_len=128,
                  **NO_DROPOUT)
    fields.update(changes)
    return qkv.ModelConfig(**fields)


def tiny_model(family: str = "lm", seed: int = 0, **changes: Any) -> torch.nn.Module:
    torch.manual_seed(seed)
    return qkv.build_model(tiny_config(family, **changes))


def char_ids(text: str = PARAGRAPH) -> torch.Tensor:
    """Characters → ids 4.. (0-3 stay free for pad/unk/bos/eos), shape (N,)."""
    alphabet = sorted(set(text))
    return torch.tensor([alphabet.index(c) + 4 for c in text])


def lm_windows(T: int = 24, stride: int = 6, text: str = PARAGRAPH) -> torch.Tensor:
    """Overlapping windows of T+1 characters, (W, T+1)."""
    ids = char_ids(text)
    return torch.stack([ids[s : s + T + 1] for s in range(0, len(ids) - T - 1, stride)])


def lm_batch(windows: torch.Tensor) -> dict[str, torch.Tensor]:
    """(B, T+1) windows → input_ids (B, T) and labels (B, T) shifted by one."""
    return {"input_ids": windows[:, :-1].contiguous(), "labels": windows[:, 1:].contiguous()}


def ragged_lm_batches(n: int, B: int = 4, T: int = 12, seed: int = 0) -> list[dict[str, torch.Tensor]]:
    """n LM batches of random ids whose rows have different numbers of labelled tokens
    (the tail of each row is -100), so token weighting across batches and ranks matters."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        x = torch.randint(4, 64, (B, T + 1), generator=g)
        batch = lm_batch(x)
        lengths = torch.randint(2, T + 1, (B,), generator=g)
        batch["labels"][torch.arange(T)[None, :] >= lengths[:, None]] = IGNORE
        batch["mask"] = torch.ones(B, T, dtype=torch.bool)
        out.append(batch)
    return out


# ---- the run the exact-resume test interrupts -------------------------------------------------

RESUME_MAX_STEPS, RESUME_SAVE_AT = 8, 4


def resume_setup() -> tuple[torch.nn.Module, TrainConfig, Any]:
    """Model with dropout (so RNG restoration matters), noam schedule, clipping, smoothing and
    accumulation; 6 batches per epoch in a per-epoch shuffled order, 2 per step."""
    torch.manual_seed(0)
    model = qkv.build_model(tiny_config("lm", dropout_embed=0.1, dropout_residual=0.1))
    config = TrainConfig(precision="fp32", lr=3e-3, warmup_steps=3, schedule="noam", max_steps=RESUME_MAX_STEPS,
                         accumulation_steps=2, grad_clip=0.5, label_smoothing=0.1,
                         save_every=RESUME_SAVE_AT, keep_last=None, device="cpu", seed=1)
    windows = lm_windows()

    def batches(epoch: int) -> list[dict[str, torch.Tensor]]:
        order = torch.randperm(len(windows), generator=torch.Generator().manual_seed(epoch))
        return [lm_batch(windows[order[i : i + 2]]) for i in range(0, 12, 2)]

    return model, config, batches


# ---- the run the DDP test launches with torchrun --------------------------------------------


def ddp_setup() -> tuple[torch.nn.Module, TrainConfig, Any]:
    """6 global batches of 4 rows with ragged label counts; 2 batches per step, 3 steps.

    eps=1e-6, not 1e-9: the key bias has an exactly zero true gradient (adding q·b to every
    score of a row does not change the softmax), so its gradient is rounding noise (~1e-12)
    that differs between one process and two; Adam divides by sqrt(v) + eps and would turn
    that noise into full-size steps of either sign.
    """
    torch.manual_seed(0)
    model = qkv.build_model(tiny_config("lm"))
    config = TrainConfig(precision="fp32", lr=1e-2, eps=1e-6, schedule="constant", warmup_steps=0, max_steps=3,
                         accumulation_steps=2, grad_clip=0.5, label_smoothing=0.1, weight_decay=0.01,
                         device="cpu")
    data = ragged_lm_batches(6, B=4)
    return model, config, lambda epoch: data
