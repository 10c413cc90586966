"""Trained models several questions measure, trained once and cached, then reused.

The shared language model is a character-level Transformer LM on Tiny Shakespeare (bytes, so
no tokenizer to train), one per (size, seed). The first question that asks trains it with
qkv's Trainer and saves it under the cache folder; every later ask loads the saved weights.
The shared translator is a small Multi30k German→English model trained with the
``translate-de-en`` recipe (Noam warm-up, label smoothing 0.1, weight decay, clipping, the last
five checkpoints averaged) at a lab size, one per (size, seed), with its test BLEU recorded.
The cache is ``$QKV_LAB_CACHE`` if set, else ``runs/lab/shared`` — weights never go into the
committed ``docs/lab`` results.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import os
import shutil
import tempfile
from pathlib import Path

import torch
from torch import Tensor, nn

from ..checkpoint import latest_checkpoint, load
from ..config import ModelConfig
from ..data import load_shakespeare, random_lm_batch, sequential_lm_batches
from ..models import build_model
from ..tasks import TranslationTask, get_task
from ..tasks.common import TOKENIZER_FILE, mean_token_loss
from ..tokenize import fast as fast_tokenize
from ..train import Trainer, TrainConfig

DEFAULT_CACHE = Path("runs/lab/shared")
FIRST_BYTE = 4  # ids 0–3 are pad, unk, bos, eos; byte b is id b + 4
LM_SIZES = {
    "smoke": {"d_model": 32, "n_layers": 1, "n_heads": 2, "d_ff": 64, "context": 32, "steps": 20, "batch": 8,
              "val_chars": 4096},
    "full": {"d_model": 128, "n_layers": 4, "n_heads": 4, "d_ff": 512, "context": 128, "steps": 800, "batch": 16,
             "val_chars": None},  # None: all of the validation text
}


# The translator: small enough to train in about two minutes on one thread (full) or a second
# (smoke). Steps, warm-up and checkpoint spacing are the recipe's scaled to the run's length.
TRANSLATOR_SIZES = {
    "smoke": {"vocab_size": 300, "d_model": 32, "n_layers": 1, "n_heads": 2, "d_ff": 64, "steps": 6,
              "max_tokens": 400, "warmup": 2, "lr": 2e-3, "train_limit": 1000, "test_limit": 8, "average_last": 2,
              "save_every": 3},
    "full": {"vocab_size": 2000, "d_model": 128, "n_layers": 2, "n_heads": 4, "d_ff": 512, "steps": 600,
             "max_tokens": 750, "warmup": 100, "lr": 2e-3, "train_limit": None, "test_limit": None},
}
AVERAGE_LAST = 5  # checkpoints averaged at the end (unless a size says), spread over the last ~40% of the run


def cache_root() -> Path:
    return Path(os.environ.get("QKV_LAB_CACHE", DEFAULT_CACHE))


def shakespeare_ids(split: str) -> Tensor:
    """Tiny Shakespeare as byte ids ``(N,)`` (checksummed by the data loader)."""
    data = load_shakespeare(split).encode("utf-8")
    return torch.frombuffer(bytearray(data), dtype=torch.uint8).long() + FIRST_BYTE


def lm_config(size: str) -> ModelConfig:
    s = LM_SIZES[size]
    return ModelConfig(family="lm", vocab_size=256 + FIRST_BYTE, d_model=s["d_model"], n_layers=s["n_layers"],
                       n_heads=s["n_heads"], d_ff=s["d_ff"], max_len=s["context"], norm_placement="pre",
                       dropout_embed=0.0, dropout_residual=0.0)


def train_lm(size: str, seed: int, folder: Path) -> None:
    """Train the shared LM into ``folder`` (a checkpoint plus ``lm.json`` with its held-out loss)."""
    s = LM_SIZES[size]
    stream = shakespeare_ids("train")
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = build_model(lm_config(size))
    tcfg = TrainConfig(lr=1e-3, schedule="cosine", warmup_steps=s["steps"] // 10, max_steps=s["steps"],
                       label_smoothing=0.0, precision="fp32", device="cpu", seed=seed, log_every=s["steps"] + 1,
                       weight_decay=0.0, keep_last=1)
    batches = lambda epoch: [random_lm_batch(stream, s["context"], s["batch"], gen)  # noqa: E731
                             for _ in range(s["steps"])]
    Trainer(model, tcfg, batches, folder, progress=False).fit()
    held_out = shakespeare_ids("val")[: s["val_chars"]]
    val = mean_token_loss(model.eval(), sequential_lm_batches(held_out, s["context"], 64))
    record = {"size": size, "seed": seed, "steps": s["steps"], "val_chars": len(held_out), **val}
    (folder / "lm.json").write_text(json.dumps(record) + "\n")


def trained_lm(size: str, seed: int) -> tuple[nn.Module, dict]:
    """The shared Shakespeare LM for (size, seed) and its record; trained on first use only."""
    folder = cache_root() / f"shakespeare-lm-{size}-seed{seed}"
    if not (folder / "lm.json").is_file():
        folder.parent.mkdir(parents=True, exist_ok=True)
        # train into a temporary folder and rename, so an interrupted run leaves no half cache
        with tempfile.TemporaryDirectory(dir=folder.parent) as tmp:
            train_lm(size, seed, Path(tmp))
            if not (folder / "lm.json").is_file():
                Path(tmp).rename(folder)
                Path(tmp).mkdir()  # TemporaryDirectory removes what it created
    return load(latest_checkpoint(folder)), json.loads((folder / "lm.json").read_text())


def translation_task(s: dict, seed: int) -> TranslationTask:
    """The ``translate-de-en`` task at the lab size ``s`` (see TRANSLATOR_SIZES), prepared: its
    joint BPE is trained once per (vocabulary, training subset) into the cache, then loaded."""
    task = get_task("translate-de-en")
    model = task.model.replace(d_model=s["d_model"], n_layers=s["n_layers"], n_heads=s["n_heads"], d_ff=s["d_ff"])
    average = s.get("average_last", AVERAGE_LAST)
    save_every = s.get("save_every") or max(1, (2 * s["steps"]) // (5 * average))  # last saves: last ~40%
    train = task.train.replace(lr=s["lr"], warmup_steps=s["warmup"], max_steps=s["steps"], max_epochs=None,
                               save_every=save_every, keep_last=average, average_last=average,
                               seed=seed, device="cpu", log_every=s["steps"] + 1)
    task = dataclasses.replace(task, model=model, train=train, vocab_size=s["vocab_size"],
                               max_tokens=s["max_tokens"], train_limit=s["train_limit"], test_limit=s["test_limit"])
    task._data = {}  # dataclasses.replace shares the default's dict; each task encodes its own data
    subset = s["train_limit"] or "all"
    task.prepare(cache_root() / f"multi30k-bpe{s['vocab_size']}-{subset}")
    return task


def train_translator(size: str, seed: int, folder: Path) -> None:
    """Train the shared translator into ``folder``: checkpoints, ``averaged/``, the tokenizer and
    ``translator.json`` with its held-out loss and test BLEU (beam 4, α 0.6, sacreBLEU)."""
    s = TRANSLATOR_SIZES[size]
    task = translation_task(s, seed)
    torch.manual_seed(seed)
    model = build_model(task.model_config())
    result = Trainer(model, task.train, task.batches(), folder, progress=False).fit()
    shutil.copy(_tokenizer_file(s), folder / TOKENIZER_FILE)
    final = load(result.averaged).eval()
    test = task.test(final, beams=4)
    record = {"size": size, "seed": seed, "steps": result.step, "val_loss": task.evaluate(final)["loss"],
              **{k: test[k] for k in ("bleu", "bleu_cased", "chrf", "n", "beams")}, "examples": test["examples"][:2]}
    (folder / "translator.json").write_text(json.dumps(record, ensure_ascii=False) + "\n")


def _tokenizer_file(s: dict) -> Path:
    return cache_root() / f"multi30k-bpe{s['vocab_size']}-{s['train_limit'] or 'all'}" / TOKENIZER_FILE


def trained_translator(size: str, seed: int) -> tuple[nn.Module, object, dict]:
    """The shared Multi30k de→en translator for (size, seed): (model, tokenizer, record);
    trained on first use only, like :func:`trained_lm`."""
    folder = translator_folder(size, seed)
    record = json.loads((folder / "translator.json").read_text())
    return load(folder / "averaged").eval(), fast_tokenize.load(folder / TOKENIZER_FILE), record


def translator_folder(size: str, seed: int) -> Path:
    """The folder of the shared translator for (size, seed), trained into it on first use: its
    checkpoint ``averaged/`` (a folder ``qkv translate`` and ``qkv serve`` take), the tokenizer
    beside it and the record ``translator.json``."""
    folder = cache_root() / f"multi30k-translator-{size}-seed{seed}"
    if not (folder / "translator.json").is_file():
        folder.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=folder.parent) as tmp:
            train_translator(size, seed, Path(tmp))
            if not (folder / "translator.json").is_file():
                Path(tmp).rename(folder)
                Path(tmp).mkdir()
    return folder


def train_steps(model: nn.Module, tcfg: TrainConfig, batches) -> list[float]:
    """One optimiser step of ``model`` per batch of ``batches`` (an iterable), by qkv's Trainer
    with ``tcfg``; the loss of each. The trainer's log goes to a temporary folder, no checkpoint."""
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(model, tcfg, lambda epoch: [], tmp, progress=False)
        return [trainer.train_step([batch])["loss"] for batch in batches]


