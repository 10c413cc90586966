"""What every question of the lab shares: the registry, the run record, reading results back.

A question is a module ``qNN_<name>.py`` with ``TITLE``, ``KEYWORD``, ``CLAIMS``, ``ANSWER``,
``FULL_SEEDS``, ``SMOKE_SEEDS``, ``run(size, seeds, out) -> metrics``,
``verdict(metrics) -> (label, reason)`` and ``tables(metrics) -> [(columns, rows), ...]``.
``run`` measures and writes ``out/metrics.json``; ``verdict`` and ``tables`` are pure functions
of those numbers, so the report can recompute both from committed results without rerunning.
"""

from __future__ import annotations

import importlib
import json
import os
import platform
import re
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Iterator

import torch

from .. import __version__
from ..errors import DataError, InputError
from .catalog import BY_NUMBER

QUESTION_FILE = re.compile(r"q(\d\d)_\w+\.py")


def _discover() -> dict[int, str]:
    """question number → module name, from the ``qNN_<name>.py`` files beside this one.

    The modules are imported only when asked (so ``qkv ask --list`` stays quick); adding a
    question is adding its file.
    """
    found = {}
    for path in sorted(Path(__file__).parent.iterdir()):
        match = QUESTION_FILE.fullmatch(path.name)
        if match:
            found[int(match[1])] = f"{__package__}.{path.stem}"
    return found


QUESTIONS: dict[int, str] = _discover()
SIZES = ("smoke", "full")
VERDICTS = ("confirmed", "refuted", "depends", "inconclusive")
METRICS_FILE = "metrics.json"


def question(number: int) -> ModuleType:
    """The module answering question ``number``; InputError for one the lab does not answer."""
    if number not in BY_NUMBER:
        raise InputError(f"there is no question {number}; the questions are numbered 1 to {len(BY_NUMBER)}",
                         hint="qkv ask --list shows them all")
    if number not in QUESTIONS:
        answered = ", ".join(str(n) for n in sorted(QUESTIONS))
        raise InputError(f"question {number} ({BY_NUMBER[number].title}) is not yet measured; "
                         f"answered so far: {answered}", hint="qkv ask --list shows the status of each")
    return importlib.import_module(QUESTIONS[number])


def folder_name(number: int) -> str:
    return f"q{number:02d}"


def reproduce_command(number: int, size: str, seeds: int, out: Path | str) -> str:
    return f"qkv ask {number} --size {size} --seeds {seeds} --out {out}"


# -- the run record ---------------------------------------------------------------------------


def git_commit() -> str | None:
    """The commit of the checkout qkv runs from (with ``+dirty`` when it has local edits)."""
    root = Path(__file__).resolve().parents[3]
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                              timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None  # not a git checkout (an installed wheel): the version still says what ran
    return head + ("+dirty" if dirty else "") if head else None


def cpu_model() -> str:
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:  # not Linux: the platform module's coarser answer
        lines = []
    names = [line.split(":", 1)[1].strip() for line in lines if line.lower().startswith("model name")]
    return names[0] if names else platform.processor() or platform.machine()


def hardware() -> dict[str, Any]:
    return {"torch": torch.__version__, "python": platform.python_version(), "cpu": cpu_model(),
            "machine": platform.machine(), "cpu_count": os.cpu_count(), "threads": torch.get_num_threads(),
            "device": "cpu"}


def record(number: int, size: str, seeds: int, out: Path, config: dict, results: dict,
           plots: list[str], started: float) -> dict[str, Any]:
    """The metrics dict every question writes: its numbers plus how, where and when they were made."""
    return {
        "question": number, "title": BY_NUMBER[number].title, "size": size, "seeds": seeds,
        "config": config, "command": reproduce_command(number, size, seeds, out),
        "qkv_version": __version__, "git_commit": git_commit(), "hardware": hardware(),
        "wall_time_s": round(time.perf_counter() - started, 2), "results": results, "plots": plots,
    }


def finish(verdict: Callable[[dict], tuple[str, str]], metrics: dict[str, Any], out: Path) -> dict[str, Any]:
    """Attach the verdict computed from the numbers and write ``out/metrics.json``."""
    metrics["verdict"] = list(verdict(metrics))
    if metrics["verdict"][0] not in VERDICTS:  # a bug in the question's verdict, not a user error
        raise ValueError(f"verdict {metrics['verdict'][0]!r} is not one of {VERDICTS}")
    out.mkdir(parents=True, exist_ok=True)
    (out / METRICS_FILE).write_text(json.dumps(metrics, indent=1, sort_keys=False) + "\n")
    return metrics


def read_metrics(path: Path) -> dict[str, Any]:
    """A stored metrics.json, or DataError naming the file and what is wrong with it."""
    if not path.is_file():
        raise DataError(f"result file {path} is missing", hint="rerun the command that writes it (qkv ask N)")
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DataError(f"result file {path} cannot be read as JSON: {err}") from None
    missing = [k for k in ("question", "size", "seeds", "command", "results", "plots", "verdict")
               if not isinstance(data, dict) or k not in data]
    if missing:
        raise DataError(f"result file {path} lacks {', '.join(missing)}; it was not written by qkv ask")
    return data


