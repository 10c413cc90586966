"""Position-wise feed-forward networks (question 14), registered by activation name.

``MLP``: down(dropout(act(up(x)))), the 2017 paper's FFN(x) = max(0, xW1 + b1)W2 + b2.
``GLU``: down(dropout(act(gate(x)) * up(x))), the gated variants of Shazeer (2020),
arXiv:2002.05202. A GLU has three matrices where an MLP has two; to compare at equal
parameters set ``d_ff`` to 2/3 of the MLP's, as that paper does.
Input and output ``(B, T, d_model)``.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from ..config import ModelConfig
from ..registry import Registry

ACTIVATION = Registry("activation")
ACTIVATION.register("relu")(F.relu)
ACTIVATION.register("gelu")(F.gelu)  # exact erf form (BERT)
ACTIVATION.register("gelu_tanh")(lambda x: F.gelu(x, approximate="tanh"))  # GPT-2's "gelu_new"
ACTIVATION.register("silu")(F.silu)

FFN = Registry("ffn")


class MLP(nn.Module):
    def __init__(self, cfg: ModelConfig, activation: str) -> None:
        super().__init__()
        self.up = nn.Linear(cfg.d_model, cfg.d_ff, bias=cfg.bias)
        self.down = nn.Linear(cfg.d_ff, cfg.d_model, bias=cfg.bias)
        self.act = ACTIVATION[activation]
        self.dropout = nn.Dropout(cfg.dropout_activation)

    def forward(self, x: Tensor) -> Tensor:
        return self.down(self.dropout(self.act(self.up(x))))


class GLU(nn.Module):
    def __init__(self, cfg: ModelConfig, activation: str) -> None:
        super().__init__()
        self.gate = nn.Linear(cfg.d_model, cfg.d_ff, bias=cfg.bias)
        self.up = nn.Linear(cfg.d_model, cfg.d_ff, bias=cfg.bias)
        self.down = nn.Linear(cfg.d_ff, cfg.d_model, bias=cfg.bias)
        self.act = ACTIVATION[activation]
        self.dropout = nn.Dropout(cfg.dropout_activation)

    def forward(self, x: Tensor) -> Tensor:
        return self.down(self.dropout(self.act(self.gate(x)) * self.up(x)))


for _name in ("relu", "gelu", "gelu_tanh", "silu"):
    FFN.register(_name)(lambda cfg, _a=_name: MLP(cfg, _a))
FFN.register("swiglu")(lambda cfg: GLU(cfg, "silu"))
FFN.register("geglu")(lambda cfg: GLU(cfg, "gelu"))


def build_ffn(cfg: ModelConfig) -> nn.Module:
    return FFN[cfg.activation](cfg)
