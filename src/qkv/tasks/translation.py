"""Translation tasks: Multi30k de→en and Tatoeba zh↔en (questions 15, 21, 27, 29).

One joint byte-level BPE for both languages (so one embedding table serves encoder, decoder and
output), token-budget batches, validation loss during training, and sacreBLEU / chrF of beam
search on the test set at the end.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import sacrebleu
import torch
from torch import nn

from ..config import ModelConfig
from ..data import TranslationCollator, load_multi30k, load_tatoeba
from ..generate import generate
from ..train.config import TrainConfig
from .common import budget_batches, mean_token_loss, tokenizer_for

LOADERS = {"multi30k": load_multi30k, "tatoeba": load_tatoeba}


def translate(model: nn.Module, tok, sentences: list[str], *, beams: int = 4, batch_size: int = 64,
              max_new_tokens: int | None = None, length_alpha: float = 0.6) -> list[str]:
    """Translate ``sentences`` in length-sorted batches; returns them in the input order."""
    cfg = model.config
    device = next(model.parameters()).device
    encoded = [tok.encode(s, add_special_tokens=False)[: cfg.max_len - 1] + [cfg.eos_id] for s in sentences]
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
    out: list[str] = [""] * len(sentences)
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        T = max(len(encoded[i]) for i in chunk)
        ids = torch.full((len(chunk), T), cfg.pad_id, dtype=torch.long)
        for row, i in enumerate(chunk):
            ids[row, : len(encoded[i])] = torch.tensor(encoded[i])
        mask = ids != cfg.pad_id
        limit = max_new_tokens or min(cfg.max_len - 1, int(T * 1.5) + 10)
        new = generate(model, ids.to(device), mask.to(device), max_new_tokens=limit, beams=beams,
                       length_alpha=length_alpha)
        for row, i in enumerate(chunk):
            tokens = new[row].tolist()
            if cfg.eos_id in tokens:
                tokens = tokens[: tokens.index(cfg.eos_id)]
            out[i] = tok.decode(tokens).strip()
    return out


def score(hypotheses: list[str], references: list[str], tokenize: str = "13a") -> dict[str, float]:
    """sacreBLEU (lowercased and cased) and chrF, the numbers the published baselines report."""
    return {
        "bleu": sacrebleu.corpus_bleu(hypotheses, [references], tokenize=tokenize, lowercase=True).score,
        "bleu_cased": sacrebleu.corpus_bleu(hypotheses, [references], tokenize=tokenize).score,
        "chrf": sacrebleu.corpus_chrf(hypotheses, [references]).score,
    }


@dataclass
class TranslationTask:
    """A corpus, a direction and the recipe to train on it."""

    name: str
    corpus: str
    source: int  # index of the source side in the loader's pairs
    bleu_tokenize: str
    model: ModelConfig
    train: TrainConfig
    vocab_size: int = 8000
    max_tokens: int = 6000
    tokenizer_kind: str = "byte_bpe"
    description: str = ""
    train_limit: int | None = None  # use only the first N training pairs (small-data runs, tests)
    test_limit: int | None = None  # score only the first N test pairs
    _data: dict = field(default_factory=dict, repr=False)

    @property
    def target(self) -> int:
        return 1 - self.source

    def pairs(self, split: str) -> list[tuple[str, str]]:
        pairs = [(p[self.source], p[self.target]) for p in LOADERS[self.corpus](split)]
        return pairs[: self.train_limit] if split == "train" and self.train_limit else pairs

    def prepare(self, out_dir: Path):
        """Train or load the joint tokenizer; encode the training and validation pairs."""
        texts = lambda: [s for pair in self.pairs("train") for s in pair]  # noqa: E731
        self.tok = tokenizer_for(out_dir, self.tokenizer_kind, self.vocab_size, texts)
        limit = self.model.max_len - 1  # room for BOS/EOS
        for split in ("train", "val"):
            pairs = self.pairs(split)
            src = self.tok.encode_batch([s for s, _ in pairs], add_special_tokens=False)
            tgt = self.tok.encode_batch([t for _, t in pairs], add_special_tokens=False)
            kept = [(s, t) for s, t in zip(src, tgt) if 0 < len(s) <= limit and 0 < len(t) <= limit]
            self._data[split] = kept
            dropped = len(pairs) - len(kept)
            if dropped:
                print(f"{self.name}: {dropped} of {len(pairs)} {split} pairs skipped (empty or over {limit} tokens)")
        self.collate = TranslationCollator(self.model.pad_id, self.model.bos_id, self.model.eos_id)
        return self.tok

    def model_config(self) -> ModelConfig:
        return self.model.replace(vocab_size=self.tok.vocab_size, pad_id=self.tok.pad_id,
                                  bos_id=self.tok.bos_id, eos_id=self.tok.eos_id)

    def batches(self):
        data = self._data["train"]
        lengths = [max(len(s), len(t)) + 1 for s, t in data]
        return budget_batches(lengths, self.max_tokens, self.train.seed,
                              lambda idx: self.collate([data[i] for i in idx]))

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        data = self._data["val"]
        batches = (self.collate(data[i : i + 128]) for i in range(0, len(data), 128))
        return mean_token_loss(model, batches)

    def test(self, model: nn.Module, split: str = "test", beams: int = 4, limit: int | None = None) -> dict:
        pairs = self.pairs(split)[: limit or self.test_limit]
        hyps = translate(model, self.tok, [s for s, _ in pairs], beams=beams)
        result = score(hyps, [t for _, t in pairs], self.bleu_tokenize)
        result.update(split=split, beams=beams, n=len(pairs), examples=[
            {"source": s, "reference": t, "hypothesis": h} for (s, t), h in list(zip(pairs, hyps))[:5]])
        return result
