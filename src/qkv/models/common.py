"""Pieces every model family shares: weight initialisation and the output projection."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..config import ModelConfig


def init_weights(module: nn.Module, cfg: ModelConfig) -> None:
    """Normal(0, init_std) for matrices, zeros for biases (GPT-2/BERT).

    Token embeddings that are multiplied by √d_model start with std d_model^-½ instead, so the
    scaled embedding has unit scale (the fairseq/Marian convention; question 8).
    """
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, std=cfg.init_std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, std=cfg.init_std)


def init_token_embedding(embed: nn.Embedding, cfg: ModelConfig) -> None:
    """Token-table init. ``embed_init_std`` fixes it whatever ``embed_scale`` says, so question 8
    can switch the √d multiplier alone; by default it follows the multiplier (see init_weights)."""
    if cfg.embed_init_std is not None:
        std = cfg.embed_init_std
    else:
        std = cfg.d_model**-0.5 if cfg.embed_scale else cfg.init_std
    nn.init.normal_(embed.weight, std=std)


class OutputHead(nn.Module):
    """hidden ``(B, T, d)`` → logits ``(B, T, V)``, optionally tied to the token embedding."""

    def __init__(self, cfg: ModelConfig, embed: nn.Embedding) -> None:
        super().__init__()
        self.proj = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        if cfg.tie_embeddings:
            self.proj.weight = embed.weight  # one matrix for input and output (Press & Wolf, 2017)
        self.bias = nn.Parameter(torch.zeros(cfg.vocab_size)) if cfg.output_bias else None

    def forward(self, h: Tensor) -> Tensor:
        logits = self.proj(h)
        return logits + self.bias if self.bias is not None else logits


def n_params(model: nn.Module) -> int:
    """Distinct parameters (a tied matrix counts once)."""
    return sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())
