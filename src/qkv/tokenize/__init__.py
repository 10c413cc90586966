"""Readable tokenizers, exactly compatible with Hugging Face `tokenizers`.

    from qkv.tokenize import BPE, ByteBPE, WordPiece, load
    tok = BPE.train(lines, vocab_size=8000)
    tok.save("tokenizer.json")          # HF's format: tokenizers.Tokenizer.from_file reads it
    assert load("tokenizer.json").encode("Ein Hund.") == tok.encode("Ein Hund.")

`qkv.tokenize.fast` runs the same tokenizer.json with HF's Rust implementation; these classes
stay the reference it is tested against.
"""

from qkv.tokenize.base import Tokenizer
from qkv.tokenize.bpe import BPE
from qkv.tokenize.byte_bpe import ByteBPE
from qkv.tokenize.errors import TokenizerError
from qkv.tokenize.io import from_json, load
from qkv.tokenize.wordpiece import WordPiece

KINDS: dict[str, type[Tokenizer]] = {"bpe": BPE, "byte_bpe": ByteBPE, "wordpiece": WordPiece}

__all__ = ["BPE", "ByteBPE", "WordPiece", "Tokenizer", "TokenizerError", "KINDS", "load",
           "from_json"]
