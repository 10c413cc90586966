"""Question 19: Learning-rate schedule; dropout placement; dropout at test time (学习率/Dropout)

Claims under test (as commonly answered): a post-LN Transformer needs learning-rate warm-up
(without it training diverges or ends worse), while pre-LN trains without it; dropout on the
embeddings, the sublayer outputs (residual) and the attention weights regularises; at test time
dropout is switched off and, thanks to inverted dropout (scaling kept units by 1/(1 − p) during
training), eval mode computes the expectation of the train-mode output.

Method, every number per seed, character LMs on Tiny Shakespeare bytes:
1. Warm-up: post-LN and pre-LN, 4 layers, a high peak lr, cosine decay over the run, with
   warm-up 0, 5, 20 and 100 steps of a 200-step run — the textbook 0/100/400/2000 of a
   4000-step run, scaled by 1/20 to keep the same fractions (0, 2.5%, 10%, 50%). Recorded:
   whether the loss became non-finite or ended above DIVERGED (a run that blew up and never
   recovered), and the final validation loss.
2. Dropout: pre-LN, 2 layers, no dropout vs rate 0.1 and 0.3 at one placement at a time
   (``dropout_embed``, ``dropout_residual``, ``dropout_attention`` of ``ModelConfig``); final
   validation loss and train/validation gap.
3. Test time: (a) one linear layer after dropout, y = W·dropout(x): the eval output W·x vs the
   mean of K train-mode passes, K = 1 … 1024; (b) the same for LMs of depth 1, 2 and 4 (trained
   briefly, dropout 0.3 on embedding and residual), comparing next-token probabilities. The
   relative RMS gap of an unbiased estimate falls as 1/√K; a gap that stops falling is the
   bias: eval mode is then not the expectation of train mode.

Reproduce: ``qkv ask 19 --size full``.
"""

from __future__ import annotations

import math
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..config import ModelConfig
from ..data import random_lm_batch, sequential_lm_batches
from ..errors import TrainingError
from ..models import build_model
from ..tasks.common import mean_token_loss
from ..train import Trainer, TrainConfig
from . import base, plots, shared
from .table import Table, fmt

NUMBER = 19
TITLE = "Learning-rate schedule; dropout placement; dropout at test time"
KEYWORD = "学习率/Dropout"
CLAIMS = [
    "Post-LN needs warm-up: without it training diverges or ends worse; pre-LN does not need it.",
    "Dropout (embedding, residual, attention) regularises and improves validation loss.",
    "Eval mode equals the expectation of train-mode outputs (inverted dropout).",
]
ANSWER = """\
Warm-up: Adam's first updates are taken with badly estimated second moments, and in a post-LN
Transformer the gradient reaching the layers near the output is large at initialisation
(Xiong et al., 2020): a large learning rate from step one makes big, poorly scaled updates that
can throw the model into a state it does not recover from. Warm-up grows the rate linearly
while the moment estimates settle; pre-LN keeps the residual stream un-normalised, so gradients
at init are well scaled and warm-up matters less. Dropout zeroes each unit with probability p
and scales the survivors by 1/(1 − p) (inverted dropout), so E[dropout(x)] = x: at test time
the layer is the identity. For one linear map after dropout the eval output W·x is then exactly
the expectation of the train-mode output W·dropout(x). Through a nonlinearity or a LayerNorm,
E[f(dropout(x))] ≠ f(E[dropout(x)]) (Jensen), so eval mode is only the cheap approximation of
averaging the thinned networks — the "weight scaling inference rule" of Srivastava et al.
(2014). The measurements: the warm-up grid says where each placement diverges or loses, the
dropout grid whether regularising helps on this data and run length, and the Monte-Carlo
comparison shows the gap falling as 1/√K for the linear layer but stalling at a bias for
deeper networks."""
FULL_SEEDS = 3
SMOKE_SEEDS = 1
MIN_SEEDS = 3
N_SD = 2.0
MIN_EFFECT = 0.03  # nats/char: a smaller loss difference does not matter
DIVERGED = 3.5  # nats/char: a final validation loss above this (unigram level ≈ 3.3) is a failed run
BIAS_FLOOR = 3.0  # gap at the largest K more than 3× the 1/√K prediction: a bias, not noise
PLACEMENTS = ("post", "pre")
DROPOUT_PLACES = ("embed", "residual", "attention")
RATES = (0.1, 0.3)
DEPTHS = (1, 2, 4)
PASSES = (1, 4, 16, 64, 256, 1024)
MC_P = 0.3
SIZES = {
    "smoke": {"steps": 3, "warmups": (0, 2), "d_model": 16, "warm_layers": 1, "drop_layers": 1, "context": 16,
              "batch": 4, "val_chars": 256, "lr": 3e-3, "mc_steps": 1, "passes": (1, 4, 16)},
    "full": {"steps": 200, "warmups": (0, 5, 20, 100), "d_model": 64, "warm_layers": 4, "drop_layers": 2,
             "context": 32, "batch": 16, "val_chars": 16384, "lr": 3e-3, "mc_steps": 100, "passes": PASSES},
}


