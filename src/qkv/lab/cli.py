"""`qkv ask` and `qkv report`: run one question of the lab, or render the committed results.

    qkv ask --list                       the 35 questions and which are answered
    qkv ask 4                            smoke size (seconds): the code runs, the verdict waits
    qkv ask 4 --size full --seeds 5 --out docs/lab/q04
    qkv report --results docs/lab --out docs/lab

`add_subparser` registers both under the top-level `qkv` command, whose one exit path prints
their errors (``InputError``, ``DataError``) as a single line.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import InputError
from . import base
from .catalog import CATALOG, NOT_MEASURED
from .table import plain

DEFAULT_RUNS = Path("runs/lab")  # a fresh run never overwrites the committed docs/lab results


def cmd_list() -> int:
    for entry in CATALOG:
        status = "answered" if entry.number in base.QUESTIONS else NOT_MEASURED
        print(f"{entry.number:>2}  {status:<16}  {entry.title} ({entry.keyword})")
    print(f"\n{len(base.QUESTIONS)} of {len(CATALOG)} answered; run one with: qkv ask N [--size full]")
    return 0


def cmd_ask(args: argparse.Namespace) -> int:
    if args.list:
        return cmd_list()
    if args.number is None:
        raise InputError("qkv ask needs a question number (1-35) or --list", hint="qkv ask --list")
    module = base.question(args.number)
    seeds = args.seeds if args.seeds is not None else (module.FULL_SEEDS if args.size == "full" else module.SMOKE_SEEDS)
    if seeds < 1:
        raise InputError(f"--seeds {seeds} must be at least 1")
    out = Path(args.out) if args.out else DEFAULT_RUNS / base.folder_name(args.number)
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out} is a file; give a folder for metrics.json and the plots")
    print(f"question {args.number}: {module.TITLE} ({module.KEYWORD}); {args.size} size, {seeds} seeds")
    metrics = module.run(args.size, seeds, out)
    print_result(module, metrics, out)
    return 0


def print_result(module, metrics: dict, out: Path) -> None:
    label, reason = metrics["verdict"]
    print(f"\n{module.ANSWER}\n")
    for t in module.tables(metrics):
        print(plain(t) + "\n")
    print(f"verdict: {label} — {reason}")
    print(f"wrote {out / base.METRICS_FILE} and {', '.join(metrics['plots'])} in {metrics['wall_time_s']:.1f} s")
    if metrics["size"] == "smoke":
        print(f"for the verdict, run the full size: {base.full_command(metrics['question'])}")


def cmd_report(args: argparse.Namespace) -> int:
    from .report import build  # imported here: `qkv ask --list` need not load the report code

    readme, page = build(Path(args.results), Path(args.out))
    print(f"wrote {readme} and {page}")
    return 0


def add_subparser(subparsers: argparse._SubParsersAction) -> None:
    ask = subparsers.add_parser("ask", help="answer one of the 35 questions by measurement",
                                description="Run question N's experiment and print its answer, table and verdict.")
    ask.add_argument("number", type=int, nargs="?", help="question number, 1-35")
    ask.add_argument("--list", action="store_true", help="list all 35 questions and their status")
    ask.add_argument("--size", choices=base.SIZES, default="smoke",
                     help="smoke (seconds, checks the code) or full (minutes, decides the verdict)")
    ask.add_argument("--seeds", type=int, default=None, help="seeds to run (default: the question's own)")
    ask.add_argument("--out", default=None, help=f"folder for metrics.json and plots (default {DEFAULT_RUNS}/qNN)")
    ask.set_defaults(fn=cmd_ask)
    report = subparsers.add_parser("report", help="render the lab results as README.md and report.html")
    report.add_argument("--results", default="docs/lab", help="folder holding qNN/metrics.json (default docs/lab)")
    report.add_argument("--out", default="docs/lab", help="where README.md and report.html go (default docs/lab)")
    report.set_defaults(fn=cmd_report)


__all__ = ["add_subparser", "cmd_ask", "cmd_report"]
