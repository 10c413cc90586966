"""`qkv distill TEACHER --out FILE`: a translator's beam outputs for its preset's training sources,
the training targets of a sequence-level distilled student (``qkv.deploy.distill``)."""

from __future__ import annotations

import argparse


def cmd_distill(args: argparse.Namespace) -> int:
    from .distill import distill

    out = distill(args.teacher, args.out, beams=args.beam, batch_size=args.batch_size, precision=args.precision)
    print(f"wrote {out}; train a student on it with `qkv train PRESET train_targets={out} ...`")
    return 0


def add_subparser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "distill", help="a teacher translator's outputs for its training sources (sequence-level distillation)",
        description="Translate the training sources of the teacher's preset with beam search and write one line "
                    "per training pair; `qkv train PRESET train_targets=FILE` then trains a student on them. "
                    "An interrupted run continues where it stopped when the same command is given again.")
    p.add_argument("teacher", help="the teacher: a checkpoint folder of a `qkv train` run, or the run folder")
    p.add_argument("--out", required=True, help="the file to write (must not exist; its folder must)")
    p.add_argument("--beam", type=int, default=4, help="beam size (default 4; 1 = greedy)")
    p.add_argument("--batch-size", type=int, default=64, help="sentences per batch (default 64)")
    p.add_argument("--precision", choices=("fp32", "bf16", "int8"), default="fp32",
                   help="the teacher's precision while translating (default fp32)")
    p.set_defaults(fn=cmd_distill)


__all__ = ["add_subparser", "cmd_distill"]
