"""Round trips: exact for ByteBPE on any Unicode; the documented normalisation for the others.

BPE: decode(encode(s)) == NFC(s) cut by HF's Whitespace pre-tokeniser, joined by spaces.
WordPiece: decode(encode(s)) == BERT-normalised s cut by HF's BertPreTokenizer, joined by spaces.
(For text made of characters the vocabulary knows; the expected side is computed by HF.)
"""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from tokenizers import normalizers, pre_tokenizers

from qkv.tokenize import TokenizerError

SPECIAL_STRINGS = ("<pad>", "<unk>", "<s>", "</s>", "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


@settings(max_examples=300, deadline=None, database=None)
@given(st.text())
def test_byte_bpe_round_trip_is_exact(qkv_trained, text):
    tok = qkv_trained["byte_bpe"]
    assume(not any(s in text for s in SPECIAL_STRINGS))
    ids = tok.encode(text)
    assert tok.unk_id not in ids
    assert tok.decode(ids) == text


def test_byte_bpe_round_trip_keeps_typed_special_tokens(qkv_trained):
    tok = qkv_trained["byte_bpe"]
    text = "a <s> b</s>\x00 ✓"
    assert tok.decode(tok.encode(text), skip_special_tokens=False) == f"<s>{text}</s>"


def test_byte_bpe_refuses_lone_surrogates_clearly(qkv_trained):
    with pytest.raises(TokenizerError, match="surrogate"):
        qkv_trained["byte_bpe"].encode("a\ud800b")


def known_characters(tok, marker: str, prefix: bool) -> list[str]:
    """Characters the vocabulary has in every position (alone, and marked)."""
    chars = [t for t in tok.vocab if len(t) == 1 and unicodedata.category(t)[0] in "LNPS"]
    marked = (lambda c: marker + c) if prefix else (lambda c: c + marker)
    return [c for c in chars if marked(c) in tok.vocab]


@pytest.mark.parametrize("kind", ["bpe", "wordpiece"])
def test_documented_normalisation_round_trip(kind, qkv_trained):
    tok = qkv_trained[kind]
    if kind == "bpe":
        alphabet = known_characters(tok, "</w>", prefix=False)
        normalize, split = normalizers.NFC(), pre_tokenizers.Whitespace()
    else:
        alphabet = known_characters(tok, "##", prefix=True)
        normalize, split = normalizers.BertNormalizer(lowercase=False), \
            pre_tokenizers.BertPreTokenizer()

    @settings(max_examples=200, deadline=None, database=None)
    @given(st.text(st.sampled_from(alphabet + [" ", "\t", "\n", "\u3000"]), max_size=60))
    def check(text):
        assume(not any(s in text for s in SPECIAL_STRINGS))
        words = [w for w, _ in split.pre_tokenize_str(normalize.normalize_str(text))]
        assert tok.decode(tok.encode(text)) == " ".join(words)

    check()
