"""The same tokenizers executed by Hugging Face `tokenizers` (Rust), for the data pipeline.

    from qkv.tokenize import fast
    tok = fast.load("tokenizer.json")        # a file saved by qkv (or by HF)
    tok = fast.from_tokenizer(qkv_tokenizer)  # or straight from a readable tokenizer

`FastTokenizer` offers the readable classes' interface (`encode`, `encode_batch`, `decode`,
`tokens`, `vocab_size`, `pad_id`, ...). The readable encoder stays the reference: the tests
check that both give the same ids.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterable, Sequence

from tokenizers import Tokenizer as HFTokenizer
from tokenizers import decoders, models, normalizers, pre_tokenizers, processors, trainers

from qkv.tokenize import bpe, wordpiece
from qkv.tokenize.base import SPECIAL_ROLES, Tokenizer, wrap_template
from qkv.tokenize.io import read_json


class FastTokenizer:
    """A `tokenizers.Tokenizer` behind qkv's tokenizer interface."""

    def __init__(self, hf: HFTokenizer) -> None:
        self.hf = hf
        self.vocab_size: int = hf.get_vocab_size(with_added_tokens=True)
        specials = {t.content for t in hf.get_added_tokens_decoder().values() if t.special}
        self.special_tokens: list[str] = sorted(specials, key=hf.token_to_id)
        self.pad_id, self.unk_id, self.bos_id, self.eos_id, self.mask_id = (
            self._role_id(role) for role in ("pad", "unk", "bos", "eos", "mask"))

    def _role_id(self, role: str) -> int | None:
        names = [t for t in SPECIAL_ROLES[role] if t in self.special_tokens]
        return self.hf.token_to_id(names[0]) if names else None

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        return self.hf.encode(text, add_special_tokens=add_special_tokens).ids

    def encode_batch(self, texts: Sequence[str], add_special_tokens: bool = True
                     ) -> list[list[int]]:
        """Many texts at once; HF spreads the work over all CPU cores."""
        encodings = self.hf.encode_batch(list(texts), add_special_tokens=add_special_tokens)
        return [e.ids for e in encodings]

    def tokens(self, text: str, add_special_tokens: bool = False) -> list[str]:
        return self.hf.encode(text, add_special_tokens=add_special_tokens).tokens

    def decode(self, ids: Iterable[int], skip_special_tokens: bool = True) -> str:
        return self.hf.decode(list(ids), skip_special_tokens=skip_special_tokens)

    def save(self, path: str | os.PathLike) -> None:
        self.hf.save(str(path))

    def __repr__(self) -> str:
        return f"FastTokenizer(vocab_size={self.vocab_size}, special_tokens={self.special_tokens})"


def load(path: str | os.PathLike) -> FastTokenizer:
    """Load a tokenizer.json into HF's Rust implementation (same checks as `qkv.tokenize.load`)."""
    read_json(path)  # our clear errors for a missing or corrupted file
    return FastTokenizer(HFTokenizer.from_file(str(Path(path))))


def from_tokenizer(tok: Tokenizer) -> FastTokenizer:
    """The fast twin of a readable tokenizer, without going through a file."""
    return FastTokenizer(HFTokenizer.from_str(json.dumps(tok.to_json(), ensure_ascii=False)))


def _hf_pipeline(kind: str, specials: list[str], vocab_size: int, lowercase: bool
                 ) -> tuple[HFTokenizer, trainers.Trainer]:
    """An untrained HF tokenizer and trainer set up exactly like qkv's `kind`."""
    if kind == "bpe":
        unk = "<unk>" if "<unk>" in specials else None
        hf = HFTokenizer(models.BPE(unk_token=unk, end_of_word_suffix="</w>"))
        hf.normalizer, hf.pre_tokenizer = normalizers.NFC(), pre_tokenizers.Whitespace()
        hf.decoder = decoders.BPEDecoder(suffix="</w>")
        return hf, trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials,
                                       end_of_word_suffix="</w>", show_progress=False)
    if kind == "byte_bpe":
        hf = HFTokenizer(models.BPE())
        hf.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        hf.decoder = decoders.ByteLevel()
        return hf, trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials,
                                       initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                       show_progress=False)
    if kind == "wordpiece":
        hf = HFTokenizer(models.WordPiece(unk_token="[UNK]"))
        hf.normalizer = normalizers.BertNormalizer(lowercase=lowercase)
        hf.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        hf.decoder = decoders.WordPiece(prefix="##", cleanup=False)
        return hf, trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=specials,
                                             show_progress=False)
    raise ValueError(f"kind={kind!r} is not one of bpe, byte_bpe, wordpiece")


def train_hf(kind: str, texts: Iterable[str], vocab_size: int,
             special_tokens: Sequence[str] | None = None, lowercase: bool = False
             ) -> FastTokenizer:
    """Train with HF's own trainer, every setting matching qkv's `kind` (for comparisons).

    HF's `WordPieceTrainer` merges by frequency, i.e. like `WordPiece.train(score="frequency")`.
    """
    default = wordpiece.DEFAULT_SPECIALS if kind == "wordpiece" else bpe.DEFAULT_SPECIALS
    specials = list(special_tokens or default)
    hf, trainer = _hf_pipeline(kind, specials, vocab_size, lowercase)
    hf.train_from_iterator(texts, trainer)
    template = wrap_template(specials)
    if template.before:
        (bos,), (eos,) = template.before, template.after
        hf.post_processor = processors.TemplateProcessing(
            single=f"{bos} $A {eos}", pair=f"{bos} $A {eos} $B:1 {eos}:1",
            special_tokens=[(t, hf.token_to_id(t)) for t in (bos, eos)])
    return FastTokenizer(hf)
