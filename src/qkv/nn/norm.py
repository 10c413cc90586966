"""Normalisation layers (questions 12, 13, 25), registered by name.

Every norm takes ``(x, token_mask)``: ``x`` is ``(B, T, d)``, ``token_mask`` ``(B, T)`` bool
(True = real token) or None. Only BatchNorm uses the mask — its statistics are taken across
the batch, so padding would otherwise pollute them — but one signature lets a block treat
every norm alike.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import ModelConfig
from ..registry import Registry

NORM = Registry("norm")


@NORM.register("layer")
class LayerNorm(nn.Module):
    """Normalise each token over its features: (x - mean) / sqrt(var + eps) · γ + β (Ba et al., 2016).

    Independent of batch size and of other tokens, so it behaves the same in training, at
    inference and on padded batches — the reason Transformers use it (question 12).
    """

    def __init__(self, d: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(d))
        self.bias = nn.Parameter(torch.zeros(d))

    def forward(self, x: Tensor, token_mask: Tensor | None = None) -> Tensor:
        return F.layer_norm(x, x.shape[-1:], self.weight, self.bias, self.eps)


@NORM.register("rms")
class RMSNorm(nn.Module):
    """x / sqrt(mean(x²) + eps) · γ: LayerNorm without centring or bias (Zhang & Sennrich, 2019)."""

    def __init__(self, d: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(d))

    def forward(self, x: Tensor, token_mask: Tensor | None = None) -> Tensor:
        x32 = x.float()  # the mean of squares overflows easily in half precision
        normed = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)
        return normed.to(x.dtype) * self.weight


@NORM.register("batch")
class MaskedBatchNorm(nn.Module):
    """BatchNorm over all real tokens of the batch, per feature (Ioffe & Szegedy, 2015).

    Statistics come from the positions where ``token_mask`` is True only; padded positions are
    neither counted nor updated into the running averages. At eval time the running averages
    are used, which is the train/eval gap question 13 measures.
    """

    def __init__(self, d: int, eps: float = 1e-5, momentum: float = 0.1) -> None:
        super().__init__()
        self.eps, self.momentum = eps, momentum
        self.weight = nn.Parameter(torch.ones(d))
        self.bias = nn.Parameter(torch.zeros(d))
        self.register_buffer("running_mean", torch.zeros(d))
        self.register_buffer("running_var", torch.ones(d))

    def forward(self, x: Tensor, token_mask: Tensor | None = None) -> Tensor:
        if self.training:
            if token_mask is None:
                token_mask = torch.ones(x.shape[:-1], dtype=torch.bool, device=x.device)
            w = token_mask[..., None].to(x.dtype)  # (B, T, 1)
            n = w.sum().clamp(min=1)
            mean = (x * w).sum(dim=(0, 1)) / n  # (d,)
            var = ((x - mean).pow(2) * w).sum(dim=(0, 1)) / n  # biased, as BatchNorm normalises
            with torch.no_grad():
                unbiased = var * n / (n - 1).clamp(min=1)
                self.running_mean.lerp_(mean.detach().to(self.running_mean.dtype), self.momentum)
                self.running_var.lerp_(unbiased.detach().to(self.running_var.dtype), self.momentum)
        else:
            mean, var = self.running_mean.to(x.dtype), self.running_var.to(x.dtype)
        return (x - mean) * torch.rsqrt(var + self.eps) * self.weight + self.bias


@NORM.register("batch_naive")
class NaiveBatchNorm(MaskedBatchNorm):
    """BatchNorm as written for images: statistics over every position, padding included.

    The padded positions' values (whatever the layers made of the pad embedding) enter the
    mean and variance, so a real token's output depends on how much padding shares its batch —
    the failure ``norm="batch"`` avoids by counting real tokens only (questions 12, 13).
    """

    def forward(self, x: Tensor, token_mask: Tensor | None = None) -> Tensor:
        return super().forward(x, None)


def build_norm(cfg: ModelConfig) -> nn.Module:
    return NORM[cfg.norm](cfg.d_model, cfg.norm_eps)