def lm_config(s: dict, layers: int, placement: str = "pre", **dropout: float) -> ModelConfig:
    rates = {"dropout_embed": 0.0, "dropout_residual": 0.0, "dropout_attention": 0.0,
             **{f"dropout_{k}": v for k, v in dropout.items()}}
    return ModelConfig(family="lm", vocab_size=256 + shared.FIRST_BYTE, d_model=s["d_model"], n_layers=layers,
                       n_heads=2, d_ff=4 * s["d_model"], max_len=s["context"], norm_placement=placement, **rates)


def train(cfg: ModelConfig, s: dict, seed: int, steps: int, warmup: int, data: dict) -> tuple[nn.Module | None, float]:
    """Train with cosine decay after ``warmup``; (None, last finite loss) when the loss is not finite."""
    torch.manual_seed(seed)
    model = build_model(cfg)
    gen = torch.Generator().manual_seed(10_000 + seed)
    tcfg = TrainConfig(lr=s["lr"], schedule="cosine", warmup_steps=warmup, max_steps=steps, label_smoothing=0.0,
                       weight_decay=0.0, precision="fp32", device="cpu", seed=seed, log_every=steps + 1)
    last = math.nan
    with tempfile.TemporaryDirectory() as tmp:  # the trainer's log; no checkpoint is kept
        trainer = Trainer(model, tcfg, lambda epoch: [], tmp, progress=False)
        try:
            for _ in range(steps):
                last = trainer.train_step([random_lm_batch(data["train"], s["context"], s["batch"], gen)])["loss"]
        except TrainingError:
            return None, last
    return model.eval(), last


@torch.no_grad()
def val_loss(model: nn.Module, stream: torch.Tensor, context: int) -> float:
    return mean_token_loss(model.eval(), sequential_lm_batches(stream, context, 64))["loss"]


def warmup_cell(s: dict, placement: str, warmup: int, seed: int, data: dict) -> dict[str, Any]:
    model, train_loss = train(lm_config(s, s["warm_layers"], placement), s, seed, s["steps"], warmup, data)
    val = val_loss(model, data["val"], s["context"]) if model is not None else math.inf
    val = val if math.isfinite(val) else math.inf
    return {"placement": placement, "warmup": warmup, "seed": seed, "val_loss": val, "train_loss": train_loss,
            "diverged": not val <= DIVERGED}


