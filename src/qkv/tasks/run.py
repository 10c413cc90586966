"""``qkv train`` and ``qkv evaluate``: a preset, its overrides, a run folder, the trainer.

A run folder holds ``task.json`` (preset, overrides, and what each ``--resume`` changed),
``tokenizer.json``, the trainer's checkpoints (``checkpoint-*/``, ``best/``, ``averaged/``),
``metrics.jsonl``, ``final/`` (the weights to use: the averaged ones when averaging happened,
else the last checkpoint's) and, at the end, ``results.json`` with the test metric of
``final/``.

A run folder is never damaged: a new run refuses a folder that already holds anything before
writing a byte; a run that fails before its first checkpoint removes what it wrote; ``--resume``
refuses a preset or an override that differs from the run's (only the :data:`SAFE_ON_RESUME`
ones may change, and are recorded).
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import shutil
import time
import warnings
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any, Iterator

import torch

from ..checkpoint import CONFIG, WEIGHTS, latest_checkpoint, list_checkpoints, read_config
from ..config import ModelConfig, field_names, split_item
from ..errors import CheckpointError, ConfigError, InputError, QkvNotice
from ..models import build_model, describe, unused_fields
from ..train import Trainer, distributed
from ..train.checkpoint import atomic_directory
from ..train.config import TrainConfig
from . import get_task
from .base import Task, option_names
from .common import TOKENIZER_FILE

TASK_JSON = "task.json"
FINAL = "final"
# Overrides a resumed run may change: when and how long to train, evaluate and save. Anything
# else (the model, the optimizer, the data) would make it another run than the one resumed.
SAFE_ON_RESUME = frozenset({"max_steps", "max_epochs", "eval_every", "save_every", "log_every", "keep_last",
                            "average_last", "early_stopping_patience", "test_limit", "device"})


# ---------------------------------------------------------------------------------------------
# presets and overrides


def split_overrides(task: Task, items: list[str]) -> tuple[list[str], list[str], dict[str, str]]:
    """Route each ``key=value`` by declared fields: the task's options, then ModelConfig, then
    TrainConfig. An unknown key fails with a "did you mean" over all three."""
    options = set(option_names(type(task)))
    model, train, task_options = [], [], {}
    for item in items:
        key, text = split_item(item)
        if key in options:
            task_options[key] = text
        elif key in field_names(ModelConfig):
            model.append(f"{key}={text}")
        elif key in field_names(TrainConfig):
            train.append(f"{key}={text}")
        else:
            raise ConfigError(_unknown_override(key, task))
    return model, train, task_options


def _unknown_override(key: str, task: Task) -> str:
    groups = {"model": field_names(ModelConfig), "training": field_names(TrainConfig),
              f"{task.name} task": set(option_names(type(task)))}
    names = sorted(set().union(*groups.values()))
    close = difflib.get_close_matches(key, names, n=3, cutoff=0.6)
    hint = f"did you mean {', '.join(close)}?" if close else "`qkv presets " + task.name + "` lists them all"
    return f"unknown override {key!r}: not a model, training or {task.name} task field; {hint}"


def configure(preset: str, overrides: list[str]) -> Task:
    """The preset's task with ``key=value`` overrides applied (each checked against its field)."""
    task = get_task(preset)
    model, train, options = split_overrides(task, overrides)
    task = task.with_options(options)
    task = dataclasses.replace(task, model=task.model.override(model), train=task.train.override(train))
    inert = unused_fields(task.model)
    for key in dict.fromkeys(split_item(item)[0] for item in model):  # said once per key
        if key in inert:
            warnings.warn(f"{key} has no effect on {preset}'s model: {inert[key]}", QkvNotice, stacklevel=2)
    return task


# ---------------------------------------------------------------------------------------------
# run folders


def _read_task_json(run_dir: Path) -> dict[str, Any]:
    path = run_dir / TASK_JSON
    try:
        saved = json.loads(path.read_text())
        return {"preset": str(saved["preset"]), "overrides": list(saved["overrides"]),
                "resumes": list(saved.get("resumes", []))}
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise CheckpointError(f"{path} cannot be read ({type(e).__name__}: {e}); it is not a run's task record") from None


def _write_task_json(run_dir: Path, record: dict[str, Any]) -> None:
    tmp = run_dir / f".{TASK_JSON}.tmp"
    tmp.write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n")
    tmp.replace(run_dir / TASK_JSON)


def run_folder_of(path: Path) -> Path | None:
    """The run folder ``path`` is or lies in (the folder holding ``task.json``), or None."""
    for folder in (path, path.parent):
        if (folder / TASK_JSON).is_file():
            return folder
    return None


