"""Synthetic probe tasks and a short training run, shared by the questions that train.

The copy task: ``x_1 … x_n SEP x_1 … x_n``, a language model scored only on the second half.
Predicting x_i there means attending to the token n + 1 positions back, so the task cannot be
solved without attention, yet a 2-layer model learns it in a few hundred CPU steps.
"""

from __future__ import annotations

import tempfile
from typing import Any

import torch
from torch import Tensor, nn

from ..config import ModelConfig
from ..models import build_model
from ..train import IGNORE_INDEX, Trainer, TrainConfig, smoothed_cross_entropy

SEP = 3  # the eos id separates the two halves; 4.. are the symbols
FIRST_SYMBOL = 4


def copy_batch(g: torch.Generator, batch: int, n: int, symbols: int) -> dict[str, Tensor]:
    """One batch of the copy task: input_ids ``(B, 2n)`` and labels ``(B, 2n)``, -100 on the first half."""
    x = torch.randint(FIRST_SYMBOL, FIRST_SYMBOL + symbols, (batch, n), generator=g)  # (B, n)
    seq = torch.cat([x, torch.full((batch, 1), SEP), x], dim=1)  # (B, 2n + 1)
    labels = seq[:, 1:].clone()  # (B, 2n): next token
    labels[:, :n] = IGNORE_INDEX  # the first half is random: nothing to learn there
    return {"input_ids": seq[:, :-1].contiguous(), "labels": labels}


def copy_model_config(symbols: int, n: int, **changes: Any) -> ModelConfig:
    """A small LM sized for the copy task, dropout off so seeds differ only in init and data."""
    fields = dict(family="lm", vocab_size=FIRST_SYMBOL + symbols, d_model=64, n_layers=2, n_heads=2, d_ff=128,
                  max_len=2 * n + 2, dropout_embed=0.0, dropout_residual=0.0, dropout_attention=0.0,
                  dropout_activation=0.0)
    fields.update(changes)
    return ModelConfig(**fields)


def train_copy(cfg: ModelConfig, *, steps: int, seed: int, n: int, symbols: int, batch: int = 32,
               lr: float = 1e-3) -> tuple[nn.Module, list[float]]:
    """Train a fresh model on the copy task with qkv's Trainer; returns (model, loss per step)."""
    torch.manual_seed(seed)
    model = build_model(cfg)
    tcfg = TrainConfig(lr=lr, schedule="cosine", warmup_steps=steps // 10, max_steps=steps, label_smoothing=0.0,
                       precision="fp32", device="cpu", seed=seed, log_every=steps + 1, weight_decay=0.0)
    g = torch.Generator().manual_seed(10_000 + seed)
    with tempfile.TemporaryDirectory() as tmp:  # the trainer's log; no checkpoint is written
        trainer = Trainer(model, tcfg, lambda epoch: [], tmp, progress=False)
        curve = [trainer.train_step([copy_batch(g, batch, n, symbols)])["loss"] for _ in range(steps)]
    return model.eval(), curve


@torch.no_grad()
def copy_eval(model: nn.Module, *, n: int, symbols: int, batches: int = 4, batch: int = 64) -> dict[str, float]:
    """Mean loss (nats/token) and accuracy on held-out copy batches, the same for every model."""
    g = torch.Generator().manual_seed(999)
    loss_sum, tokens, correct = 0.0, 0, 0
    for _ in range(batches):
        b = copy_batch(g, batch, n, symbols)
        logits = model.forward_batch(b)  # (B, 2n, V)
        summed, count = smoothed_cross_entropy(logits, b["labels"])
        keep = b["labels"] != IGNORE_INDEX
        loss_sum, tokens = loss_sum + float(summed), tokens + int(count)
        correct += int((logits.argmax(-1)[keep] == b["labels"][keep]).sum())
    return {"loss": loss_sum / tokens, "accuracy": correct / tokens}


__all__ = ["copy_batch", "copy_model_config", "train_copy", "copy_eval", "SEP"]
