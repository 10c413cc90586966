"""Language-model tasks: Tiny Shakespeare (characters) and Jane Austen (subwords).

Training batches are windows at random offsets of the token stream (nanoGPT's ``get_batch``),
``steps_per_epoch`` of them per "epoch", drawn from a generator seeded by (seed, epoch) so a
resumed run sees the same batches. Validation is the mean loss over every token of the held-out
text in non-overlapping windows — each token predicted once, with 0 … context-1 tokens of context.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import torch
from torch import nn

from ..config import ModelConfig
from ..data import load_austen, load_shakespeare, random_lm_batch, sequential_lm_batches
from .base import Task, fixed
from .common import mean_token_loss, tokenizer_for

LOADERS = {"shakespeare": load_shakespeare, "austen": load_austen}
SPLITS = {"shakespeare": ("val",), "austen": ("val", "test")}  # Shakespeare has no test split


class RandomWindows:
    """``steps`` random-window batches for one epoch, reproducible from (seed, epoch)."""

    def __init__(self, stream: torch.Tensor, context: int, batch_size: int, steps: int, seed: int) -> None:
        self.stream, self.context, self.batch_size, self.steps, self.seed = stream, context, batch_size, steps, seed

    def __call__(self, epoch: int) -> "RandomWindows":
        self.epoch = epoch
        return self

    def __len__(self) -> int:
        return self.steps

    def __iter__(self):
        gen = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        for _ in range(self.steps):
            yield random_lm_batch(self.stream, self.context, self.batch_size, gen)


@dataclass(kw_only=True)
class LanguageModelTask(Task):
    corpus: str = fixed()
    batch_size: int = 12  # windows of max_len tokens per step
    steps_per_epoch: int = 500
    vocab_size: int = 260  # 256 bytes + 4 specials: byte level, i.e. characters for ASCII text
    tokenizer_kind: str = "byte_bpe"
    _data: dict = field(default_factory=dict, repr=False)

    family: ClassVar[str] = "lm"
    test_split: ClassVar[str] = "val"

    @property
    def splits(self) -> tuple[str, ...]:  # type: ignore[override]
        return SPLITS[self.corpus]

    @property
    def context(self) -> int:
        return self.model.max_len

    def prepare(self, out_dir: Path):
        self.tok = tokenizer_for(out_dir, self.tokenizer_kind, self.vocab_size,
                                 lambda: LOADERS[self.corpus]("train").splitlines(keepends=True))
        for split in ("train", "val"):
            self._data[split] = self._encode(split)
        return self.tok

    def _encode(self, split: str) -> torch.Tensor:
        text = LOADERS[self.corpus](split)
        return torch.tensor(self.tok.encode(text, add_special_tokens=False), dtype=torch.long)

    def model_config(self) -> ModelConfig:
        return self.model.replace(vocab_size=self.tok.vocab_size, pad_id=self.tok.pad_id,
                                  bos_id=self.tok.bos_id, eos_id=self.tok.eos_id)

    def batches(self):
        return RandomWindows(self._data["train"], self.context, self.batch_size, self.steps_per_epoch,
                             self.train.seed)

    def evaluate(self, model: nn.Module, split: str = "val") -> dict[str, float]:
        if split not in self._data:
            self._data[split] = self._encode(split)
        return mean_token_loss(model, sequential_lm_batches(self._data[split], self.context, 64))

    def test(self, model: nn.Module, split: str | None = None, beams: int = 1, limit: int | None = None) -> dict:
        """Loss per token of ``split`` (nats; per character for the byte-level Shakespeare) and a sample."""
        split = self.check_split(split)
        result = self.evaluate(model, split)
        prompt = torch.tensor([self.tok.encode("\n", add_special_tokens=False)])
        sample = model.generate(prompt, max_new_tokens=self.context - prompt.shape[1], do_sample=True, seed=0,
                                eos_id=None)
        result.update(split=split, tokens=len(self._data[split]), sample=self.tok.decode(sample[0].tolist()))
        return result