def refuse_existing(run_dir: Path) -> None:
    """A new run goes into a new or empty folder only: nothing of an earlier run is touched."""
    if run_dir.exists() and not run_dir.is_dir():
        raise InputError(f"--out {run_dir} is a file; give the path of a folder for the run")
    if not run_dir.is_dir() or not any(run_dir.iterdir()):
        return
    if (run_dir / TASK_JSON).is_file():
        preset = _read_task_json(run_dir)["preset"]
        raise InputError(f"{run_dir} already holds a {preset} run",
                         hint=f"continue it with `qkv train {preset} --resume {run_dir}`, or choose another --out")
    shown = ", ".join(sorted(p.name for p in run_dir.iterdir())[:4])
    raise InputError(f"{run_dir} is not empty (it holds {shown}); a new run needs a new or empty folder",
                     hint="choose another --out")


@contextmanager
def removed_on_early_failure(run_dir: Path) -> Iterator[None]:
    """If what runs inside fails before the first checkpoint, leave ``run_dir`` as it was."""
    existed = run_dir.exists()
    try:
        yield
    except BaseException:
        if not list_checkpoints(run_dir) and _is_main_process():
            if existed:  # it was empty (refuse_existing checked): empty it again
                for entry in run_dir.iterdir():
                    shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
            else:
                shutil.rmtree(run_dir, ignore_errors=True)
        raise


def _is_main_process() -> bool:
    return distributed.launched_rank() == 0  # rank 0 owns the run folder


def write_final(run_dir: Path, source: Path) -> Path:
    """``run_dir/final``: the weights to use (config, weights, tokenizer), written atomically."""
    with atomic_directory(run_dir / FINAL) as tmp:
        config = read_config(source)
        config["final_from"] = source.name
        (tmp / CONFIG).write_text(json.dumps(config, indent=2) + "\n")
        shutil.copyfile(source / WEIGHTS, tmp / WEIGHTS)
        shutil.copyfile(run_dir / TOKENIZER_FILE, tmp / TOKENIZER_FILE)
    return run_dir / FINAL


# ---------------------------------------------------------------------------------------------
# resuming


def _resume_point(resume: str) -> tuple[Path, Path | None]:
    """(run folder, checkpoint to resume or None for its newest) from ``--resume PATH``."""
    path = Path(resume)
    if not path.exists():
        raise InputError(f"--resume {path} does not exist; give the run folder `qkv train` wrote")
    run_dir = run_folder_of(path)
    if run_dir is None:
        raise InputError(f"--resume {path} is not a run folder written by `qkv train` (no {TASK_JSON} in it "
                         f"or in {path.parent})")
    checkpoint = None if path == run_dir else path
    if checkpoint is None and latest_checkpoint(run_dir) is None:
        raise InputError(f"{run_dir} holds no checkpoint to resume from (the run stopped before its first save)",
                         hint=f"start it again with `qkv train PRESET --out {run_dir}` after removing the folder")
    return run_dir, checkpoint


def _value(task: Task, key: str) -> Any:
    for holder in (task, task.model, task.train):
        if key in {f.name for f in dataclasses.fields(holder)}:
            return getattr(holder, key)
    raise KeyError(key)


def resume_overrides(run_dir: Path, preset: str, overrides: list[str]) -> tuple[list[str], list[str]]:
    """(all overrides of the resumed run, the new ones accepted) — or a refusal naming both sides."""
    saved = _read_task_json(run_dir)
    if preset != saved["preset"]:
        raise InputError(f"{run_dir} is a {saved['preset']} run, not {preset}",
                         hint=f"resume it with `qkv train {saved['preset']} --resume {run_dir}`")
    before = saved["overrides"] + [o for r in saved["resumes"] for o in r.get("overrides", [])]
    old, new = configure(preset, before), configure(preset, before + overrides)
    changed = [split_item(o)[0] for o in overrides if _value(old, split_item(o)[0]) != _value(new, split_item(o)[0])]
    refused = [k for k in changed if k not in SAFE_ON_RESUME]
    if refused:
        details = ", ".join(f"{k}={_value(old, k)!r} in the run, {_value(new, k)!r} asked" for k in refused)
        raise InputError(f"--resume cannot change {details}: the resumed run would not be the run it continues",
                         hint=f"drop the override, or start a new run with --out; on resume only "
                              f"{', '.join(sorted(SAFE_ON_RESUME))} and --max-minutes may change")
    accepted = [o for o in overrides if split_item(o)[0] in changed]
    return before + accepted, accepted


