"""``make demo``: build every model family, run a forward and backward pass, print a summary."""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F

from . import ModelConfig, build_model
from .models import describe
from .presets import PRESETS


def smoke(cfg: ModelConfig) -> str:
    model = build_model(cfg).train()
    B, T = 4, 32
    ids = torch.randint(4, cfg.vocab_size, (B, T))
    mask = torch.arange(T)[None, :] < torch.tensor([T, T - 5, T - 9, T - 17])[:, None]
    start = time.perf_counter()
    if cfg.family == "seq2seq":
        logits = model(ids, ids, mask, mask)
    else:
        logits = model(ids, mask)
    if cfg.family == "encoder":  # reconstruct the input (an MLM head without corruption)
        loss = F.cross_entropy(logits[mask], ids[mask])
    else:  # predict the next token
        keep = mask[:, 1:]
        loss = F.cross_entropy(logits[:, :-1][keep], ids[:, 1:][keep])
    loss.backward()
    ms = 1000 * (time.perf_counter() - start)
    return f"{describe(model)}\n    loss {loss.item():.3f} (ln V = {torch.tensor(float(cfg.vocab_size)).log():.3f}), forward+backward {ms:.0f} ms"


def main() -> None:
    torch.manual_seed(0)
    for name in ("multi30k", "gpt_small", "bert_small", "lstm_multi30k"):
        print(f"{name}: {smoke(PRESETS[name]())}")


if __name__ == "__main__":
    main()
