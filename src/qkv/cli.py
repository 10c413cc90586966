"""The ``qkv`` command: each subcommand maps to one function.

    qkv train PRESET [key=value ...] [--out DIR] [--resume DIR] [--max-minutes M]
    qkv presets [PRESET]                 the presets, or one preset's whole recipe
    qkv evaluate CHECKPOINT [--split test] [--beam 4]
    qkv translate CHECKPOINT "Ein Mann fährt Fahrrad."   (or lines on stdin / --file)
    qkv generate CHECKPOINT --prompt "ROMEO:"
    qkv tokenizer train|encode ...
    qkv ask N [--size smoke|full]        answer one of the 35 questions by measurement
    qkv report                           the lab's results as docs/lab/README.md and report.html
    qkv explain CHECKPOINT "text" --out explain.html   attention and attributions on one page
    qkv serve CHECKPOINT [--port 8000]   an HTTP translation / generation service
    qkv export CHECKPOINT --to onnx|ctranslate2|int8 --out DIR   a deployable form of the model
    qkv distill TEACHER --out FILE       a teacher's translations of its training sources
    qkv bench

One exit path: an expected failure (any :class:`~qkv.errors.QkvError`) prints
``qkv: error: <message>`` (and ``qkv: hint: ...`` where there is one) and exits 2; Ctrl-C
prints one line and exits 130 (training saves a checkpoint first). Notices that are not
errors (input cut with ``--truncate``, a context cropped while generating) print as
``qkv: note: ...``. A traceback means a bug in qkv.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, Sequence

from . import __version__
from .errors import InputError, QkvError, QkvNotice

EXIT_ERROR, EXIT_INTERRUPTED = 2, 130


def _fail(message: str, hint: str | None = None) -> int:
    print(f"qkv: error: {message}", file=sys.stderr)
    if hint:
        print(f"qkv: hint: {hint}", file=sys.stderr)
    return EXIT_ERROR


def _note(message, category, filename, lineno, file=None, line=None) -> None:  # noqa: ANN001
    """``warnings.showwarning`` for the command line: a :class:`QkvNotice` is one ``qkv: note:``
    line; any other warning (from torch, say) keeps Python's usual form."""
    if issubclass(category, QkvNotice):
        print(f"qkv: note: {message}", file=sys.stderr)
    else:
        _python_showwarning(message, category, filename, lineno, file, line)


_python_showwarning = warnings.showwarning


# ---------------------------------------------------------------------------------------------
# commands


def cmd_train(args: argparse.Namespace) -> int:
    from .tasks.run import train

    return train(args.preset, args.overrides, out=args.out, resume=args.resume, max_minutes=args.max_minutes,
                 threads=args.threads)


def cmd_presets(args: argparse.Namespace) -> int:
    from .tasks import TASKS, get_task
    from .tasks.describe import recipe

    if args.preset is None:
        width = max(map(len, TASKS))
        for name in TASKS:
            print(f"{name:<{width}}  {get_task(name).description}")
        print("\n`qkv presets NAME` shows one preset's whole recipe: every field and its default.")
        return 0
    print(recipe(get_task(args.preset)))
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from .tasks.run import evaluate

    result = evaluate(args.checkpoint, split=args.split, beams=args.beam, limit=args.limit)
    print(json.dumps(result, indent=2, ensure_ascii=False))
    return 0


def cmd_translate(args: argparse.Namespace) -> int:
    from .deploy.precision import open_model
    from .tasks.translation import translate

    if args.batch_size < 1:
        raise InputError(f"--batch-size {args.batch_size} must be a positive number of sentences")
    lines = [_checked_text(t, f"argument {i + 1}") for i, t in enumerate(args.text)] or _read_lines(args.file)
    if not any(line.strip() for line in lines):
        raise InputError("nothing to translate: give a sentence, --file, or lines on stdin")
    model, tok, _ = open_model(args.checkpoint, family="seq2seq", command="qkv translate", precision=args.precision)
    for line in translate(model, tok, lines, beams=args.beam, batch_size=args.batch_size, truncate=args.truncate):
        print(line)
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    import torch

    from .deploy.precision import open_model
    from .generate import generate

    prompt = _checked_text(args.prompt, "--prompt")
    model, tok, _ = open_model(args.checkpoint, family="lm", command="qkv generate", precision=args.precision)
    ids = tok.encode(prompt, add_special_tokens=False)
    if not ids:
        raise InputError("the prompt is empty; give some text with --prompt")
    out = generate(model, torch.tensor([ids]), max_new_tokens=args.max_new_tokens, do_sample=not args.greedy,
                   temperature=args.temperature, top_k=args.top_k, top_p=args.top_p,
                   repetition_penalty=args.repetition_penalty, seed=args.seed,
                   eos_id=None if args.no_eos else -1, allow_extrapolation=args.allow_extrapolation)
    print(tok.decode(out[0].tolist()))
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from .bench import run

    run(quick=not args.full)
    return 0


