"""Exact parity with Hugging Face `tokenizers`, both directions, for all three kinds.

1. Trained by qkv, saved, loaded by `tokenizers.Tokenizer.from_file`: same ids and same decoded
   text as qkv on held-out text (Multi30k val, Tatoeba test, emoji and odd Unicode).
2. Trained by HF with matching settings, loaded by `qkv.tokenize.load`: same ids and text.
"""

from __future__ import annotations

import pytest
from conftest import first_mismatch
from hypothesis import given, settings
from hypothesis import strategies as st
from tokenizers import Tokenizer as HFTokenizer

from qkv.tokenize import KINDS, load
from qkv.tokenize.fast import from_tokenizer


@pytest.mark.parametrize("kind", list(KINDS))
def test_qkv_trained_encodes_like_hf(kind, qkv_trained, heldout_lines, tmp_path):
    tok = qkv_trained[kind]
    path = tmp_path / "tokenizer.json"
    tok.save(str(path))
    hf = HFTokenizer.from_file(str(path))
    for special in (True, False):
        theirs = [e.ids for e in hf.encode_batch(heldout_lines, add_special_tokens=special)]
        ours = [tok.encode(t, add_special_tokens=special) for t in heldout_lines]
        assert first_mismatch(heldout_lines, ours, theirs) is None
    assert [tok.decode(ids) for ids in theirs] == hf.decode_batch(theirs)
    assert [tok.decode(ids, skip_special_tokens=False) for ids in theirs] == \
        hf.decode_batch(theirs, skip_special_tokens=False)


@pytest.mark.parametrize("kind", list(KINDS))
def test_hf_trained_encodes_like_qkv(kind, hf_trained, heldout_lines, tmp_path):
    path = tmp_path / "tokenizer.json"
    hf_trained[kind].save(path)
    tok = load(path)
    assert type(tok) is KINDS[kind]
    hf = hf_trained[kind].hf
    theirs = [e.ids for e in hf.encode_batch(heldout_lines)]
    assert first_mismatch(heldout_lines, tok.encode_batch(heldout_lines), theirs) is None
    assert [tok.decode(ids) for ids in theirs] == hf.decode_batch(theirs)
    assert (tok.vocab_size, tok.pad_id, tok.unk_id, tok.bos_id, tok.eos_id, tok.mask_id) == (
        hf_trained[kind].vocab_size, hf_trained[kind].pad_id, hf_trained[kind].unk_id,
        hf_trained[kind].bos_id, hf_trained[kind].eos_id, hf_trained[kind].mask_id)


def test_held_out_text_exercises_unknowns(qkv_trained, heldout_lines):
    """The parity above covers the unknown-token paths, not just in-vocabulary text."""
    for kind in ("bpe", "wordpiece"):
        tok = qkv_trained[kind]
        assert sum(tok.unk_id in tok.encode(t) for t in heldout_lines) > 10
    byte_bpe = qkv_trained["byte_bpe"]
    plain = [t for t in heldout_lines if "<unk>" not in t]  # typed "<unk>" is the special token
    assert not any(byte_bpe.unk_id in byte_bpe.encode(t) for t in plain)


# Any assigned character (category Cn excluded: characters newer than Python's Unicode tables
# may be unknown to the regex module or to HF, see unicode_tables.py).
ANY_TEXT = st.text(st.characters(exclude_categories=("Cs", "Cn")), max_size=40)


@pytest.mark.parametrize("kind", list(KINDS))
def test_random_unicode_encodes_like_hf(kind, qkv_trained):
    tok = qkv_trained[kind]
    fast = from_tokenizer(tok)

    @settings(max_examples=150, deadline=None, database=None)
    @given(ANY_TEXT)
    def check(text):
        assert tok.encode(text) == fast.encode(text)
        ids = tok.encode(text)
        assert tok.decode(ids) == fast.decode(ids)

    check()
