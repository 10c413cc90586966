"""Reading and writing Hugging Face's `tokenizer.json`.

We write the format `tokenizers.Tokenizer.from_file` reads, and read back the subset of it our
readable tokenizers implement: normalisers NFC / BertNormalizer, pre-tokenisers Whitespace /
BertPreTokenizer / ByteLevel, models BPE / WordPiece, template post-processing. Anything else is
refused with an error naming the part, rather than encoded differently from HF.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from qkv.tokenize.base import Pipeline, Tokenizer
from qkv.tokenize.bpe import BPE
from qkv.tokenize.byte_bpe import ByteBPE
from qkv.tokenize.decode import decoder_from_json
from qkv.tokenize.errors import TokenizerError
from qkv.tokenize.normalize import normalizer_from_json
from qkv.tokenize.postprocess import template_from_json
from qkv.tokenize.pretokenize import ByteLevel, pre_tokenizer_from_json
from qkv.tokenize.wordpiece import WordPiece


def write_json(obj: dict[str, Any], path: str | os.PathLike) -> None:
    """Write `obj` as JSON atomically: a crash never leaves a half-written tokenizer.json."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(obj, f, ensure_ascii=False, indent=2)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def read_json(path: str | os.PathLike) -> dict[str, Any]:
    """Parse a tokenizer.json, with errors that say which file and what is wrong."""
    path = Path(path)
    if not path.is_file():
        raise TokenizerError(f"no tokenizer file at {str(path)!r}")
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise TokenizerError(f"{str(path)!r} is not valid tokenizer JSON: {e}") from e
    if not isinstance(obj, dict) or not isinstance(obj.get("model"), dict):
        raise TokenizerError(f"{str(path)!r} is not a tokenizer.json: no 'model' object")
    return obj


def _special_tokens(obj: dict[str, Any]) -> tuple[list[str], dict[str, int]]:
    """Added tokens; we support HF's usual kind: special, matched verbatim in the raw text.

    (`normalized: true` is accepted where there is no normaliser: then it changes nothing.)
    """
    tokens, ids = [], {}
    for t in obj.get("added_tokens") or []:
        normalized = t.get("normalized") and obj.get("normalizer") is not None
        if normalized or t.get("lstrip") or t.get("rstrip") or t.get("single_word") \
                or not t.get("special", False):
            raise TokenizerError(f"unsupported added token {t.get('content')!r}: only special "
                                 "tokens with normalized/lstrip/rstrip/single_word false")
        tokens.append(t["content"])
        ids[t["content"]] = t["id"]
    return tokens, ids


def from_json(obj: dict[str, Any]) -> Tokenizer:
    """Build the qkv tokenizer a tokenizer.json object describes."""
    try:
        return _from_json(obj)
    except (KeyError, TypeError, AttributeError) as e:
        raise TokenizerError(f"malformed tokenizer.json: {type(e).__name__}: {e}") from e


def _from_json(obj: dict[str, Any]) -> Tokenizer:
    model = obj["model"]
    kind = model.get("type")
    if kind not in ("BPE", "WordPiece"):
        raise TokenizerError(f"unsupported model type {kind!r}; supported: BPE, WordPiece")
    specials, special_ids = _special_tokens(obj)
    vocab = {**model["vocab"], **special_ids}
    pipeline = Pipeline(normalizer_from_json(obj.get("normalizer")),
                        pre_tokenizer_from_json(obj.get("pre_tokenizer")),
                        template_from_json(obj.get("post_processor")),
                        decoder_from_json(obj.get("decoder")))
    if kind == "WordPiece":
        return WordPiece(vocab, special_tokens=specials, unk_token=model["unk_token"],
                         continuing_subword_prefix=model.get("continuing_subword_prefix", "##"),
                         max_input_chars_per_word=model.get("max_input_chars_per_word", 100),
                         pipeline=pipeline)
    if model.get("byte_fallback") or model.get("dropout") or model.get("ignore_merges"):
        raise TokenizerError("unsupported BPE options: byte_fallback, dropout, ignore_merges")
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in model["merges"]]
    unk, suffix = model.get("unk_token"), model.get("end_of_word_suffix")
    prefix = model.get("continuing_subword_prefix")
    if isinstance(pipeline.pre_tokenizer, ByteLevel) and not (unk or suffix or prefix):
        return ByteBPE(vocab, merges, special_tokens=specials, pipeline=pipeline)
    return BPE(vocab, merges, special_tokens=specials, unk_token=unk, end_of_word_suffix=suffix,
               continuing_subword_prefix=prefix, fuse_unk=model.get("fuse_unk", False),
               pipeline=pipeline)


def load(path: str | os.PathLike) -> Tokenizer:
    """Load a tokenizer.json (ours or one written by HF `tokenizers`) as a readable tokenizer."""
    return from_json(read_json(path))
