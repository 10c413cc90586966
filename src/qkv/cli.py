"""The ``qkv`` command: each subcommand maps to one function.

    qkv train PRESET [key=value ...] [--out DIR] [--resume DIR] [--max-minutes M]
    qkv evaluate CHECKPOINT [--split test] [--beam 4]
    qkv translate CHECKPOINT "Ein Mann fährt Fahrrad."   (or lines on stdin / --file)
    qkv generate CHECKPOINT --prompt "ROMEO:"
    qkv tokenizer train|encode ...
    qkv bench
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence

from .config import ConfigError


def _fail(message: str) -> int:
    print(f"qkv: error: {message}", file=sys.stderr)
    return 2


def cmd_train(args: argparse.Namespace) -> int:
    from .tasks.run import train

    return train(args.preset, args.overrides, out=args.out, resume=args.resume, max_minutes=args.max_minutes,
                 threads=args.threads)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from .tasks.run import evaluate

    result = evaluate(args.checkpoint, split=args.split, beams=args.beam, limit=args.limit)
    print(json.dumps(result, indent=2, ensure_ascii=False))
    return 0


def cmd_translate(args: argparse.Namespace) -> int:
    from . import load
    from .tasks.common import find_tokenizer
    from .tasks.translation import translate

    model, tok = load(args.checkpoint), find_tokenizer(args.checkpoint)
    if args.text:
        lines = args.text
    else:
        stream = open(args.file, encoding="utf-8") if args.file else sys.stdin
        lines = [line.rstrip("\n") for line in stream]
    if not any(line.strip() for line in lines):
        return _fail("nothing to translate: give a sentence, --file, or lines on stdin")
    for line in translate(model, tok, lines, beams=args.beam, batch_size=args.batch_size):
        print(line)
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    import torch

    from . import load
    from .generate import generate
    from .tasks.common import find_tokenizer

    model, tok = load(args.checkpoint), find_tokenizer(args.checkpoint)
    ids = tok.encode(args.prompt, add_special_tokens=False)
    if not ids:
        return _fail("the prompt is empty; give some text with --prompt")
    out = generate(model, torch.tensor([ids]), max_new_tokens=args.max_new_tokens, do_sample=not args.greedy,
                   temperature=args.temperature, top_k=args.top_k, top_p=args.top_p, seed=args.seed,
                   eos_id=None if args.no_eos else -1, allow_extrapolation=args.allow_extrapolation)
    print(tok.decode(out[0].tolist()))
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from .bench import run

    run(quick=not args.full)
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="qkv", description="A readable, switchable Transformer library and lab.")
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a preset (e.g. translate-de-en) on its corpus")
    t.add_argument("preset")
    t.add_argument("overrides", nargs="*", help="key=value for ModelConfig, TrainConfig or the task")
    t.add_argument("--out", help="run folder (default runs/PRESET)")
    t.add_argument("--resume", help="continue a run from its folder or a checkpoint in it")
    t.add_argument("--max-minutes", type=float, help="wall-clock budget; saves and stops cleanly")
    t.add_argument("--threads", type=int, help="torch CPU threads (default: all cores)")
    t.set_defaults(fn=cmd_train)

    e = sub.add_parser("evaluate", help="the preset's metric on its test split")
    e.add_argument("checkpoint")
    e.add_argument("--split", default="test")
    e.add_argument("--beam", type=int, default=4)
    e.add_argument("--limit", type=int, help="only the first N examples")
    e.set_defaults(fn=cmd_evaluate)

    tr = sub.add_parser("translate", help="translate sentences with a trained checkpoint")
    tr.add_argument("checkpoint")
    tr.add_argument("text", nargs="*")
    tr.add_argument("--file")
    tr.add_argument("--beam", type=int, default=4)
    tr.add_argument("--batch-size", type=int, default=64)
    tr.set_defaults(fn=cmd_translate)

    g = sub.add_parser("generate", help="continue a prompt with a language-model checkpoint")
    g.add_argument("checkpoint")
    g.add_argument("--prompt", required=True)
    g.add_argument("--max-new-tokens", type=int, default=200)
    g.add_argument("--temperature", type=float, default=0.8)
    g.add_argument("--top-k", type=int)
    g.add_argument("--top-p", type=float)
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--greedy", action="store_true")
    g.add_argument("--no-eos", action="store_true", help="do not stop at the end-of-text token")
    g.add_argument("--allow-extrapolation", action="store_true")
    g.set_defaults(fn=cmd_generate)

    from .tokenize.cli import add_subparser

    add_subparser(sub)

    b = sub.add_parser("bench", help="speed benchmarks against the peers (quick size)")
    b.add_argument("--full", action="store_true")
    b.set_defaults(fn=cmd_bench)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        fn = getattr(args, "fn", None) or args.run  # `qkv tokenizer` registers `run`
        return fn(args) or 0
    except (ConfigError, KeyError, FileNotFoundError, ValueError) as err:
        message = err.args[0] if isinstance(err, KeyError) and err.args else str(err)
        return _fail(message)


if __name__ == "__main__":
    sys.exit(main())