def check_checkpoint_recipe(checkpoint: Path, task: Task) -> None:
    """Refuse to resume a checkpoint trained with another recipe than the one now configured.

    task.json records the overrides, not the preset's defaults; if a preset's defaults changed
    since the run started (a newer qkv), the checkpoint's own config.json still says how it was
    trained. Only the SAFE_ON_RESUME fields and the time budget may differ; ``precision`` is
    compared after "auto" is resolved for this machine.
    """
    from ..train import runtime

    saved = TrainConfig.from_dict(read_config(checkpoint).get("train", {}))
    device = torch.device(runtime.device_type(task.train.device))
    ours = {**task.train.to_dict(), "precision": runtime.resolve_precision(task.train.precision, device)}
    theirs = {**saved.to_dict(), "precision": runtime.resolve_precision(saved.precision, device)}
    differ = [k for k in ours if ours[k] != theirs[k] and k not in SAFE_ON_RESUME | {"max_minutes"}]
    if differ:
        shown = ", ".join(f"{k}={theirs[k]!r} in {checkpoint.name}, {ours[k]!r} now" for k in differ[:4])
        fix = " ".join(f"{k}={_override_text(theirs[k])}" for k in differ)
        raise InputError(f"{checkpoint} was trained with another recipe ({shown})",
                         hint=f"resume it as it was trained: add {fix}")


def _override_text(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value))
    return "none" if value is None else str(value)


# ---------------------------------------------------------------------------------------------
# qkv train


def train(preset: str, overrides: list[str], *, out: str | None = None, resume: str | None = None,
          max_minutes: float | None = None, threads: int | None = None) -> int:
    """Train ``preset`` into a run folder (or continue one); returns the exit code."""
    if threads is not None:
        if threads < 1:
            raise InputError(f"--threads {threads} must be a positive number of CPU threads")
        torch.set_num_threads(threads)
    if max_minutes is not None and not max_minutes > 0:
        raise InputError(f"--max-minutes {max_minutes} must be a positive number of minutes")
    if resume:
        run_dir, checkpoint = _resume_point(resume)
        overrides, accepted = resume_overrides(run_dir, preset, overrides)
        task = configure(preset, overrides)  # every override checked before anything is written
    else:
        run_dir, checkpoint, accepted = Path(out or f"runs/{preset}"), None, []
        task = configure(preset, overrides)  # a typo in an override is reported before a taken folder
        if _is_main_process():
            refuse_existing(run_dir)
    if max_minutes is not None:
        task = dataclasses.replace(task, train=task.train.replace(max_minutes=max_minutes))
    if resume:
        check_checkpoint_recipe(checkpoint or latest_checkpoint(run_dir), task)
    start = time.time()
    with removed_on_early_failure(run_dir) if not resume else nullcontext():
        trainer = _start(task, run_dir, resume=bool(resume), checkpoint=checkpoint, start=start)
        if _is_main_process():
            _record(run_dir, preset, overrides, accepted, resume=bool(resume), max_minutes=max_minutes,
                    step=trainer.state.step)
        result = trainer.fit()
    return _finish(task, run_dir, result, start)


def _start(task: Task, run_dir: Path, *, resume: bool, checkpoint: Path | None, start: float) -> Trainer:
    """Prepare the data and tokenizer, build the model, and a Trainer ready to fit."""
    run_dir.mkdir(parents=True, exist_ok=True)
    tok = task.prepare(run_dir)
    torch.manual_seed(task.train.seed)
    model = build_model(task.model_config())
    if not resume:
        task.initial_weights(model)
    trainer = Trainer(model, task.train, task.batches(), run_dir, evaluate=task.evaluate)
    precision = task.train.precision + (f" → {trainer.precision}" if task.train.precision == "auto" else "")
    print(f"{task.name}: {describe(model)}; tokenizer {tok.vocab_size} tokens; precision {precision} "
          f"({time.time() - start:.0f}s to prepare)")
    if resume:
        trainer.resume(checkpoint)
    return trainer


def _record(run_dir: Path, preset: str, overrides: list[str], accepted: list[str], *, resume: bool,
            max_minutes: float | None, step: int) -> None:
    """task.json: how the run was started, and what each resume changed (and from which step)."""
    if not resume:
        _write_task_json(run_dir, {"preset": preset, "overrides": overrides, "resumes": []})
        return
    record = _read_task_json(run_dir)
    record["resumes"].append({"at_step": step, "overrides": accepted, "max_minutes": max_minutes})
    _write_task_json(run_dir, record)


