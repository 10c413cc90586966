"""SST-2 sentiment: BERT-style MLM pretraining on the training text, then classification
(questions 20, 28, 34). Nothing but SST-2's own training sentences is used.

``mlm-sst2`` trains an encoder to fill in 15% corrupted tokens (80% [MASK] / 10% random /
10% kept); ``classify-sst2 init_from=RUN/checkpoint-00006000`` starts a classifier from that encoder's
body and fine-tunes it on the labels; dev accuracy is the metric (Kim's CNN from random
initialisation: 83.5%).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import torch
from torch import nn

from ..config import ModelConfig
from ..data import ClassificationCollator, MLMCollator, load_sst2
from ..checkpoint import load
from ..errors import ConfigError, DataError
from .base import Task, fixed
from .common import budget_batches, mean_token_loss, tokenizer_for


@dataclass(kw_only=True)
class SST2Task(Task):
    objective: str = fixed()  # "mlm" or "classify"
    vocab_size: int = 8000
    max_tokens: int = 4000
    tokenizer_kind: str = "wordpiece"
    # WordPiece merge score. "frequency" (what HF's WordPieceTrainer and BERT-style vocabularies
    # use) keeps frequent words whole. The textbook "likelihood" score, count(ab)/(count(a)count(b)),
    # prefers pairs whose parts rarely occur apart: on SST-2 at 8k it spells out rare words
    # ("newfoundland") while "the" and "new" stay split into letters, and both a bag of those
    # subwords and the encoder classify far worse (docs/benchmarks.md, the vocabulary probe).
    tokenizer_score: str = "frequency"
    init_from: str | None = None  # an MLM checkpoint whose encoder starts the classifier
    mask_prob: float = 0.8  # 1.0 with random_prob 0.0 is the "100% [MASK]" ablation
    random_prob: float = 0.1
    _data: dict = field(default_factory=dict, repr=False)

    family: ClassVar[str] = "encoder"
    splits: ClassVar[tuple[str, ...]] = ("dev",)  # SST-2's test labels are not public
    test_split: ClassVar[str] = "dev"

    def prepare(self, out_dir: Path):
        source = Path(self.init_from).parent if self.init_from else out_dir
        if self.init_from and not (out_dir / "tokenizer.json").exists():  # reuse the MLM run's vocabulary
            out_dir.mkdir(parents=True, exist_ok=True)
            found = next((p for p in (Path(self.init_from), source) if (p / "tokenizer.json").exists()), None)
            if found is None:
                raise DataError(f"no tokenizer.json in init_from={self.init_from} or the run folder above it; "
                                f"point init_from at a checkpoint folder written by `qkv train mlm-sst2`")
            (out_dir / "tokenizer.json").write_bytes((found / "tokenizer.json").read_bytes())
        self.tok = tokenizer_for(out_dir, self.tokenizer_kind, self.vocab_size,
                                 lambda: [s for s, _ in load_sst2("train")], lowercase=True,
                                 **({"score": self.tokenizer_score} if self.tokenizer_kind == "wordpiece" else {}))
        limit = self.model.max_len
        for split in ("train", "dev"):
            rows = load_sst2(split)
            ids = self.tok.encode_batch([s for s, _ in rows])  # with [CLS] ... [SEP]
            self._data[split] = [(i[:limit], y) for i, (_, y) in zip(ids, rows) if len(i) > 2]
        return self.tok

    def model_config(self) -> ModelConfig:
        return self.model.replace(vocab_size=self.tok.vocab_size, pad_id=self.tok.pad_id,
                                  bos_id=self.tok.bos_id if self.tok.bos_id is not None else self.tok.pad_id,
                                  eos_id=self.tok.eos_id if self.tok.eos_id is not None else self.tok.pad_id)

    def _mlm(self, seed: int) -> MLMCollator:
        return MLMCollator(pad_id=self.tok.pad_id, mask_id=self.tok.mask_id, vocab_size=self.tok.vocab_size,
                           special_ids=self._special_ids(),
                           mask_prob=self.mask_prob, random_prob=self.random_prob, seed=seed)

    def _special_ids(self) -> list[int]:
        return [self.tok.hf.token_to_id(t) for t in self.tok.special_tokens]

    def batches(self):
        data = self._data["train"]
        lengths = [len(ids) for ids, _ in data]
        if self.objective == "classify":
            collate = ClassificationCollator(self.tok.pad_id)
            return budget_batches(lengths, self.max_tokens, self.train.seed,
                                  lambda idx: collate([data[i] for i in idx]))
        epoch_batches = budget_batches(lengths, self.max_tokens, self.train.seed, lambda idx: idx)

        def batches(epoch: int):  # a fresh, epoch-seeded corruption: resumable mid-epoch
            collator = self._mlm(self.train.seed * 100_003 + epoch)
            indices = epoch_batches(epoch)
            indices.collate = lambda idx: collator([data[i][0] for i in idx])
            return indices

        return batches

    def initial_weights(self, model: nn.Module) -> None:
        """Copy the encoder body of an MLM checkpoint into ``model`` (heads stay fresh)."""
        if not self.init_from:
            return
        body = {k: v for k, v in load(self.init_from).state_dict().items() if k.startswith("encoder.")}
        missing = [k for k in body if k not in model.state_dict()]
        if missing:
            raise ConfigError(f"init_from={self.init_from} does not fit this model: {missing[:3]}")
        model.load_state_dict(body, strict=False)

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        data = self._data["dev"]
        if self.objective == "mlm":
            collator = self._mlm(seed=1234)  # the same corruption at every evaluation
            return mean_token_loss(model, (collator([ids for ids, _ in data[i:i + 64]])
                                           for i in range(0, len(data), 64)))
        collate = ClassificationCollator(self.tok.pad_id)
        correct = 0
        with torch.no_grad():
            for i in range(0, len(data), 64):
                batch = collate(data[i:i + 64])
                logits = model(batch["input_ids"], batch["mask"])
                correct += int((logits.argmax(-1) == batch["labels"]).sum())
        return {"accuracy": correct / len(data)}

    def test(self, model: nn.Module, split: str | None = None, beams: int = 1, limit: int | None = None) -> dict:
        """Dev accuracy (classify) or held-out MLM loss (mlm)."""
        split = self.check_split(split)
        return {**self.evaluate(model), "split": split, "n": len(self._data[split])}