# ---------------------------------------------------------------------------------------------
# text input: UTF-8 or a clear refusal


def _checked_text(text: str, source: str) -> str:
    """Command-line text that is not UTF-8 reaches Python as lone surrogates: refuse it here."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise InputError(f"{source} is not valid UTF-8 (character {e.start + 1}); give UTF-8 text") from None
    return text


def _read_lines(path: str | None) -> list[str]:
    """Lines of ``path`` (or standard input), decoded as UTF-8 with the problem named if not."""
    source = path or "standard input"
    try:
        data = Path(path).read_bytes() if path else sys.stdin.buffer.read()
    except OSError as e:
        raise InputError(f"--file {path}: {e.strerror}") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise InputError(f"{source} is not UTF-8 text: byte {data[e.start]:#04x} at offset {e.start} "
                         f"({e.reason})", hint="convert it first, e.g. `iconv -f LATIN1 -t UTF-8`") from None
    lines = [line.removesuffix("\r") for line in text.split("\n")]  # "\n" only, as files are written
    return lines[:-1] if lines and lines[-1] == "" else lines


# ---------------------------------------------------------------------------------------------
# the parser


def _presets_epilog() -> str:
    from .tasks import TASKS, get_task

    width = max(map(len, TASKS))
    rows = "\n".join(f"  {name:<{width}}  {get_task(name).description}" for name in TASKS)
    return (f"presets (each one's defaults are the recipe behind its documented result):\n{rows}\n\n"
            "overrides: any field of the model (ModelConfig), the training run (TrainConfig) or the preset's\n"
            "task, as key=value (e.g. position=rope lr=5e-4 max_tokens=3000). `qkv presets NAME` lists every\n"
            "field of a preset with its default.")


def _add_train(sub: argparse._SubParsersAction) -> None:
    t = sub.add_parser("train", help="train a preset (e.g. translate-de-en) on its corpus",
                       description="Train a preset into a run folder, or continue a run with --resume.",
                       epilog=_presets_epilog(), formatter_class=argparse.RawDescriptionHelpFormatter)
    t.add_argument("preset", help="a preset name (listed below)")
    t.add_argument("overrides", nargs="*", default=[], metavar="key=value", help="override a model, training or task field")
    t.add_argument("--out", help="run folder for a new run (default runs/PRESET); must be new or empty")
    t.add_argument("--resume", metavar="DIR", help="continue the run in DIR (or from one of its checkpoints)")
    t.add_argument("--max-minutes", type=float, help="wall-clock budget; saves and stops cleanly (default: none)")
    t.add_argument("--threads", type=int, help="torch CPU threads (default: all cores)")
    t.set_defaults(fn=cmd_train, trailing="overrides")
    p = sub.add_parser("presets", help="list the presets, or show one preset's whole recipe")
    p.add_argument("preset", nargs="?", help="show every field of this preset with its default")
    p.set_defaults(fn=cmd_presets)


def _add_inference(sub: argparse._SubParsersAction) -> None:
    e = sub.add_parser("evaluate", help="the preset's metric of a checkpoint on its test split")
    e.add_argument("checkpoint", help="a checkpoint folder, or a run folder (then its final/)")
    e.add_argument("--split", help="split to score (default: the preset's test split)")
    e.add_argument("--beam", type=int, default=4, help="beam size for translators (default 4)")
    e.add_argument("--limit", type=int, help="only the first N examples")
    e.set_defaults(fn=cmd_evaluate)

    tr = sub.add_parser("translate", help="translate sentences with a trained translator")
    tr.add_argument("checkpoint", help="a checkpoint folder, or a run folder (then its final/)")
    tr.add_argument("text", nargs="*", default=[], help="sentences (default: one per line from --file or stdin)")
    tr.add_argument("--file", help="read sentences from this UTF-8 file, one per line")
    tr.add_argument("--beam", type=int, default=4, help="beam size (default 4; 1 = greedy)")
    tr.add_argument("--batch-size", type=int, default=64, help="sentences per batch (default 64)")
    tr.add_argument("--truncate", action="store_true",
                    help="cut sentences longer than the model's positions instead of refusing them")
    _add_precision(tr)
    tr.set_defaults(fn=cmd_translate, trailing="text")

    g = sub.add_parser("generate", help="continue a prompt with a language model",
                       description="Continue a prompt. Samples by default (temperature 0.8); --greedy takes the "
                                   "most probable token at each step.")
    g.add_argument("checkpoint", help="a checkpoint folder, or a run folder (then its final/)")
    g.add_argument("--prompt", required=True)
    g.add_argument("--max-new-tokens", type=int, default=200, help="default 200")
    g.add_argument("--temperature", type=float, default=0.8, help="sampling temperature > 0 (default 0.8)")
    g.add_argument("--top-k", type=int, help="sample only among the k most probable tokens")
    g.add_argument("--top-p", type=float, help="sample only within the nucleus of probability p, 0 < p <= 1")
    g.add_argument("--repetition-penalty", type=float, default=1.0, help="> 0; 1 = none (default)")
    g.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    g.add_argument("--greedy", action="store_true", help="no sampling: the most probable token each step")
    g.add_argument("--no-eos", action="store_true", help="do not stop at the end-of-text token")
    g.add_argument("--allow-extrapolation", action="store_true",
                   help="run positions past max_len (sinusoidal/rope/alibi/...) instead of cropping the context")
    _add_precision(g)
    g.set_defaults(fn=cmd_generate)


def _add_precision(p: argparse.ArgumentParser) -> None:
    p.add_argument("--precision", choices=("fp32", "bf16", "int8"),
                   help="run the model at this precision: fp32 (default), bf16 weights and activations, or int8 "
                        "linear layers (CPU); an int8 checkpoint from `qkv export --to int8` runs as int8")


@contextmanager
def _ctrl_c_remembered() -> Iterator[Callable[[], bool]]:
    """Ctrl-C raises KeyboardInterrupt as usual, and is also remembered.

    Python runs a signal handler when native code next checks for signals; a library that
    checks inside a long native call (the Rust tokenizers do) can swallow the exception, and the
    command would then finish and exit 0 as if never interrupted. The flag catches that.
    """
    if threading.current_thread() is not threading.main_thread():
        yield lambda: False
        return
    received: list[int] = []

    def handler(signum: int, frame: object) -> None:
        received.append(signum)
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield lambda: bool(received)
    finally:
        signal.signal(signal.SIGINT, previous)


class _Parser(argparse.ArgumentParser):
    """argparse with qkv's one exit path: a usage mistake is one error line and a hint."""

    def error(self, message: str):  # type: ignore[override]
        raise InputError(message, hint=f"see `{self.prog} --help`")