def dropout_cell(s: dict, place: str, rate: float, seed: int, data: dict) -> dict[str, Any]:
    kwargs = {place: rate} if rate > 0 else {}
    model, _ = train(lm_config(s, s["drop_layers"], **kwargs), s, seed, s["steps"], s["steps"] // 10, data)
    val = val_loss(model, data["val"], s["context"]) if model is not None else math.inf
    train_eval = val_loss(model, data["train_eval"], s["context"]) if model is not None else math.inf
    return {"place": place, "rate": rate, "seed": seed, "val_loss": val, "gap": val - train_eval}


def relative_gap(estimate: torch.Tensor, exact: torch.Tensor) -> float:
    """RMS(estimate − exact) / RMS(exact)."""
    return float((estimate - exact).pow(2).mean().sqrt() / exact.pow(2).mean().sqrt())


def mc_gaps(train_pass, exact: torch.Tensor, passes: tuple[int, ...]) -> list[float]:
    """Relative gap between ``exact`` and the running mean of ``train_pass()`` after each K in ``passes``."""
    total, done, gaps = torch.zeros_like(exact), 0, []
    for k in passes:
        while done < k:
            total += train_pass()
            done += 1
        gaps.append(relative_gap(total / done, exact))
    return gaps


@torch.no_grad()
def linear_gaps(s: dict, seed: int) -> list[float]:
    """y = W·dropout(x): eval W·x vs the mean of K train passes."""
    torch.manual_seed(seed)
    x = torch.randn(64, s["d_model"])  # (N, d)
    layer, drop = nn.Linear(s["d_model"], s["d_model"]), nn.Dropout(MC_P)
    exact = layer(x)  # (N, d): dropout is the identity in eval mode
    return mc_gaps(lambda: layer(drop.train()(x)), exact, s["passes"])


def depth_gaps(s: dict, layers: int, seed: int, data: dict) -> list[float]:
    """Next-token probabilities of an LM with dropout MC_P: eval mode vs the mean of K train passes."""
    cfg = lm_config(s, layers, embed=MC_P, residual=MC_P)
    model, _ = train(cfg, s, seed, s["mc_steps"], s["mc_steps"] // 10, data)
    ids = data["val"][: 4 * s["context"]].reshape(4, s["context"])  # (4, T)
    with torch.no_grad():
        exact = model.eval()(ids).softmax(-1)  # (4, T, V)
        model.train()
        return mc_gaps(lambda: model(ids).softmax(-1), exact, s["passes"])


def run(size: str, seeds: int, out: Path) -> dict[str, Any]:
    started = time.perf_counter()
    s = SIZES[size]
    with base.one_thread():
        train_ids, held = shared.shakespeare_ids("train"), shared.shakespeare_ids("val")
        data = {"train": train_ids, "val": held[: s["val_chars"]], "train_eval": train_ids[: s["val_chars"]]}
        warm = [warmup_cell(s, p, w, seed, data) for seed in range(seeds) for p in PLACEMENTS for w in s["warmups"]]
        grid = [("none", 0.0)] + [(place, r) for place in DROPOUT_PLACES for r in RATES]
        drop = [dropout_cell(s, place, r, seed, data) for seed in range(seeds) for place, r in grid]
        mc = [{"model": "linear", "seed": seed, "gaps": linear_gaps(s, seed)} for seed in range(seeds)]
        mc += [{"model": f"depth {n}", "depth": n, "seed": seed, "gaps": depth_gaps(s, n, seed, data)}
               for seed in range(seeds) for n in DEPTHS]
        results = {"warmup": warm, "dropout": drop, "test_time": mc, "passes": list(s["passes"])}
        config = {**s, "dropout_test_p": MC_P, "schedule": "cosine after linear warm-up", "precision": "fp32",
                  "warmup_scaling": "0/100/400/2000 of 4000 steps scaled by 1/20", "data": "Tiny Shakespeare bytes"}
        names = [plot(results, out)]
        return base.finish(verdict, base.record(NUMBER, size, seeds, out, config, results, names, started), out)


def plot(results: dict[str, Any], out: Path) -> str:
    fig, (ax_w, ax_d, ax_mc) = plots.figure(3, width=4.4)
    warmups = sorted({r["warmup"] for r in results["warmup"]})
    for j, (p, color) in enumerate((("post", "C3"), ("pre", "C0"))):
        for i, w in enumerate(warmups):
            vals = [min(r["val_loss"], 6.0) for r in results["warmup"] if (r["placement"], r["warmup"]) == (p, w)]
            plots.seed_points(ax_w, i + (j - 0.5) * 0.3, vals, color, width=0.1)
        ax_w.scatter([], [], color=color, label=f"{p}-LN")
    ax_w.set(xticks=range(len(warmups)), xlabel="warm-up steps", ylabel="val loss (nats/char; 6 = diverged)",
             title="warm-up, 4 layers")
    ax_w.set_xticklabels([str(w) for w in warmups])
    ax_w.legend(fontsize=7)
    names = [("none", 0.0)] + [(p, r) for p in DROPOUT_PLACES for r in RATES]
    for i, (p, r) in enumerate(names):
        plots.seed_points(ax_d, i, [x["val_loss"] for x in results["dropout"] if (x["place"], x["rate"]) == (p, r)],
                          "C0", width=0.2)
    ax_d.set(xticks=range(len(names)), ylabel="val loss (nats/char)", title="dropout placement and rate")
    ax_d.set_xticklabels(["none" if p == "none" else f"{p}\n{r:g}" for p, r in names], fontsize=7)
    passes = results["passes"]
    for i, name in enumerate(["linear"] + [f"depth {n}" for n in DEPTHS]):
        for r in (x for x in results["test_time"] if x["model"] == name):
            ax_mc.plot(passes, r["gaps"], color=f"C{i}", marker=".", alpha=0.6)
        ax_mc.plot([], [], color=f"C{i}", label=name)
    ax_mc.set(xscale="log", yscale="log", xlabel="train-mode passes averaged (K)",
              ylabel="relative RMS gap to eval output", title=f"eval vs mean of K passes, p = {MC_P}")
    ax_mc.legend(fontsize=7)
    return plots.save(fig, out, "q19_lr_dropout.png")


# -- verdict ---------------------------------------------------------------------------------------


def warmup_effect(rows: list[dict], placement: str) -> dict[str, Any]:
    """No warm-up vs the best warm-up of this placement: divergences and paired loss difference."""
    ordered = sorted(rows, key=lambda r: r["seed"])
    pick = lambda w: [r for r in ordered if (r["placement"], r["warmup"]) == (placement, w)]  # noqa: E731
    warmups = sorted({r["warmup"] for r in rows if r["warmup"] > 0})
    capped = lambda xs: [min(r["val_loss"], 2 * DIVERGED) for r in xs]  # noqa: E731  a diverged run: 2 × DIVERGED
    best = min(warmups, key=lambda w: base.mean(capped(pick(w))))
    return {"diverged_without": sum(r["diverged"] for r in pick(0)),
            "diverged_best": sum(r["diverged"] for r in pick(best)), "best": best,
            "harm": base.paired_effect(capped(pick(0)), capped(pick(best)), N_SD, MIN_EFFECT)}


def needs_warmup(e: dict[str, Any]) -> bool:
    return e["diverged_without"] > e["diverged_best"] or e["harm"]["significant"]


def dropout_effects(rows: list[dict]) -> dict[tuple, dict]:
    ordered = sorted(rows, key=lambda x: x["seed"])
    col = lambda p, r: [x["val_loss"] for x in ordered if (x["place"], x["rate"]) == (p, r)]  # noqa: E731
    return {(p, r): base.paired_effect(col("none", 0.0), col(p, r), N_SD, MIN_EFFECT)
            for p in DROPOUT_PLACES for r in RATES}


def bias_ratio(rows: list[dict], name: str, passes: list[int]) -> float:
    """Mean over seeds of gap(K_max) / (gap(1)/√K_max): ≈ 1 for an unbiased mean, ≫ 1 for a bias."""
    k = passes[-1]
    return base.mean([r["gaps"][-1] / (r["gaps"][0] / math.sqrt(k)) for r in rows if r["model"] == name])


def verdict(metrics: dict[str, Any]) -> tuple[str, str]:
    undecided = base.undecidable(metrics, MIN_SEEDS)
    if undecided:
        return undecided
    r = metrics["results"]
    warm = {p: warmup_effect(r["warmup"], p) for p in PLACEMENTS}
    warm_ok = needs_warmup(warm["post"]) and not needs_warmup(warm["pre"])
    drops = dropout_effects(r["dropout"])
    helps = [f"{p} {q:g}" for (p, q), e in drops.items() if e["significant"]]
    models = ["linear"] + [f"depth {n}" for n in DEPTHS]
    ratios = {name: bias_ratio(r["test_time"], name, r["passes"]) for name in models}
    exact_linear = ratios["linear"] < BIAS_FLOOR
    test_ok = exact_linear and all(v < BIAS_FLOOR for v in ratios.values())
    warm_text = "; ".join(f"{p}-LN diverged {w['diverged_without']}/{metrics['seeds']} without warm-up, "
                          f"{w['diverged_best']} with {w['best']} steps, loss no-warm-up − best "
                          f"{w['harm']['mean']:+.3f} ± {w['harm']['sd']:.3f}" for p, w in warm.items())
    drop_text = ", ".join(f"{p} {q:g}: {e['mean']:+.3f} ± {e['sd']:.3f}" for (p, q), e in drops.items())
    mc_text = ", ".join(f"{k} {v:.1f}" for k, v in ratios.items())
    numbers = (f"{warm_text}. Val-loss gain from dropout vs none (nats/char): {drop_text}. Gap at K = "
               f"{r['passes'][-1]} over the 1/√K prediction: {mc_text}")
    held = [warm_ok, len(helps) > 0, test_ok]
    if all(held):
        return "confirmed", f"all three claims hold: {numbers}"
    if not any(held) and not exact_linear:
        return "refuted", f"no claim holds: {numbers}"
    parts = [f"post-LN needs warm-up and pre-LN does not: {'yes' if warm_ok else 'no'}",
             f"dropout improves val loss: {', '.join(helps) or 'nowhere'}",
             f"eval = expectation: exact for one linear layer {'yes' if exact_linear else 'no'}, "
             f"through depth {'yes' if test_ok else 'no (a bias)'}"]
    return "depends", f"{'; '.join(parts)}. {numbers}"


def tables(metrics: dict[str, Any]) -> list[Table]:
    r = metrics["results"]
    stat = lambda xs: (f"{fmt(base.mean(xs))} ± {fmt(base.std(xs))}"  # noqa: E731
                       if all(map(math.isfinite, xs)) else "inf")
    warm_rows = []
    for p in PLACEMENTS:
        for w in sorted({x["warmup"] for x in r["warmup"]}):
            rows = sorted((x for x in r["warmup"] if (x["placement"], x["warmup"]) == (p, w)), key=lambda x: x["seed"])
            warm_rows.append([f"{p}-LN", str(w), " ".join(fmt(x["val_loss"]) for x in rows),
                              str(sum(x["diverged"] for x in rows))])
    first = (["placement", "warm-up steps", "val loss per seed", "diverged runs"], warm_rows)
    drop_rows = []
    for p, q in [("none", 0.0)] + [(p, q) for p in DROPOUT_PLACES for q in RATES]:
        rows = [x for x in r["dropout"] if (x["place"], x["rate"]) == (p, q)]
        drop_rows.append([p, fmt(q), stat([x["val_loss"] for x in rows]), stat([x["gap"] for x in rows])])
    second = (["dropout at", "rate", "val loss", "val − train gap"], drop_rows)
    mc_rows = []
    for name in ["linear"] + [f"depth {n}" for n in DEPTHS]:
        rows = [x for x in r["test_time"] if x["model"] == name]
        mc_rows.append([name, *(fmt(base.mean([x["gaps"][i] for x in rows])) for i in range(len(r["passes"]))),
                        fmt(bias_ratio(r["test_time"], name, r["passes"]))])
    third = (["model", *(f"gap K={k}" for k in r["passes"]), "gap(K max) / (gap(1)/√K max)"], mc_rows)
    return [first, second, third]
