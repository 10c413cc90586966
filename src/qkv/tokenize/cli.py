"""`qkv tokenizer train|encode`: train a tokenizer on a corpus, or show how a text is cut.

    qkv tokenizer train --corpus multi30k --kind bpe --vocab 8000 --out tok.json
    qkv tokenizer encode tok.json "Zwei Hunde spielen im Schnee."

`add_subparser` registers these commands under the top-level `qkv` command, whose one exit
path prints their errors (``TokenizerError``, ``DataError``, ``InputError``) as one line.
"""

from __future__ import annotations

import argparse
import json
import time

from qkv.data import CORPORA
from qkv.tokenize import KINDS, TokenizerError, load
from qkv.tokenize._corpus import read_corpus


def cmd_train(args: argparse.Namespace) -> int:
    lines = read_corpus(args.corpus)
    options = {"lowercase": True} if args.lowercase else {}
    if args.lowercase and args.kind != "wordpiece":
        raise TokenizerError("--lowercase applies to --kind wordpiece only")
    if args.score is not None:
        if args.kind != "wordpiece":
            raise TokenizerError("--score applies to --kind wordpiece only")
        if args.backend == "hf" and args.score != "frequency":
            raise TokenizerError("HF's WordPieceTrainer merges by frequency only; use --backend qkv for --score likelihood")
        if args.backend == "qkv":
            options["score"] = args.score
    if args.backend == "hf":
        from qkv.tokenize.fast import train_hf

        start = time.perf_counter()
        tok = train_hf(args.kind, lines, args.vocab, **options)
    else:
        start = time.perf_counter()
        tok = KINDS[args.kind].train(lines, args.vocab, **options)
    seconds = time.perf_counter() - start
    tok.save(args.out)
    print(json.dumps({"out": args.out, "kind": args.kind, "backend": args.backend,
                      "corpus": args.corpus, "lines": len(lines), "vocab_size": tok.vocab_size,
                      "train_seconds": round(seconds, 3)}))
    return 0


def cmd_encode(args: argparse.Namespace) -> int:
    tok = load(args.tokenizer)
    ids = tok.encode(args.text, add_special_tokens=not args.no_special)
    # Byte-level pieces are spelled in byte-characters (Ġ for a space): show each as text too.
    print("pieces:", " ".join(tok.id_to_token[i] for i in ids))
    print("text:  ", " ".join(repr(tok.decode([i], skip_special_tokens=False)) for i in ids))
    print("ids:   ", " ".join(map(str, ids)))
    print(f"{len(ids)} tokens; decode(ids) = {tok.decode(ids)!r}")
    return 0


def add_subparser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register `tokenizer` (with `train` and `encode`) on an argparse subparsers object."""
    parser = subparsers.add_parser("tokenizer", help="train a tokenizer or show its pieces")
    sub = parser.add_subparsers(dest="tokenizer_command", required=True)

    train = sub.add_parser("train", help="train on a corpus and write tokenizer.json")
    train.add_argument("--corpus", required=True,
                       help=f"one of {', '.join(CORPORA)} (read from $QKV_DATA), or a text file")
    train.add_argument("--kind", choices=sorted(KINDS), default="bpe")
    train.add_argument("--vocab", type=int, default=8000, help="vocabulary size")
    train.add_argument("--out", required=True, help="where to write tokenizer.json")
    train.add_argument("--backend", choices=["qkv", "hf"], default="qkv",
                       help="qkv's readable trainer, or HF tokenizers' with the same settings")
    train.add_argument("--lowercase", action="store_true",
                       help="wordpiece only: lowercase and strip accents (BERT uncased)")
    train.add_argument("--score", choices=["likelihood", "frequency"],
                       help="wordpiece only: merge score (default likelihood, the textbook one; frequency "
                            "keeps common words whole at small vocabularies — see qkv.tokenize.wordpiece)")
    train.set_defaults(run=cmd_train)

    encode = sub.add_parser("encode", help="show the pieces and ids of a text")
    encode.add_argument("tokenizer", help="path to tokenizer.json")
    encode.add_argument("text")
    encode.add_argument("--no-special", action="store_true", help="no <s>/</s> or [CLS]/[SEP]")
    encode.set_defaults(run=cmd_encode)
    return parser