def recomputed_verdict(module: ModuleType, metrics: dict[str, Any], path: Path) -> tuple[str, str]:
    """verdict(metrics) on stored numbers; DataError if numbers are unusable or disagree with the file."""
    try:
        label, reason = module.verdict(metrics)
    except (KeyError, TypeError, ValueError, IndexError) as err:
        raise DataError(f"result file {path} lacks the numbers question {metrics.get('question')} "
                        f"needs ({type(err).__name__}: {err})") from None
    stored = metrics["verdict"]
    shown = stored[0] if isinstance(stored, list) and stored else stored
    # Only the label must agree: a reworded reason from a newer qkv is no reason to refuse the file.
    if not (isinstance(stored, list) and len(stored) == 2) or shown != label:
        raise DataError(f"result file {path} stores verdict {shown!r} but its numbers give {label!r}; "
                        f"the file was edited or written by another version",
                        hint=f"rerun: {metrics['command']}")
    return label, reason


def describe_run(m: dict[str, Any]) -> str:
    """``full size, 5 seeds, 186 s on <cpu> (1 thread), torch 2.x, qkv 0.1.0, commit abc+dirty``"""
    hw, commit = m["hardware"], m.get("git_commit")
    threads = f"{hw['threads']} thread" + ("s" if hw["threads"] != 1 else "")
    text = (f"{m['size']} size, {m['seeds']} seeds, {m['wall_time_s']:.0f} s on {hw['cpu']} ({threads}), "
            f"torch {hw['torch']}, qkv {m['qkv_version']}")
    if commit:
        text += f", commit {commit[:12]}" + ("+dirty" if commit.endswith("+dirty") else "")
    return text


@contextmanager
def one_thread() -> Iterator[None]:
    """Run on one CPU thread, restored afterwards: every model measured gets the same compute,
    and timings do not depend on a thread pool fighting whatever else the machine runs."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


# -- what every verdict function needs ----------------------------------------------------------


def smoke_verdict(metrics: dict[str, Any]) -> tuple[str, str] | None:
    """("inconclusive", ...) at smoke size, else None: a smoke run checks the code, not the claim."""
    if metrics["size"] == "smoke":
        return "inconclusive", (f"smoke size: too few and too small runs to decide; "
                                f"run `{full_command(metrics['question'])}` for the verdict")
    return None


def undecidable(metrics: dict[str, Any], min_seeds: int) -> tuple[str, str] | None:
    """("inconclusive", why) when the run cannot decide — smoke size, or too few seeds to
    estimate the seed-to-seed noise — else None. The opening check of every verdict function."""
    smoke = smoke_verdict(metrics)
    if smoke:
        return smoke
    if metrics["seeds"] < min_seeds:
        return "inconclusive", f"{metrics['seeds']} seeds cannot estimate seed noise; at least {min_seeds} are needed"
    return None


def claims_verdict(found: dict[str, tuple[str, str]], n_sd: float) -> tuple[str, str]:
    """The verdict of claims each judged "holds", "fails" or "unclear" (with the numbers why):
    all hold → confirmed, all fail → refuted, all unclear → inconclusive, else depends."""
    text = "; ".join(f"{claim}: {outcome} ({why})" for claim, (outcome, why) in found.items())
    outcomes = {outcome for outcome, _ in found.values()}
    if outcomes == {"holds"}:
        return "confirmed", f"every claim holds beyond {n_sd:g} sd of seed noise: {text}"
    if outcomes == {"fails"}:
        return "refuted", f"no claim holds: {text}"
    if outcomes == {"unclear"}:
        return "inconclusive", f"nothing decided beyond {n_sd:g} sd of seed noise: {text}"
    return "depends", text


def full_command(number: int) -> str:
    return f"qkv ask {number} --size full"


def mean(xs: list[float]) -> float:
    return sum(xs) / len(xs)


def std(xs: list[float]) -> float:
    """Sample standard deviation (n - 1); 0 for a single value."""
    if len(xs) < 2:
        return 0.0
    m = mean(xs)
    return (sum((x - m) ** 2 for x in xs) / (len(xs) - 1)) ** 0.5


def paired_effect(a: list[float], b: list[float], n_sd: float, min_effect: float) -> dict[str, float | bool]:
    """Is ``a`` larger than ``b`` beyond seed noise? Paired by seed: d_i = a_i - b_i.

    ``significant`` when mean(d) > n_sd · sd(d) and mean(d) > min_effect (an effect must also
    be large enough to matter, not only consistent).
    """
    d = [x - y for x, y in zip(a, b)]
    m, s = mean(d), std(d)
    return {"mean": m, "sd": s, "n": len(d), "significant": m > n_sd * s and m > min_effect}


__all__ = ["QUESTIONS", "SIZES", "VERDICTS", "METRICS_FILE", "question", "folder_name", "reproduce_command",
           "full_command", "record", "finish", "describe_run", "read_metrics", "recomputed_verdict",
           "smoke_verdict", "undecidable", "claims_verdict", "mean", "std", "paired_effect", "hardware", "git_commit", "one_thread"]
