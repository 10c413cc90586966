"""Language-model tasks: Tiny Shakespeare (characters) and Jane Austen (subwords).

Training batches are windows at random offsets of the token stream (nanoGPT's ``get_batch``),
``steps_per_epoch`` of them per "epoch", drawn from a generator seeded by (seed, epoch) so a
resumed run sees the same batches. Validation is the mean loss over every token of the held-out
text in non-overlapping windows — each token predicted once, with 0 … context-1 tokens of context.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from ..config import ModelConfig
from ..data import load_austen, load_shakespeare, random_lm_batch, sequential_lm_batches
from ..train.config import TrainConfig
from .common import mean_token_loss, tokenizer_for

LOADERS = {"shakespeare": load_shakespeare, "austen": load_austen}


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


@dataclass
class LanguageModelTask:
    name: str
    corpus: str
    model: ModelConfig
    train: TrainConfig
    batch_size: int = 12
    steps_per_epoch: int = 500
    vocab_size: int = 260  # 256 bytes + 4 specials: byte level, i.e. characters for ASCII text
    tokenizer_kind: str = "byte_bpe"
    description: str = ""
    test_limit: int | None = None
    _data: dict = field(default_factory=dict, repr=False)

    @property
    def context(self) -> int:
        return self.model.max_len

    def prepare(self, out_dir: Path):
        self.tok = tokenizer_for(out_dir, self.tokenizer_kind, self.vocab_size,
                                 lambda: LOADERS[self.corpus]("train").splitlines(keepends=True))
        for split in ("train", "val"):
            text = LOADERS[self.corpus](split)
            self._data[split] = torch.tensor(self.tok.encode(text, add_special_tokens=False), dtype=torch.long)
        return self.tok

    def model_config(self) -> ModelConfig:
        return self.model.replace(vocab_size=self.tok.vocab_size, pad_id=self.tok.pad_id,
                                  bos_id=self.tok.bos_id, eos_id=self.tok.eos_id)

    def batches(self):
        return RandomWindows(self._data["train"], self.context, self.batch_size, self.steps_per_epoch,
                             self.train.seed)

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        return mean_token_loss(model, sequential_lm_batches(self._data["val"], self.context, 64))

    def test(self, model: nn.Module, split: str = "val", beams: int = 1, limit: int | None = None) -> dict:
        """Validation loss per token (nats; per character for the byte-level Shakespeare) and a sample."""
        result = self.evaluate(model)
        prompt = torch.tensor([self.tok.encode("\n", add_special_tokens=False)])
        room = self.context - prompt.shape[1]  # learned positions stop at the context length
        sample = model.generate(prompt, max_new_tokens=room, do_sample=True, seed=0, eos_id=None)
        result.update(split="val", tokens=len(self._data["val"]), sample=self.tok.decode(sample[0].tolist()))
        return result