def trained_by_preset(preset: str, overrides: list[str], name: str, max_minutes: float | None = None,
                      threads: int | None = None) -> tuple[nn.Module, object, dict]:
    """(model, tokenizer, results.json) of ``qkv train preset overrides [--max-minutes M]
    [--threads N]``, cached as ``name``: trained on first use (quietly, into a temporary folder
    renamed when done), then loaded."""
    from ..tasks.run import open_checkpoint, train

    folder = cache_root() / name
    if not (folder / "final").is_dir():
        folder.parent.mkdir(parents=True, exist_ok=True)
        quiet = contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO())
        with tempfile.TemporaryDirectory(dir=folder.parent) as tmp, quiet[0], quiet[1]:  # the trainer's log
            run = Path(tmp) / "run"
            train(preset, overrides, out=str(run), max_minutes=max_minutes, threads=threads)
            run.rename(folder)
    model, tok, _ = open_checkpoint(folder)
    results = json.loads((folder / "results.json").read_text()) if (folder / "results.json").is_file() else {}
    return model.eval(), tok, results


__all__ = ["trained_lm", "trained_by_preset", "train_steps", "lm_config", "shakespeare_ids", "cache_root", "LM_SIZES",
           "TRANSLATOR_SIZES", "translation_task", "trained_translator", "translator_folder"]