def _finish(task: Task, run_dir: Path, result, start: float) -> int:
    """Write ``final/``, then (unless interrupted) score it on the test split into results.json."""
    if not _is_main_process():
        return 0
    for folder in {result.checkpoint, run_dir / "best", *([result.averaged] if result.averaged else [])}:
        if folder.exists():
            shutil.copy(run_dir / TOKENIZER_FILE, folder / TOKENIZER_FILE)
    final = write_final(run_dir, result.averaged or result.checkpoint)
    if result.stop_reason == "interrupted":
        print(f"interrupted at step {result.step}; its weights are in {final}; "
              f"continue with: qkv train {task.name} --resume {run_dir}")
        return 130
    try:
        metrics = task.test(open_checkpoint(final, family=task.family)[0])
    except KeyboardInterrupt:
        raise KeyboardInterrupt(f"while scoring; the trained weights are saved in {final}: "
                                f"score them with `qkv evaluate {final}`") from None
    metrics.update(checkpoint=str(final), steps=result.step, stop_reason=result.stop_reason,
                   train_minutes=round((time.time() - start) / 60, 1))
    (run_dir / "results.json").write_text(json.dumps(metrics, indent=2, ensure_ascii=False))
    print(json.dumps({k: v for k, v in metrics.items() if k != "examples"}, indent=2, ensure_ascii=False))
    print(f"weights: {final}")
    return 0


# ---------------------------------------------------------------------------------------------
# checkpoints for inference, and qkv evaluate

FAMILY_NAMES = {"seq2seq": "a translator (family 'seq2seq')", "lm": "a language model (family 'lm')",
                "encoder": "an encoder (family 'encoder')"}


def checkpoint_folder(path: str | Path) -> Path:
    """The checkpoint a path names: itself, or a run folder's ``final/`` (else ``averaged/``,
    else its newest checkpoint). A missing path inside a run says where the weights are."""
    path = Path(path)
    run_dir = run_folder_of(path)
    if not path.exists():
        if run_dir is not None or (path.parent / TASK_JSON).is_file():
            where = path.parent / FINAL if (path.parent / FINAL).is_dir() else latest_checkpoint(path.parent)
            raise CheckpointError(f"{path} does not exist" + (f"; this run's weights are in {where}" if where else
                                                              "; the run has written no checkpoint yet"))
        raise CheckpointError(f"checkpoint folder {path} does not exist")
    if path.is_dir() and not (path / CONFIG).exists() and run_dir == path:
        for candidate in (path / FINAL, path / "averaged", latest_checkpoint(path)):
            if candidate is not None and (candidate / CONFIG).exists():
                return candidate
    return path


def open_checkpoint(path: str | Path, *, family: str | None = None, command: str = ""):
    """(model, tokenizer, folder) of a checkpoint, refusing a model of another family."""
    from ..checkpoint import load
    from .common import find_tokenizer

    folder = checkpoint_folder(path)
    found = read_config(folder)["model"].get("family")
    if family is not None and found != family:
        use = {"seq2seq": "qkv translate", "lm": "qkv generate", "encoder": "qkv evaluate"}.get(found, "")
        raise InputError(f"{folder} holds {FAMILY_NAMES.get(found, repr(found))}; {command or 'this'} needs "
                         f"{FAMILY_NAMES[family]}" + (f" — use `{use}` with it" if use and command != use else ""))
    return load(folder), find_tokenizer(folder), folder


def task_of_run(folder: Path, what: str) -> tuple[Task, Path]:
    """(the preset task as configured for the run, the run folder) of a checkpoint of a
    ``qkv train`` run; ``what`` says who needs it, in the error for a folder outside a run."""
    run_dir = run_folder_of(folder)
    if run_dir is None:
        raise InputError(f"no {TASK_JSON} in {folder} or {folder.parent}: {what} of a run folder written by "
                         f"`qkv train` (it needs the run's preset)")
    saved = _read_task_json(run_dir)
    overrides = saved["overrides"] + [o for r in saved["resumes"] for o in r["overrides"]]
    return configure(saved["preset"], overrides), run_dir


def evaluate(checkpoint: str, *, split: str | None = None, beams: int = 4, limit: int | None = None) -> dict:
    """The run's preset metric for a checkpoint of a ``qkv train`` run (``split``: default test)."""
    folder = checkpoint_folder(checkpoint)
    task, run_dir = task_of_run(folder, "`qkv evaluate` scores checkpoints")
    if beams < 1:
        raise InputError(f"--beam {beams} must be a positive integer (1 = greedy)")
    if limit is not None and limit < 1:
        raise InputError(f"--limit {limit} must be a positive number of examples")
    task.check_split(split)
    model, _, folder = open_checkpoint(folder, family=task.family, command="qkv evaluate")
    task.prepare(run_dir)
    return {"checkpoint": str(folder), **task.test(model, split=split, beams=beams, limit=limit)}


__all__ = ["train", "evaluate", "task_of_run", "configure", "split_overrides", "open_checkpoint", "checkpoint_folder",
           "SAFE_ON_RESUME", "TASK_JSON", "FINAL"]