def _parse(p: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse, letting ``key=value`` overrides (train) and sentences (translate) come after the
    options too: ``qkv train translate-de-en --resume DIR max_steps=6`` works as typed."""
    args, extra = p.parse_known_args(argv)
    dest = getattr(args, "trailing", None)
    if extra and (dest is None or any(item.startswith("-") for item in extra)):
        p.error(f"unrecognized arguments: {' '.join(extra)}")
    if extra:
        setattr(args, dest, [*getattr(args, dest), *extra])
    return args


def parser() -> argparse.ArgumentParser:
    p = _Parser(prog="qkv", description="A readable, switchable Transformer library and lab.")
    p.add_argument("--version", action="version", version=f"qkv {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    _add_train(sub)
    _add_inference(sub)

    from .deploy.cli_distill import add_subparser as add_distill
    from .deploy.cli_export import add_subparser as add_export
    from .deploy.cli_serve import add_subparser as add_serve
    from .interpret.cli import add_subparser as add_explain
    from .lab.cli import add_subparser as add_lab
    from .tokenize.cli import add_subparser as add_tokenizer

    add_tokenizer(sub)
    add_lab(sub)
    add_explain(sub)
    add_serve(sub)
    add_export(sub)
    add_distill(sub)

    b = sub.add_parser("bench", help="speed benchmarks against the peers (quick size)")
    b.add_argument("--full", action="store_true")
    b.set_defaults(fn=cmd_bench)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run one ``qkv`` command; returns its exit code (0, 2 for an expected error, 130 for Ctrl-C)."""
    try:
        args = _parse(parser(), argv)
        fn = getattr(args, "fn", None) or args.run  # `qkv tokenizer` registers `run`
        with warnings.catch_warnings(), _ctrl_c_remembered() as interrupted:
            warnings.simplefilter("always", QkvNotice)  # each notice is said once per call; say it
            warnings.showwarning = _note
            code = fn(args) or 0
        if interrupted():  # a native call swallowed the KeyboardInterrupt; the exit code still says it
            raise KeyboardInterrupt
        return code
    except QkvError as err:
        return _fail(str(err), err.hint)
    except KeyboardInterrupt as err:
        print(f"\nqkv: interrupted{' ' + str(err) if str(err) else ''}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `qkv translate ... | head`: the reader left; not an error
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
