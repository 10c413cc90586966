"""Reading the corpora under `QKV_DATA` for the tokenizer CLI and benchmark.

Deliberately tiny and private: `qkv.data` owns corpus loading (checksums, splits); this only
streams training lines so the tokenizer package stands on its own.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]


def data_dir() -> Path:
    """`$QKV_DATA`, else `../shared/data` next to the repository."""
    return Path(os.environ.get("QKV_DATA", REPO_ROOT.parent / "shared" / "data"))


def _lines(path: Path) -> list[str]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8-sig") as f:  # cmn.txt starts with a BOM
        return [line.rstrip("\r\n") for line in f if line.strip()]


def _columns(path: Path, columns: tuple[int, ...], skip_header: bool = False) -> list[str]:
    rows = [line.split("\t") for line in _lines(path)[int(skip_header):]]
    return [row[c] for row in rows for c in columns if len(row) > c]


CORPORA = {
    "multi30k": lambda d: _lines(d / "multi30k/train.de.gz") + _lines(d / "multi30k/train.en.gz"),
    "tatoeba": lambda d: _columns(d / "tatoeba-zh-en/cmn.txt", (0, 1)),
    "shakespeare": lambda d: _lines(d / "tinyshakespeare/input.txt"),
    "sst2": lambda d: _columns(d / "sst2/train.tsv", (1,), skip_header=True),
    "austen": lambda d: [line for p in sorted((d / "austen").glob("*.txt")) for line in _lines(p)],
}


def read_corpus(name: str) -> list[str]:
    """Training lines of a named corpus (see `CORPORA`), or of a text file given by its path."""
    if name in CORPORA:
        try:
            return CORPORA[name](data_dir())
        except FileNotFoundError as e:
            raise FileNotFoundError(f"corpus {name!r}: {e.filename} not found; set QKV_DATA to "
                                    "the folder holding the data") from e
    path = Path(name)
    if not path.is_file():
        raise FileNotFoundError(f"{name!r} is neither a corpus ({', '.join(CORPORA)}) nor a file")
    return _lines(path)
