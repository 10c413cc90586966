"""Question 30: How do you prevent overfitting? (overfitting)

Claims under test (as commonly answered): dropout, weight decay, label smoothing, early stopping
and data augmentation each reduce overfitting — the gap between training and validation loss —
and together they do so most.

Method, every number per seed: a character LM on a small slice of Tiny Shakespeare (the first 1%
of the training text, about 10k characters) is trained long enough to see its training text
about 40 times, which makes it overfit clearly. (The 5–10% slices do not fit the time budget at
a length that overfits; a first full run on 2.5% for 400 steps left a train/validation gap of
0.3 nats but a validation loss still falling at the end, so early stopping never acted.) Seven
settings share the initial weights and the batches of a seed: none; dropout (embedding and
residual); weight decay (AdamW, decoupled; qkv's default exemptions of norms, biases and
embeddings); label smoothing; early stopping (evaluate on a development slice of the validation
text every few steps, stop after a few evaluations without improvement, keep the best weights);
token-dropout augmentation (``qkv.data.collate.TokenDropout`` via the batch function's
``augment`` hook: a fraction of input bytes become UNK, labels untouched); and all of them
together. For each run: the training loss on the whole training slice and the validation loss on
held-out text disjoint from the development slice, both plain cross-entropy in eval mode; the
gap is their difference.

Reproduce: ``qkv ask 30 --size full``.
"""

from __future__ import annotations

import copy
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..config import ModelConfig
from ..data import random_lm_batch, sequential_lm_batches
from ..data.collate import TokenDropout
from ..models import build_model
from ..tasks.common import mean_token_loss
from ..train import Trainer, TrainConfig
from . import base, plots, shared
from .table import Table, fmt

NUMBER = 30
TITLE = "How do you prevent overfitting?"
KEYWORD = "overfitting"
CLAIMS = [
    "A small model on small data overfits: its validation loss ends well above its training loss.",
    "Dropout, weight decay, label smoothing, early stopping and augmentation each reduce that gap.",
    "Together they reduce it most, and improve the validation loss.",
]
ANSWER = """\
Overfitting is the model fitting what is particular to its training sample: the training loss
keeps falling while the loss on new text stops falling and rises. Each remedy attacks it by a
different mechanism. Dropout trains an ensemble of thinned networks and forbids co-adapted
features, so no single unit can memorise; weight decay pulls the weights towards zero, bounding
how sharp a function the model can express; label smoothing caps the confidence the loss
rewards, so the last nats spent on memorising exact successors are not worth taking; early
stopping simply stops at the minimum of the validation curve, which bounds the damage instead
of preventing it; augmentation (here token dropout: a fraction of input bytes replaced by UNK)
makes every pass over the same text a slightly different input, so exact contexts cannot be
memorised. The measurement on a 10k-character slice of Shakespeare shows which of these
shrink the train/validation gap beyond seed noise at common strengths, and which also lower
the validation loss itself; the per-technique numbers are in the table, and the verdict
follows only from the paired, per-seed differences to the unregularised run."""
FULL_SEEDS = 3
SMOKE_SEEDS = 1
MIN_SEEDS = 3
N_SD = 2.0
MIN_GAP = 0.1  # nats/char: the baseline must overfit at least this much to test the remedies
MIN_REDUCTION = 0.03  # nats/char: a gap reduction smaller than this does not count
DROPOUT, WEIGHT_DECAY, LABEL_SMOOTHING, TOKEN_DROPOUT, PATIENCE = 0.2, 0.1, 0.1, 0.1, 3
TECHNIQUES = ("dropout", "weight_decay", "label_smoothing", "early_stopping", "augmentation")
SETTINGS = ("none", *TECHNIQUES, "all")
UNK = 1  # qkv's unk id: never a byte (bytes are ids 4–259)
SIZES = {
    "smoke": {"train_fraction": 0.002, "d_model": 16, "n_layers": 1, "context": 16, "batch": 4, "steps": 8,
              "eval_every": 4, "dev_chars": 512, "val_chars": 512, "lr": 2e-3},
    "full": {"train_fraction": 0.01, "d_model": 64, "n_layers": 2, "context": 64, "batch": 16, "steps": 400,
             "eval_every": 20, "dev_chars": 8192, "val_chars": 16384, "lr": 2e-3},
}


def uses(setting: str, technique: str) -> bool:
    return setting in (technique, "all")


