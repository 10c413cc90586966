"""Translation tasks: Multi30k de→en and Tatoeba zh↔en (questions 15, 21, 27, 29).

One joint byte-level BPE for both languages (so one embedding table serves encoder, decoder and
output), token-budget batches, validation loss during training, and sacreBLEU / chrF of beam
search on the test set at the end.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Callable, ClassVar

import sacrebleu
import torch
from torch import Tensor, nn

from ..config import ModelConfig
from ..data import TranslationCollator, load_multi30k, load_tatoeba
from ..errors import InputError, QkvNotice
from ..generate import generate
from .base import Task, fixed
from .common import budget_batches, mean_token_loss, tokenizer_for

LOADERS = {"multi30k": load_multi30k, "tatoeba": load_tatoeba}


def encode_sources(tok, sentences: list[str], max_len: int, eos_id: int, *, truncate: bool = False) -> list[list[int]]:
    """Source ids with EOS, each at most ``max_len`` long.

    An over-long sentence is refused with the limit named (the model has ``max_len`` positions);
    ``truncate=True`` cuts it instead and says, once, how many sentences lost how many tokens.
    """
    encoded = tok.encode_batch(sentences, add_special_tokens=False)
    limit = max_len - 1  # room for EOS
    long = [i for i, ids in enumerate(encoded) if len(ids) > limit]
    if long and not truncate:
        first = long[0]
        raise InputError(f"input {first + 1} is {len(encoded[first])} tokens long, over this model's limit of "
                         f"{limit} source tokens (max_len={max_len}); split it into shorter sentences, or pass "
                         f"--truncate (truncate=True) to cut it")
    if long:
        cut = sum(len(encoded[i]) - limit for i in long)
        warnings.warn(f"cut {len(long)} of {len(sentences)} inputs to {limit} tokens ({cut} tokens dropped)",
                      QkvNotice, stacklevel=3)
    return [ids[:limit] + [eos_id] for ids in encoded]


def translate(model: nn.Module, tok, sentences: list[str], *, beams: int = 4, batch_size: int = 64,
              max_new_tokens: int | None = None, length_alpha: float = 0.6, truncate: bool = False,
              decode: Callable[..., Tensor] | None = None) -> list[str]:
    """Translate ``sentences`` in length-sorted batches; returns them in the input order.

    ``decode(ids, mask, max_new_tokens=, beams=, length_alpha=) → (B, L)`` new tokens replaces
    qkv's ``generate`` (e.g. an exported model's runtime); ``model`` then needs only ``.config``.
    """
    cfg = model.config
    if cfg.family != "seq2seq":
        raise InputError(f"this is a {cfg.family!r} model, not a translator (family 'seq2seq')")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InputError(f"batch_size={batch_size!r} must be a positive integer (sentences per batch)")
    device = next(model.parameters()).device if decode is None else torch.device("cpu")
    decode = decode or partial(generate, model)
    encoded = encode_sources(tok, sentences, cfg.max_len, cfg.eos_id, truncate=truncate)
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
        new = decode(ids.to(device), mask.to(device), max_new_tokens=limit, beams=beams, length_alpha=length_alpha)
        for row, i in enumerate(chunk):
            tokens = new[row].tolist()
            if cfg.eos_id in tokens:
                tokens = tokens[: tokens.index(cfg.eos_id)]
            out[i] = tok.decode(tokens).strip()
    return out


def read_targets(path: Path, n_pairs: int, preset: str) -> list[str]:
    """The lines of a ``train_targets`` file, refused unless there is exactly one per training pair."""
    if not path.is_file():
        raise InputError(f"train_targets={path}: no such file; write it with `qkv distill TEACHER --out {path}`")
    try:
        lines = path.read_text(encoding="utf-8").split("\n")
    except UnicodeDecodeError as e:
        raise InputError(f"train_targets={path} is not UTF-8 text ({e.reason} at byte {e.start})") from None
    if lines and lines[-1] == "":
        lines.pop()  # the file's final newline
    if len(lines) != n_pairs:
        raise InputError(f"train_targets={path} has {len(lines)} lines, but {preset} trains on {n_pairs} pairs: it "
                         f"needs one target per pair, in order (`qkv distill` with a teacher of the same preset and "
                         f"train_limit writes such a file)")
    return lines


def score(hypotheses: list[str], references: list[str], tokenize: str = "13a") -> dict[str, float]:
    """sacreBLEU (lowercased and cased) and chrF, the numbers the published baselines report."""
    return {
        "bleu": sacrebleu.corpus_bleu(hypotheses, [references], tokenize=tokenize, lowercase=True).score,
        "bleu_cased": sacrebleu.corpus_bleu(hypotheses, [references], tokenize=tokenize).score,
        "chrf": sacrebleu.corpus_chrf(hypotheses, [references]).score,
    }


@dataclass(kw_only=True)
class TranslationTask(Task):
    """A parallel corpus, a direction and the recipe to train on it."""

    corpus: str = fixed()
    source: int = fixed()  # index of the source side in the loader's pairs
    bleu_tokenize: str = fixed("13a")
    vocab_size: int = 8000
    max_tokens: int = 3500  # padded tokens per batch (source or target side, whichever is longer)
    tokenizer_kind: str = "byte_bpe"
    train_limit: int | None = None  # use only the first N training pairs (small-data runs, tests)
    test_limit: int | None = None  # score only the first N test pairs
    # Train on these targets instead of the references: a UTF-8 file, one line per training pair
    # (a teacher's translations from `qkv distill`: sequence-level knowledge distillation).
    train_targets: str | None = None
    _data: dict = field(default_factory=dict, repr=False)

    family: ClassVar[str] = "seq2seq"
    splits: ClassVar[tuple[str, ...]] = ("train", "val", "test")
    test_split: ClassVar[str] = "test"

    @property
    def target(self) -> int:
        return 1 - self.source

    def pairs(self, split: str) -> list[tuple[str, str]]:
        pairs = [(p[self.source], p[self.target]) for p in LOADERS[self.corpus](split)]
        return pairs[: self.train_limit] if split == "train" and self.train_limit else pairs

    def training_pairs(self) -> list[tuple[str, str]]:
        """The training pairs, their targets replaced by ``train_targets``' lines where it is set."""
        pairs = self.pairs("train")
        if self.train_targets is None:
            return pairs
        targets = read_targets(Path(self.train_targets), len(pairs), self.name)
        return [(source, target) for (source, _), target in zip(pairs, targets)]

    def prepare(self, out_dir: Path):
        """Train or load the joint tokenizer (on the corpus's own pairs, whatever the training
        targets); encode the training and validation pairs."""
        texts = lambda: [s for pair in self.pairs("train") for s in pair]  # noqa: E731
        self.tok = tokenizer_for(out_dir, self.tokenizer_kind, self.vocab_size, texts)
        limit = self.model.max_len - 1  # room for BOS/EOS
        for split in ("train", "val"):
            pairs = self.training_pairs() if split == "train" else self.pairs(split)
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

    def test(self, model: nn.Module, split: str | None = None, beams: int = 4, limit: int | None = None) -> dict:
        """sacreBLEU / chrF of beam search on ``split`` (default test; "val" also scores)."""
        split = self.check_split(split)
        pairs = self.pairs(split)[: limit or self.test_limit]
        # Scoring never refuses a sentence: one longer than the model's positions is cut (and said).
        hyps = translate(model, self.tok, [s for s, _ in pairs], beams=beams, truncate=True)
        result = score(hyps, [t for _, t in pairs], self.bleu_tokenize)
        result.update(split=split, beams=beams, n=len(pairs), examples=[
            {"source": s, "reference": t, "hypothesis": h} for (s, t), h in list(zip(pairs, hyps))[:5]])
        return result
