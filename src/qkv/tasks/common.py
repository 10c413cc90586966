"""What every task shares: its tokenizer file, batching by token budget, a progress-free loss."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..data import IGNORE_INDEX, TokenBudgetBatchSampler
from ..errors import CheckpointError
from ..tokenize import KINDS
from ..tokenize import fast as fast_tokenize

TOKENIZER_FILE = "tokenizer.json"


def tokenizer_for(out_dir: Path, kind: str, vocab_size: int, texts: Callable[[], list[str]], **train_kwargs):
    """Load ``out_dir/tokenizer.json`` if a previous run wrote it, else train and save one.

    Training uses qkv's readable trainer; encoding uses the same tokenizer.json executed by HF
    ``tokenizers`` (``qkv.tokenize.fast``) for speed — the tests hold the two equal.
    """
    path = out_dir / TOKENIZER_FILE
    if not path.exists():
        out_dir.mkdir(parents=True, exist_ok=True)
        tok = KINDS[kind].train(texts(), vocab_size, **train_kwargs)
        tmp = path.with_suffix(".tmp")
        tok.save(str(tmp))
        tmp.replace(path)
    return fast_tokenize.load(path)


def find_tokenizer(checkpoint_dir: str | Path):
    """The tokenizer saved with a checkpoint: in the checkpoint folder or the run folder above it."""
    checkpoint_dir = Path(checkpoint_dir)
    for folder in (checkpoint_dir, checkpoint_dir.parent):
        if (folder / TOKENIZER_FILE).exists():
            return fast_tokenize.load(folder / TOKENIZER_FILE)
    raise CheckpointError(
        f"no {TOKENIZER_FILE} in {checkpoint_dir} or {checkpoint_dir.parent}; "
        f"pass the checkpoint folder written by `qkv train`"
    )


class EpochBatches:
    """One epoch's collated batches: sized (for the schedule and ETA), collated lazily."""

    def __init__(self, indices: list[list[int]], collate: Callable[[list[int]], dict]) -> None:
        self.indices, self.collate = indices, collate

    def __len__(self) -> int:
        return len(self.indices)

    def __iter__(self):
        return (self.collate(idx) for idx in self.indices)


def budget_batches(lengths: Sequence[int], max_tokens: int, seed: int, collate: Callable[[list[int]], dict],
                   max_sentences: int | None = None) -> Callable[[int], EpochBatches]:
    """``batches(epoch)`` for the trainer: deterministic per epoch, bucketed by length."""
    sampler = TokenBudgetBatchSampler(lengths, max_tokens, max_sentences=max_sentences, shuffle=True, seed=seed)
    return lambda epoch: EpochBatches(sampler.batches(epoch), collate)


@torch.no_grad()
def mean_token_loss(model: nn.Module, batches) -> dict[str, float]:
    """Mean cross-entropy per labelled token (no smoothing) and its perplexity."""
    total, count = 0.0, 0
    device = next(model.parameters()).device
    for batch in batches:
        batch = {k: v.to(device) for k, v in batch.items()}
        logits = model.forward_batch(batch)
        labels = batch["labels"]
        total += F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), labels.reshape(-1),
                                 ignore_index=IGNORE_INDEX, reduction="sum").item()
        count += int((labels != IGNORE_INDEX).sum())
    loss = total / max(count, 1)
    return {"loss": loss, "ppl": math.exp(min(loss, 50.0))}