def model_config(s: dict, setting: str) -> ModelConfig:
    p = DROPOUT if uses(setting, "dropout") else 0.0
    return ModelConfig(family="lm", vocab_size=256 + shared.FIRST_BYTE, d_model=s["d_model"], n_layers=s["n_layers"],
                       n_heads=2, d_ff=4 * s["d_model"], max_len=s["context"], norm_placement="pre",
                       dropout_embed=p, dropout_residual=p)


def train_config(s: dict, setting: str, seed: int) -> TrainConfig:
    return TrainConfig(lr=s["lr"], schedule="cosine", warmup_steps=s["steps"] // 10, max_steps=s["steps"],
                       weight_decay=WEIGHT_DECAY if uses(setting, "weight_decay") else 0.0,
                       label_smoothing=LABEL_SMOOTHING if uses(setting, "label_smoothing") else 0.0,
                       precision="fp32", device="cpu", seed=seed, log_every=s["steps"] + 1)


@torch.no_grad()
def loss_on(model: nn.Module, stream: torch.Tensor, context: int) -> float:
    model.eval()
    loss = mean_token_loss(model, sequential_lm_batches(stream, context, 64))["loss"]
    model.train()
    return loss


def train_run(s: dict, setting: str, seed: int, data: dict[str, torch.Tensor]) -> dict[str, Any]:
    """One (setting, seed): train, evaluating on the dev slice every ``eval_every`` steps; with
    early stopping, stop after PATIENCE evaluations without improvement and keep the best weights."""
    torch.manual_seed(seed)
    model = build_model(model_config(s, setting))
    batches = torch.Generator().manual_seed(10_000 + seed)
    augment = (TokenDropout(p=TOKEN_DROPOUT, unk_id=UNK, generator=torch.Generator().manual_seed(20_000 + seed))
               if uses(setting, "augmentation") else None)
    early = uses(setting, "early_stopping")
    curve, best, best_state, stopped, waited = [], float("inf"), None, s["steps"], 0
    with tempfile.TemporaryDirectory() as tmp:  # the trainer's log; no checkpoint is kept
        trainer = Trainer(model, train_config(s, setting, seed), lambda epoch: [], tmp, progress=False)
        for step in range(1, s["steps"] + 1):
            trainer.train_step([random_lm_batch(data["train"], s["context"], s["batch"], batches, augment)])
            if step % s["eval_every"]:
                continue
            dev = loss_on(model, data["dev"], s["context"])
            curve.append([step, loss_on(model, data["train"], s["context"]), dev])
            if dev < best:
                best, best_state, waited = dev, copy.deepcopy(model.state_dict()), 0
            elif early:
                waited += 1
                if waited >= PATIENCE:
                    stopped = step
                    break
    if early and best_state is not None:
        model.load_state_dict(best_state)
    train, val = loss_on(model, data["train"], s["context"]), loss_on(model, data["val"], s["context"])
    return {"setting": setting, "seed": seed, "train_loss": train, "val_loss": val, "gap": val - train,
            "stopped_step": stopped, "curve": curve}


def split(s: dict) -> dict[str, torch.Tensor]:
    train = shared.shakespeare_ids("train")
    held = shared.shakespeare_ids("val")
    return {"train": train[: int(len(train) * s["train_fraction"])], "dev": held[: s["dev_chars"]],
            "val": held[s["dev_chars"]: s["dev_chars"] + s["val_chars"]]}


def run(size: str, seeds: int, out: Path) -> dict[str, Any]:
    started = time.perf_counter()
    s = SIZES[size]
    with base.one_thread():
        data = split(s)
        runs = [train_run(s, setting, seed, data) for seed in range(seeds) for setting in SETTINGS]
        results = {"runs": runs, "train_chars": len(data["train"])}
        config = {**s, "dropout": DROPOUT, "weight_decay": WEIGHT_DECAY, "label_smoothing": LABEL_SMOOTHING,
                  "token_dropout": TOKEN_DROPOUT, "patience_evals": PATIENCE, "norm_placement": "pre",
                  "schedule": "cosine, 10% warm-up", "data": "Tiny Shakespeare bytes, first slice of train",
                  "precision": "fp32"}
        names = [plot(results, out)]
        return base.finish(verdict, base.record(NUMBER, size, seeds, out, config, results, names, started), out)


