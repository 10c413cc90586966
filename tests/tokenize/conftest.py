"""Shared data for the tokenizer tests: small real corpora, held-out text, trained tokenizers.

Corpora are read straight from `$QKV_DATA` (default `../shared/data` beside the repository);
the tests never compare against outputs of our own code, only against HF `tokenizers`.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import pytest

from qkv.tokenize import KINDS
from qkv.tokenize.fast import train_hf

REPO_ROOT = Path(__file__).resolve().parents[2]
VOCAB = {"bpe": 3000, "byte_bpe": 1500, "wordpiece": 3000}

# Held-out lines chosen to break tokenizers: emoji (with ZWJ and skin tones), combining marks,
# ligatures, controls, every kind of space, right-to-left scripts, CJK (also outside the BMP),
# special-token strings typed as text, punctuation newer than HF's Unicode tables, a word
# longer than WordPiece's 100-character limit, and empty/blank lines.
ODD_LINES = [
    "Emoji: 😀👍🏽👨‍👩‍👧‍👦🇩🇪 ❤️ and 🥰!",
    "Odd Unicode: e\u0301 ﬁ ½ ² Ⅻ ＡＢＣ ß İ ΑΣ ǅ Ⓐ \u0345 ১২৩",
    "Controls:\x00\x01\x1c\x1f\x7f\x85 zero\u200bwidth\u200djoin soft\u00adhyphen bom\ufeff",
    "Spaces:\t\ttabs\nnewline\r\n nbsp\u00a0 ideographic\u3000 thin\u2009 line\u2028sep",
    "RTL: שלום עולם مرحبا بالعالم",
    "CJK: 我是上个月来的北京。𠀀𪜀 ㄅㄆ かな カナ 한국어",
    "Specials in text: <s> </s><pad> [CLS] [SEP][MASK] <unk> <s",
    "Newer tables: \u2e43 \u061d \u166d \U000111c9 \u0890 private\ue000use \U0010ffff \ufffd",
    "x" * 150,
    "",
    "   ",
    "don't 'll 're 've 'm 'd 123 4.5 ... --- !!! ?? $5 +1 a_b",
]


def data_dir() -> Path:
    return Path(os.environ.get("QKV_DATA", REPO_ROOT.parent / "shared" / "data"))


def read_lines(relative: str, limit: int | None = None) -> list[str]:
    path = data_dir() / relative
    if not path.is_file():
        pytest.fail(f"corpus file {path} not found (set QKV_DATA to the data folder)")
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8-sig") as f:
        lines = [line.rstrip("\r\n") for line in f if line.strip()]
    return lines[:limit]


def columns(lines: list[str], *which: int) -> list[str]:
    rows = [line.split("\t") for line in lines]
    return [row[c] for row in rows for c in which if len(row) > c]


@pytest.fixture(scope="session")
def train_lines() -> list[str]:
    """~12k lines: German and English captions, English and Chinese sentences."""
    return (read_lines("multi30k/train.de.gz", 3000) + read_lines("multi30k/train.en.gz", 3000)
            + columns(read_lines("tatoeba-zh-en/cmn.txt", 3000), 0, 1))


@pytest.fixture(scope="session")
def heldout_lines() -> list[str]:
    """Multi30k val (de+en), Tatoeba test lines (en+zh), and the odd lines above."""
    return (read_lines("multi30k/val.de.gz") + read_lines("multi30k/val.en.gz")
            + columns(read_lines("tatoeba-zh-en/test.tsv"), 0, 1) + ODD_LINES)


@pytest.fixture(scope="session")
def qkv_trained(train_lines):
    """One tokenizer of each kind trained by qkv."""
    return {kind: cls.train(train_lines, VOCAB[kind]) for kind, cls in KINDS.items()}


@pytest.fixture(scope="session")
def hf_trained(train_lines):
    """One tokenizer of each kind trained by HF `tokenizers` with settings matching qkv's."""
    return {kind: train_hf(kind, train_lines, VOCAB[kind]) for kind in KINDS}


def first_mismatch(texts, ours, theirs) -> str | None:
    """A readable report of the first text whose ids differ (None if all agree)."""
    assert len(ours) == len(theirs) == len(texts)
    for text, a, b in zip(texts, ours, theirs):
        if a != b:
            return f"text {text!r}\n  qkv: {a}\n  hf:  {b}"
    return None
