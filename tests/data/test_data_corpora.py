"""The loaders against the real files: sizes from the data README, and the derived splits."""

from __future__ import annotations

import gzip
import hashlib

import pytest

from qkv.data import (
    corpus_texts,
    load_austen,
    load_multi30k,
    load_shakespeare,
    load_sst2,
    load_tatoeba,
)


@pytest.fixture(autouse=True)
def _needs_data(real_root):
    """Every test here reads the real corpora."""


@pytest.mark.parametrize("split, size", [("train", 29_000), ("val", 1_014), ("test", 1_000)])
def test_multi30k_sizes_and_alignment(real_root, split, size):
    pairs = load_multi30k(split)
    assert len(pairs) == size
    stem = "test_2016_flickr" if split == "test" else split
    with gzip.open(real_root / f"multi30k/{stem}.en.gz", "rt", encoding="utf-8") as f:
        last_english = f.read().rstrip("\n").split("\n")[-1]
    assert pairs[-1][1] == last_english
    assert all(de and en for de, en in pairs)


def test_multi30k_test_is_flickr_2016_german_first():
    assert load_multi30k("test")[0] == ("Ein Mann mit einem orangefarbenen Hut, der etwas anstarrt.",
                                        "A man in an orange hat starring at something.")


def test_tatoeba_split_sizes_and_bom_dropped():
    train, val, test = (load_tatoeba(s) for s in ("train", "val", "test"))
    assert len(train) + len(val) == 29_155
    assert 900 <= len(val) <= 1_100
    assert len(test) == 1_258
    assert ("Hi.", "嗨。") in train + val  # the first line, after its byte-order mark
    assert test[0] == ("I came to Beijing last month.", "我是上个月来的北京。")


def test_tatoeba_val_is_disjoint_by_english_side_and_covers_cmn(real_root):
    train, val = load_tatoeba("train"), load_tatoeba("val")
    assert not {en for en, _ in train} & {en for en, _ in val}
    raw = (real_root / "tatoeba-zh-en/cmn.txt").read_text(encoding="utf-8-sig").split("\n")
    expected = sorted(tuple(line.split("\t")[:2]) for line in raw if line)
    assert sorted(train + val) == expected


def test_tatoeba_val_rule_is_the_documented_hash():
    """Pin the rule itself: a silent change would move pairs between train and val across versions."""
    def by_rule(english: str) -> bool:
        return int.from_bytes(hashlib.sha256(english.encode("utf-8")).digest()[:8], "big") % 29 == 0

    train, val = load_tatoeba("train"), load_tatoeba("val")
    assert all(by_rule(en) for en, _ in val)
    assert not any(by_rule(en) for en, _ in train)


def test_tatoeba_test_shares_no_side_with_train():
    train, test = load_tatoeba("train"), load_tatoeba("test")
    assert not {en for en, _ in train} & {en for en, _ in test}
    assert not {zh for _, zh in train} & {zh for _, zh in test}


def test_splits_are_deterministic():
    assert load_tatoeba("val") == load_tatoeba("val")
    assert load_austen("val") == load_austen("val")


def test_shakespeare_first_90_percent_then_last_10(real_root):
    text = (real_root / "tinyshakespeare/input.txt").read_text(encoding="utf-8")
    train, val = load_shakespeare("train"), load_shakespeare("val")
    assert len(text) == 1_115_394
    assert train + val == text
    assert len(train) == int(0.9 * 1_115_394)
    assert train.startswith("First Citizen:")


@pytest.mark.parametrize("split, size, negatives", [("train", 67_349, 29_780), ("dev", 872, 428)])
def test_sst2_sizes_and_labels(split, size, negatives):
    examples = load_sst2(split)
    assert len(examples) == size
    assert sum(label == 0 for _, label in examples) == negatives
    assert {label for _, label in examples} == {0, 1}
    assert not any("\r" in sentence or "\t" in sentence for sentence, _ in examples)


def test_austen_split_by_novel():
    train, val, test = (load_austen(s) for s in ("train", "val", "test"))
    assert test.startswith("Persuasion") and "Sir Walter Elliot" in test
    assert val.startswith("NORTHANGER ABBEY")
    for title in ("EMMA", "MANSFIELD PARK", "PRIDE AND PREJUDICE", "SENSE AND SENSIBILITY"):
        assert title in train
    assert "Sir Walter Elliot" not in train + val
    assert "Catherine Morland" not in train + test
    assert 3_900_000 < len(train) + len(val) + len(test) < 4_100_000


def test_corpus_texts_gives_both_sides_of_parallel_corpora():
    lines = corpus_texts("multi30k", "val")
    pairs = load_multi30k("val")
    assert len(lines) == 2 * len(pairs)
    assert set(lines) == {de for de, _ in pairs} | {en for _, en in pairs}
    assert len(corpus_texts("sst2", "dev")) == 872
    shakespeare = corpus_texts("shakespeare", "val")
    assert all(line.strip() for line in shakespeare)
    assert "\n".join(shakespeare) in load_shakespeare("val").replace("\n\n", "\n")
