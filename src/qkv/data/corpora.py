"""Loaders for the five corpora, with the splits derived deterministically in code.

Every loader reads checksum-verified files (``files.data_file``) and returns plain Python
data: translation pairs, label pairs, or one long string. Where a corpus ships no
validation split, it is cut here by a rule that does not depend on any random state:

- Tatoeba ``cmn.txt``: a pair goes to 'val' when the SHA-256 of its English side is 0 mod 29
  (979 of 29,155 pairs). Hashing the English side, not the line, keeps every translation of
  one English sentence on the same side, so 'val' English never appears in training.
- Tiny Shakespeare: first 90% of the characters train, last 10% val (nanoGPT's convention).
- Austen: split by novel, so no chapter leaks across splits: Persuasion test, Northanger
  Abbey val, the other four train.
"""

from __future__ import annotations

import gzip
import hashlib

from qkv.data.files import DataError, check_choice, data_file

TATOEBA_VAL_MODULUS = 29
SHAKESPEARE_TRAIN_FRACTION = 0.9
AUSTEN_SPLITS: dict[str, tuple[str, ...]] = {
    "train": ("emma", "mansfieldpark", "prideprejudice", "sensesensibility"),
    "val": ("northangerabbey",),
    "test": ("persuasion",),
}
CORPORA = ("multi30k", "tatoeba", "shakespeare", "sst2", "austen")


def _read_text(relpath: str) -> str:
    """Verified file as text; gzip by suffix; BOM dropped; CRLF read as LF."""
    path = data_file(relpath)
    raw = gzip.decompress(path.read_bytes()) if relpath.endswith(".gz") else path.read_bytes()
    return raw.decode("utf-8-sig").replace("\r\n", "\n")


def _lines(relpath: str) -> list[str]:
    # split on "\n" only: str.splitlines also breaks at U+2028, U+0085, ..., which would
    # misalign the two sides of a parallel corpus if a sentence contained one.
    lines = _read_text(relpath).split("\n")
    return lines[:-1] if lines and lines[-1] == "" else lines


def load_multi30k(split: str = "train") -> list[tuple[str, str]]:
    """Multi30k task 1 (German, English) caption pairs; 'test' is test_2016_flickr.

    Sizes: train 29,000, val 1,014, test 1,000.
    """
    check_choice("multi30k split", split, ("train", "val", "test"))
    stem = "test_2016_flickr" if split == "test" else split
    german, english = _lines(f"multi30k/{stem}.de.gz"), _lines(f"multi30k/{stem}.en.gz")
    if len(german) != len(english):
        raise DataError(f"multi30k {stem}: {len(german)} German lines but {len(english)} English")
    return list(zip(german, english))


def _is_tatoeba_val(english: str) -> bool:
    digest = hashlib.sha256(english.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % TATOEBA_VAL_MODULUS == 0


def load_tatoeba(split: str = "train") -> list[tuple[str, str]]:
    """Tatoeba (English, Chinese) pairs; train + val = cmn.txt (29,155), test = test.tsv (1,258).

    The attribution column of cmn.txt (CC-BY 2.0 FR) is dropped here; keep it with any
    redistributed line.
    """
    check_choice("tatoeba split", split, ("train", "val", "test"))
    if split == "test":
        return [_two_fields(line) for line in _lines("tatoeba-zh-en/test.tsv") if line]
    pairs = [_two_fields(line) for line in _lines("tatoeba-zh-en/cmn.txt") if line]
    want_val = split == "val"
    return [pair for pair in pairs if _is_tatoeba_val(pair[0]) == want_val]


def _two_fields(line: str) -> tuple[str, str]:
    fields = line.split("\t")
    if len(fields) < 2:
        raise DataError(f"expected tab-separated English and Chinese, got {line!r}")
    return fields[0], fields[1]


def load_shakespeare(split: str = "train") -> str:
    """Tiny Shakespeare: characters [0, 90%) for 'train', [90%, 100%) for 'val'."""
    check_choice("shakespeare split", split, ("train", "val"))
    text = _read_text("tinyshakespeare/input.txt")
    cut = int(len(text) * SHAKESPEARE_TRAIN_FRACTION)
    return text[:cut] if split == "train" else text[cut:]


def load_sst2(split: str = "train") -> list[tuple[str, int]]:
    """SST-2 (sentence, label) with label 1 = positive; train 67,349 phrases, dev 872 sentences.

    The header names the label column, so either column order (GLUE's or this copy's) reads.
    """
    check_choice("sst2 split", split, ("train", "dev"))
    header, *rows = _lines(f"sst2/{split}.tsv")
    label_col = header.split("\t").index("label")
    examples = []
    for row in rows:
        if row:
            fields = row.split("\t")
            examples.append((fields[1 - label_col], int(fields[label_col])))
    return examples


def load_austen(split: str = "train") -> str:
    """Austen novels of ``split`` joined by blank lines (see ``AUSTEN_SPLITS``)."""
    check_choice("austen split", split, AUSTEN_SPLITS)
    novels = [_read_text(f"austen/austen_{novel}.txt") for novel in AUSTEN_SPLITS[split]]
    return "\n\n".join(novel.strip("\n") for novel in novels)


def corpus_texts(name: str, split: str = "train") -> list[str]:
    """Every text line of a corpus split, for tokenizer training.

    Parallel corpora give all source sides, then all target sides (so both languages feed
    a joint vocabulary); running text gives its non-empty lines.
    """
    check_choice("corpus", name, CORPORA)
    if name in ("multi30k", "tatoeba"):
        pairs = load_multi30k(split) if name == "multi30k" else load_tatoeba(split)
        return [a for a, _ in pairs] + [b for _, b in pairs]
    if name == "sst2":
        return [sentence for sentence, _ in load_sst2(split)]
    text = load_shakespeare(split) if name == "shakespeare" else load_austen(split)
    return [line for line in text.split("\n") if line.strip()]
