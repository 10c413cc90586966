"""Trained models several questions measure, trained once and cached, then reused.

The shared language model is a character-level Transformer LM on Tiny Shakespeare (bytes, so
no tokenizer to train), one per (size, seed). The first question that asks trains it with
qkv's Trainer and saves it under the cache folder; every later ask loads the saved weights.
The cache is ``$QKV_LAB_CACHE`` if set, else ``runs/lab/shared`` — weights never go into the
committed ``docs/lab`` results.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import torch
from torch import Tensor, nn

from ..checkpoint import latest_checkpoint, load
from ..config import ModelConfig
from ..data import load_shakespeare, random_lm_batch, sequential_lm_batches
from ..models import build_model
from ..tasks.common import mean_token_loss
from ..train import Trainer, TrainConfig

DEFAULT_CACHE = Path("runs/lab/shared")
FIRST_BYTE = 4  # ids 0–3 are pad, unk, bos, eos; byte b is id b + 4
LM_SIZES = {
    "smoke": {"d_model": 32, "n_layers": 1, "n_heads": 2, "d_ff": 64, "context": 32, "steps": 20, "batch": 8,
              "val_chars": 4096},
    "full": {"d_model": 128, "n_layers": 4, "n_heads": 4, "d_ff": 512, "context": 128, "steps": 800, "batch": 16,
             "val_chars": None},  # None: all of the validation text
}


def cache_root() -> Path:
    return Path(os.environ.get("QKV_LAB_CACHE", DEFAULT_CACHE))


def shakespeare_ids(split: str) -> Tensor:
    """Tiny Shakespeare as byte ids ``(N,)`` (checksummed by the data loader)."""
    data = load_shakespeare(split).encode("utf-8")
    return torch.frombuffer(bytearray(data), dtype=torch.uint8).long() + FIRST_BYTE


def lm_config(size: str) -> ModelConfig:
    s = LM_SIZES[size]
    return ModelConfig(family="lm", vocab_size=256 + FIRST_BYTE, d_model=s["d_model"], n_layers=s["n_layers"],
                       n_heads=s["n_heads"], d_ff=s["d_ff"], max_len=s["context"], norm_placement="pre",
                       dropout_embed=0.0, dropout_residual=0.0)


def train_lm(size: str, seed: int, folder: Path) -> None:
    """Train the shared LM into ``folder`` (a checkpoint plus ``lm.json`` with its held-out loss)."""
    s = LM_SIZES[size]
    stream = shakespeare_ids("train")
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = build_model(lm_config(size))
    tcfg = TrainConfig(lr=1e-3, schedule="cosine", warmup_steps=s["steps"] // 10, max_steps=s["steps"],
                       label_smoothing=0.0, precision="fp32", device="cpu", seed=seed, log_every=s["steps"] + 1,
                       weight_decay=0.0, keep_last=1)
    batches = lambda epoch: [random_lm_batch(stream, s["context"], s["batch"], gen)  # noqa: E731
                             for _ in range(s["steps"])]
    Trainer(model, tcfg, batches, folder, progress=False).fit()
    held_out = shakespeare_ids("val")[: s["val_chars"]]
    val = mean_token_loss(model.eval(), sequential_lm_batches(held_out, s["context"], 64))
    record = {"size": size, "seed": seed, "steps": s["steps"], "val_chars": len(held_out), **val}
    (folder / "lm.json").write_text(json.dumps(record) + "\n")


def trained_lm(size: str, seed: int) -> tuple[nn.Module, dict]:
    """The shared Shakespeare LM for (size, seed) and its record; trained on first use only."""
    folder = cache_root() / f"shakespeare-lm-{size}-seed{seed}"
    if not (folder / "lm.json").is_file():
        folder.parent.mkdir(parents=True, exist_ok=True)
        # train into a temporary folder and rename, so an interrupted run leaves no half cache
        with tempfile.TemporaryDirectory(dir=folder.parent) as tmp:
            train_lm(size, seed, Path(tmp))
            if not (folder / "lm.json").is_file():
                Path(tmp).rename(folder)
                Path(tmp).mkdir()  # TemporaryDirectory removes what it created
    return load(latest_checkpoint(folder)), json.loads((folder / "lm.json").read_text())


__all__ = ["trained_lm", "lm_config", "shakespeare_ids", "cache_root", "LM_SIZES"]
