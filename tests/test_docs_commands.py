"""The commands in README.md and docs/*.md are what a user types: each one parses with the real
``qkv`` parser (a ``qkv train`` also resolves its preset and overrides), each benchmark command
names a real script and real flags, and the README's walk-through runs at a tiny size."""

from __future__ import annotations

import io
import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from qkv.cli import _parse, main, parser
from qkv.tasks.run import configure

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def shell_lines(text: str) -> list[list[str]]:
    """Each command line of the fenced code blocks in ``text`` as shell words (``\\``
    continuations joined, ``# comments`` dropped)."""
    lines, block, pending = [], False, ""
    for raw in text.splitlines():
        if raw.lstrip().startswith("```"):
            block, pending = not block, ""
            continue
        if block:
            pending += raw.rstrip().removesuffix("\\") + " "
            if not raw.rstrip().endswith("\\"):
                lines.append(shlex.split(pending, comments=True))
                pending = ""
    return [words for words in lines if words]


def pipeline(words: list[str]) -> list[list[str]]:
    """``a x && b y | c`` → ``[[a, x], [b, y], [c]]``."""
    parts: list[list[str]] = [[]]
    for word in words:
        if word in ("&&", "|"):
            parts.append([])
        else:
            parts[-1].append(word)
    return [part for part in parts if part]


def commands(program: str) -> list[tuple[str, list[str]]]:
    """(doc file, argv) of every invocation of ``program`` (``qkv`` or a benchmark module)."""
    found = []
    for path in DOCS:
        for line in shell_lines(path.read_text()):
            for words in pipeline(line):
                if words[0] in ("qkv", ".venv/bin/qkv") and program == "qkv":
                    found.append((path.name, words[1:]))
                elif words[:2] == ["python", "-m"] and words[2].startswith("benchmarks.") and program == "bench":
                    found.append((path.name, words[2:]))
    return found


QKV_COMMANDS = commands("qkv")
BENCH_COMMANDS = commands("bench")


def test_the_docs_hold_commands():
    assert len(QKV_COMMANDS) >= 20 and len(BENCH_COMMANDS) >= 5, (len(QKV_COMMANDS), len(BENCH_COMMANDS))


@pytest.mark.parametrize("doc,argv", QKV_COMMANDS, ids=lambda v: " ".join(v) if isinstance(v, list) else v)
def test_documented_qkv_command_parses(doc, argv):
    args = _parse(parser(), argv)
    if args.command == "train":
        configure(args.preset, args.overrides)  # every override names a real field with a valid value


@pytest.mark.parametrize("module", sorted({argv[0] for _, argv in BENCH_COMMANDS}))
def test_documented_benchmark_flags_exist(module):
    help_text = subprocess.run([sys.executable, "-m", module, "--help"], cwd=ROOT, capture_output=True,
                               text=True, timeout=120)
    assert help_text.returncode == 0, help_text.stderr
    for _, argv in BENCH_COMMANDS:
        if argv[0] == module:
            for flag in (w.split("=")[0] for w in argv[1:] if w.startswith("--")):
                assert flag in help_text.stdout, (module, flag)


# -- the README walk-through, at a tiny size ------------------------------------------------------

TINY = {
    "translate-de-en": ["d_model=32", "n_layers=1", "n_heads=2", "d_ff=64", "vocab_size=300", "train_limit=64",
                        "test_limit=4", "max_steps=4", "save_every=2", "warmup_steps=2"],
    "lm-shakespeare": ["d_model=32", "n_layers=1", "n_heads=2", "d_ff=64", "max_steps=2", "save_every=2",
                       "eval_every=2", "steps_per_epoch=2", "batch_size=2", "warmup_steps=1"],
}


def _readme_block() -> list[list[str]]:
    text = (ROOT / "README.md").read_text()
    return shell_lines("```" + text.split("## Train, translate, generate", 1)[1].split("```sh", 1)[1].split("```", 1)[0] + "```")


def _run(words: list[str], stdin: str | None, monkeypatch) -> int:
    if words[0] == "train":
        preset = words[1]
        extra = TINY[preset] + (["max_steps=6"] if "--resume" in words else [])
        words = [*words, *extra]
    if words[:2] == ["tokenizer", "train"]:
        words = [w if w != "8000" else "300" for w in words]  # the same command with a small vocabulary
    if stdin is not None:
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin.encode())))
    return main(words)


def test_readme_walkthrough_runs(tmp_path, monkeypatch, capsys):
    torch.set_num_threads(1)
    monkeypatch.chdir(tmp_path)
    lines = _readme_block()
    assert lines[0] == [".venv/bin/qkv", "train", "translate-de-en", "--max-minutes", "45"]
    for line in lines:
        stdin = None
        for words in pipeline(line):
            if words[0] == "echo":
                stdin = " ".join(words[1:]) + "\n"
                continue
            assert words[0] == ".venv/bin/qkv", line
            assert _run(words[1:], stdin, monkeypatch) == 0, (line, capsys.readouterr().err)
    results = json.loads((tmp_path / "runs/translate-de-en/results.json").read_text())
    assert results["steps"] == 6 and results["checkpoint"].endswith("final")
    assert (tmp_path / "runs/lm-shakespeare/final/model.safetensors").is_file() and (tmp_path / "tok.json").is_file()
