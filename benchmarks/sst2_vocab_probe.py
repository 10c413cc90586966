"""Does the WordPiece merge score matter downstream? A bag-of-subwords probe on SST-2.

Question: the textbook WordPiece score, count(ab) / (count(a) count(b)), prefers pairs whose parts
rarely occur apart; the frequency score (BPE's, and HF's ``WordPieceTrainer``'s) prefers common
pairs. At a small vocabulary, which one gives a classifier better tokens? The probe trains both
8k vocabularies on SST-2's training text with qkv's trainer, then fits the same bag-of-subwords
classifier (mean of token embeddings → linear, fastText-style) on each and reports dev accuracy,
how many tokens a dev word takes, and whether some of the most common words stay whole.

    python -m benchmarks.sst2_vocab_probe [--epochs 4] [--out FILE]

About a minute on one core. The classifier is deliberately not a Transformer: it sees only
which tokens occur, so the difference between the two rows is the vocabulary's alone.
"""

from __future__ import annotations

import argparse
import random

import torch
import torch.nn.functional as F
from torch import nn

from benchmarks.common import emit, environment, rounded
from qkv.data import load_sst2
from qkv.tokenize import WordPiece

COMMON_WORDS = ["the", "new", "film", "movie", "often", "funny", "story", "never"]


def bag_accuracy(encode, vocab_size: int, train, dev, epochs: int, seed: int = 0) -> float:
    """Dev accuracy of mean-of-embeddings → linear trained on ``train`` (Adam, dropout 0.3)."""
    torch.manual_seed(seed)
    rng = random.Random(seed)
    train = [(encode(s), y) for s, y in train]
    dev = [(encode(s), y) for s, y in dev]
    bag = nn.EmbeddingBag(vocab_size, 128, mode="mean")
    out = nn.Linear(128, 2)
    opt = torch.optim.Adam([*bag.parameters(), *out.parameters()], lr=1e-3)

    def logits(rows, training: bool):
        flat = torch.tensor([t for ids, _ in rows for t in ids])
        offsets = torch.tensor([0] + [len(ids) for ids, _ in rows][:-1]).cumsum(0)
        return out(F.dropout(bag(flat, offsets), 0.3, training))

    for _ in range(epochs):
        rng.shuffle(train)
        for i in range(0, len(train), 64):
            rows = train[i:i + 64]
            loss = F.cross_entropy(logits(rows, True), torch.tensor([y for _, y in rows]))
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        predicted = logits(dev, False).argmax(-1)
    return float((predicted == torch.tensor([y for _, y in dev])).float().mean())


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--vocab", type=int, default=8000)
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    train, dev = load_sst2("train"), load_sst2("dev")
    dev_words = [w for s, _ in dev for w in s.split()]
    rows = {}
    for score in ("likelihood", "frequency"):
        tok = WordPiece.train([s for s, _ in train], args.vocab, lowercase=True, score=score)
        encode = lambda s: tok.encode(s, add_special_tokens=False)  # noqa: E731
        rows[score] = {
            "dev_accuracy": rounded(bag_accuracy(encode, tok.vocab_size, train, dev, args.epochs), 4),
            "tokens_per_dev_word": rounded(sum(len(encode(w)) for w in dev_words) / len(dev_words), 3),
            "common_words_whole": [w for w in COMMON_WORDS if len(encode(w)) == 1],
        }
    result = {"benchmark": "sst2_vocab_probe", "environment": environment("cpu", args.threads),
              "vocab_size": args.vocab, "epochs": args.epochs, **rows}
    emit(result, args.out)
    return result


if __name__ == "__main__":
    main()
