"""Sequence-level knowledge distillation (Kim & Rush, 2016): a teacher's translations as training data.

A small student learns more from what a large teacher writes than from the human references:
the teacher's beam-search outputs are one consistent, simpler translation of each source, the
mode of a distribution the student could not learn whole. So distillation is two commands::

    qkv distill runs/translate-de-en --out runs/distill/teacher.en      # the teacher's translations
    qkv train translate-de-en d_model=128 d_ff=512 train_targets=runs/distill/teacher.en

:func:`distill` translates the training sources of the teacher's own preset (its train_limit
too, so the lines line up with the pairs the student reads) with beam search, and writes one
line per training pair. It works in chunks appended to ``OUT.partial`` and renamed to ``OUT``
when complete, so an interrupted run continues where it stopped; ``OUT.json`` records the
teacher and the settings, and a ``.partial`` left by other settings is refused, not extended.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from tqdm.auto import tqdm

from ..errors import InputError
from ..tasks.run import checkpoint_folder, task_of_run
from ..tasks.translation import translate
from .precision import open_model

CHUNK = 1024  # sentences translated between two appends to the partial file


def _settings(folder: Path, task, beams: int, precision: str, n: int) -> dict:
    return {"teacher": str(folder.resolve()), "preset": task.name, "train_limit": task.train_limit,
            "pairs": n, "beams": beams, "precision": precision}


def _lines_done(partial: Path, record: Path, settings: dict) -> int:
    """Whole chunks already in ``partial`` (0 for a fresh start); refuses a partial file that
    other settings began. A torn last chunk (killed mid-write) is cut off."""
    if not partial.exists():
        return 0
    began = json.loads(record.read_text()) if record.is_file() else None
    if began != settings:
        raise InputError(f"{partial} was begun by another teacher or other settings ({record} says "
                         f"{began}); delete it, or give another --out")
    lines = partial.read_text(encoding="utf-8").split("\n")[:-1]  # each chunk ends with a newline
    done = len(lines) - len(lines) % CHUNK
    partial.write_text("".join(line + "\n" for line in lines[:done]), encoding="utf-8")
    return done


def _append(path: Path, lines: list[str]) -> None:
    """Append one line per translation (a newline inside one would break the alignment), durably."""
    with path.open("a", encoding="utf-8") as f:
        f.write("".join(" ".join(line.split("\n")) + "\n" for line in lines))
        f.flush()
        os.fsync(f.fileno())


def distill(teacher: str | Path, out: str | Path, *, beams: int = 4, batch_size: int = 64,
            precision: str = "fp32", progress: bool = True) -> Path:
    """Write the teacher's translations of its preset's training sources to ``out``, one per line."""
    out = Path(out)
    if beams < 1 or batch_size < 1:
        raise InputError(f"--beam {beams} and --batch-size {batch_size} must be positive integers")
    if out.exists():
        raise InputError(f"{out} exists; give another --out, or delete it to distill again")
    if not out.parent.is_dir():
        raise InputError(f"the folder of --out {out} does not exist; create it first")
    folder = checkpoint_folder(teacher)
    task, _ = task_of_run(folder, "`qkv distill` translates the training sources")
    if task.family != "seq2seq":
        raise InputError(f"{folder} is a {task.name} model; `qkv distill` needs a translator's run")
    model, tok, _ = open_model(folder, family="seq2seq", command="qkv distill", precision=precision)
    sources = [source for source, _ in task.pairs("train")]
    settings = _settings(folder, task, beams, precision, len(sources))
    partial, record = out.with_name(out.name + ".partial"), out.with_name(out.name + ".json")
    done = _lines_done(partial, record, settings)
    record.write_text(json.dumps(settings, indent=2) + "\n")
    started = time.perf_counter()
    with tqdm(total=len(sources), initial=done, unit="sentence", disable=not progress, dynamic_ncols=True) as bar:
        for start in range(done, len(sources), CHUNK):
            chunk = sources[start : start + CHUNK]
            try:
                hyps = translate(model, tok, chunk, beams=beams, batch_size=batch_size, truncate=True)
            except KeyboardInterrupt:
                raise KeyboardInterrupt(f"after {start} of {len(sources)} sentences, kept in {partial}; the same "
                                        f"command continues from there") from None
            _append(partial, hyps)
            bar.update(len(chunk))
    partial.replace(out)
    seconds = time.perf_counter() - started
    record.write_text(json.dumps({**settings, "seconds_this_call": round(seconds, 1)}, indent=2) + "\n")
    return out


__all__ = ["distill", "CHUNK"]