def plot(results: dict[str, Any], out: Path) -> str:
    fig, (ax_curve, ax_gap) = plots.figure(2, width=5.0)
    for i, setting in enumerate(("none", "all")):
        for r in (r for r in results["runs"] if r["setting"] == setting):
            steps = [c[0] for c in r["curve"]]
            ax_curve.plot(steps, [c[1] for c in r["curve"]], color=f"C{i}", linestyle="--", alpha=0.6)
            ax_curve.plot(steps, [c[2] for c in r["curve"]], color=f"C{i}", alpha=0.6)
        ax_curve.plot([], [], color=f"C{i}", label=f"{setting}: dev (solid), train (dashed)")
    ax_curve.set(xlabel="step", ylabel="loss (nats/char)", title="no regularisation vs all of it")
    ax_curve.legend(fontsize=7)
    for i, setting in enumerate(SETTINGS):
        rows = [r for r in results["runs"] if r["setting"] == setting]
        plots.seed_points(ax_gap, i - 0.15, [r["gap"] for r in rows], "C3", width=0.1)
        plots.seed_points(ax_gap, i + 0.15, [r["val_loss"] for r in rows], "C0", width=0.1)
    ax_gap.scatter([], [], color="C3", label="val − train gap")
    ax_gap.scatter([], [], color="C0", label="validation loss")
    ax_gap.set(xticks=range(len(SETTINGS)), ylabel="nats/char", title="per setting, one point per seed")
    ax_gap.set_xticklabels([x.replace("_", "\n") for x in SETTINGS], fontsize=7)
    ax_gap.legend(fontsize=7)
    return plots.save(fig, out, "q30_overfitting.png")


def column(runs: list[dict], setting: str, key: str) -> list[float]:
    return [r[key] for r in sorted((r for r in runs if r["setting"] == setting), key=lambda r: r["seed"])]


def effects(metrics: dict[str, Any]) -> dict[str, dict]:
    """Per setting: gap reduction and validation-loss reduction vs none, paired by seed."""
    runs = metrics["results"]["runs"]
    return {x: {"gap": base.paired_effect(column(runs, "none", "gap"), column(runs, x, "gap"), N_SD, MIN_REDUCTION),
                "val": base.paired_effect(column(runs, "none", "val_loss"), column(runs, x, "val_loss"), N_SD,
                                          MIN_REDUCTION)}
            for x in (*TECHNIQUES, "all")}


def verdict(metrics: dict[str, Any]) -> tuple[str, str]:
    undecided = base.undecidable(metrics, MIN_SEEDS)
    if undecided:
        return undecided
    runs = metrics["results"]["runs"]
    gap = column(runs, "none", "gap")
    baseline = base.paired_effect(gap, [0.0] * len(gap), N_SD, MIN_GAP)
    e = effects(metrics)
    numbers = "; ".join(f"{x} gap {-v['gap']['mean']:+.3f} ± {v['gap']['sd']:.3f}, "
                        f"val loss {-v['val']['mean']:+.3f} ± {v['val']['sd']:.3f}" for x, v in e.items())
    base_text = f"without regularisation val − train = {baseline['mean']:.3f} ± {baseline['sd']:.3f} nats/char"
    if not baseline["significant"]:
        return "inconclusive", f"the baseline does not overfit beyond {MIN_GAP} nats and seed noise: {base_text}"
    held = [x for x in TECHNIQUES if e[x]["gap"]["significant"]]
    text = f"{base_text}; change vs none (nats/char): {numbers}"
    if len(held) == len(TECHNIQUES):
        return "confirmed", f"every technique shrinks the gap beyond {N_SD:g} sd and {MIN_REDUCTION} nats: {text}"
    if not held:
        return "refuted", f"no technique shrinks the gap beyond {N_SD:g} sd and {MIN_REDUCTION} nats: {text}"
    return "depends", f"only {', '.join(held)} shrink the gap beyond {N_SD:g} sd and {MIN_REDUCTION} nats: {text}"


def tables(metrics: dict[str, Any]) -> list[Table]:
    runs = metrics["results"]["runs"]
    stat = lambda xs: f"{fmt(base.mean(xs))} ± {fmt(base.std(xs))}"  # noqa: E731
    rows = [[x, stat(column(runs, x, "train_loss")), stat(column(runs, x, "val_loss")), stat(column(runs, x, "gap")),
             " ".join(fmt(g) for g in column(runs, x, "gap")), stat(column(runs, x, "stopped_step"))] for x in SETTINGS]
    return [(["setting", "train loss", "validation loss", "gap (val − train)", "gap per seed", "last step"], rows)]
