"""Training lines for the tokenizer CLI and benchmark: a named corpus or a text file.

Named corpora come from :func:`qkv.data.corpus_texts` (the training split), so they are read
only after their pinned checksums match: a truncated download is a one-line ``DataError``,
never a raw ``EOFError`` from gzip.
"""

from __future__ import annotations

from pathlib import Path

from qkv.data import CORPORA, corpus_texts
from qkv.errors import InputError


def read_corpus(name: str) -> list[str]:
    """Training lines of a named corpus (see ``qkv.data.CORPORA``), or of a UTF-8 text file."""
    if name in CORPORA:
        return corpus_texts(name, "train")
    path = Path(name)
    if not path.is_file():
        raise InputError(f"--corpus {name!r} is neither a corpus ({', '.join(CORPORA)}) nor a file")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        raise InputError(f"{path} is not UTF-8 text (byte {e.start}: {e.reason}); convert it first, "
                         f"e.g. iconv -f LATIN1 -t UTF-8") from None
    return [line.rstrip("\r") for line in text.split("\n") if line.strip()]


__all__ = ["read_corpus", "CORPORA"]
