"""Bad input gives clear errors; unknown characters never crash."""

from __future__ import annotations

import json

import pytest

from qkv.tokenize import BPE, KINDS, ByteBPE, TokenizerError, WordPiece, load
from qkv.tokenize import fast


@pytest.mark.parametrize("cls", list(KINDS.values()))
@pytest.mark.parametrize("corpus", [[], [""], ["  \t ", "\n"]])
def test_empty_corpus(cls, corpus):
    if cls is ByteBPE and any(corpus):  # for byte-level BPE whitespace is text like any other
        tok = cls.train(corpus, 300)
        assert tok.decode(tok.encode(corpus[0])) == corpus[0]
        return
    with pytest.raises(TokenizerError, match="empty corpus"):
        cls.train(corpus, 1000)


def test_a_single_string_is_not_a_corpus():
    with pytest.raises(TokenizerError, match="iterable of strings"):
        BPE.train("just one text", 100)


@pytest.mark.parametrize("cls,size", [(BPE, 20), (ByteBPE, 259), (WordPiece, 10)])
def test_vocab_size_smaller_than_alphabet(cls, size):
    with pytest.raises(TokenizerError, match=r"vocab_size=\d+ is smaller than the \d+ symbols"):
        cls.train(["a quick brown fox jumps over the lazy dog"], size)


def test_unknown_wordpiece_score():
    with pytest.raises(TokenizerError, match="score='bogus'"):
        WordPiece.train(["a b"], 100, score="bogus")


def test_missing_file(tmp_path):
    for loader in (load, fast.load):
        with pytest.raises(TokenizerError, match="no tokenizer file"):
            loader(tmp_path / "nope.json")


@pytest.mark.parametrize("content,message", [
    ("{not json", "not valid tokenizer JSON"),
    ('{"model": {"type": "BPE", "vocab": {"a": 0}', "not valid tokenizer JSON"),  # truncated
    ("[1, 2, 3]", "no 'model' object"),
    ('{"version": "1.0"}', "no 'model' object"),
    ('{"model": {"type": "Unigram", "vocab": []}}', "unsupported model type 'Unigram'"),
    ('{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": [["a", "b"]]}, '
     '"pre_tokenizer": {"type": "Whitespace"}}', "'b' is not in the vocabulary"),
    ('{"model": {"type": "WordPiece", "vocab": {"a": 0}}}', "malformed tokenizer.json"),
    ('{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, '
     '"pre_tokenizer": {"type": "Metaspace"}}', "unsupported pre_tokenizer type 'Metaspace'"),
])
def test_corrupted_file(tmp_path, content, message):
    path = tmp_path / "tokenizer.json"
    path.write_text(content)
    with pytest.raises(TokenizerError, match=message):
        load(path)


def test_corrupted_file_is_also_refused_by_fast_loader(tmp_path):
    path = tmp_path / "tokenizer.json"
    path.write_bytes(b"\xff\xfe garbage")
    with pytest.raises(TokenizerError, match="not valid tokenizer JSON"):
        fast.load(path)


def test_unknown_characters_never_crash(qkv_trained):
    text = "Zebra 🦓 中文 \x00\u200b \ue000 \U0010ffff ﷽ 𓀀"
    for kind, tok in qkv_trained.items():
        ids = tok.encode(text)
        assert ids and all(0 <= i < tok.vocab_size for i in ids)
        tok.decode(ids)
    assert qkv_trained["bpe"].unk_id in qkv_trained["bpe"].encode("🦓")
    assert qkv_trained["wordpiece"].encode("🦓", add_special_tokens=False) == [
        qkv_trained["wordpiece"].unk_id]


def test_decode_skips_ids_outside_the_vocabulary_like_hf(qkv_trained):
    tok = qkv_trained["byte_bpe"]
    ids = tok.encode("hello", add_special_tokens=False)
    hf = fast.from_tokenizer(tok)
    bad = [10**6, *ids, tok.vocab_size]
    assert tok.decode(bad) == hf.decode(bad) == "hello"


def test_save_is_valid_json_with_hf_layout(qkv_trained, tmp_path):
    path = tmp_path / "sub" / "tokenizer.json"
    qkv_trained["bpe"].save(path)
    obj = json.loads(path.read_text())
    assert {"version", "added_tokens", "normalizer", "pre_tokenizer", "post_processor",
            "decoder", "model"} <= set(obj)
    assert not list(path.parent.glob("*.tmp"))
