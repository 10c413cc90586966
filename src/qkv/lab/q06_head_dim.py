"""Question 6: why reduce each head's dimension? (降维)

Claims under test (as commonly answered): giving each of h heads d_head = d_model/h keeps the
cost of attention equal to one full-width head (d_head = d_model) while keeping h separate
subspaces; full-width heads (h heads of d_model each) would cost h× more for no quality gain.

Method. Three one-layer causal LMs with d_model 64 and sinusoidal positions: one head of 64
(the single full-width head), 4 heads of 16 (reduced, qkv's default) and 4 heads of 64 (full
width, ``d_head`` set explicitly).
- Cost on paper: parameters counted in the model and from the formula; forward FLOPs of the
  matrix products from the formula, checked two ways: the linear layers' FLOPs against
  2 · tokens · (their weight count), and the total against torch's FlopCounterMode on the
  written-out attention path (whose matmuls it sees). A training step is 3 × the forward.
- Cost measured: training-step time on one thread, at the task's shape (from the training runs,
  the three models interleaved within each seed) and at a wider shape (d_model 256, 64 tokens,
  the models interleaved within each round), as ratios to the reduced model.
- Quality: a task one head cannot do in one softmax: over 4 symbols, predict the pair
  (x_{t−1}, x_{t−3}) as one of 16 classes. Weighting both positions alike mixes their values and
  loses which symbol stood where, so one head needs unequal weights while two heads can each
  fetch one. Held-out loss and accuracy at equal steps — at several points of the same run, so
  both "learns faster" and "ends better" are seen — 5 seeds, every model of a seed on the same
  batches. Weights start with std d_model^-½ (qkv's 0.02 leaves all three on a plateau here).

Reproduce: ``qkv ask 6 --size full``.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode

from ..config import ModelConfig
from ..models import build_model
from ..models.common import n_params
from ..nn.attention import MultiHeadAttention
from ..train import IGNORE_INDEX, Trainer, TrainConfig, smoothed_cross_entropy
from . import base, plots, probe
from .table import Table, fmt

NUMBER = 6
TITLE = "Why reduce each head's dimension?"
KEYWORD = "降维"
CLAIMS = [
    "h heads of width d_model/h cost the same as one head of width d_model (parameters, FLOPs) "
    "while keeping h subspaces.",
    "Full-width heads (h heads of width d_model) would cost h× more for no quality gain.",
]
ANSWER = """\
A multi-head layer projects x (width d) to h queries, keys and values of width d_h each, then
back with W_O. Per layer and token, with T keys:

    parameters  = 4 · d · (h · d_h)            (Wq, Wk, Wv, W_O; plus biases)
    FLOPs       = 8 · d · (h · d_h)            (the four projections)
                + 4 · T · (h · d_h)            (q·k scores and the weighted sum of values)

Everything depends on h and d_h only through h · d_h. With d_h = d/h, h · d_h = d: exactly the
parameters and FLOPs of one head of width d, so splitting is free on paper, and it buys h
separate softmaxes, each able to attend somewhere else. With d_h = d, h · d_h = h·d: the
attention layer costs h× as much, and its output W_O maps h·d back to d. The whole model does
not grow h×: the feed-forward block (16 · d · d_ff FLOPs per token with d_ff = 2d here), the
embeddings and the output layer stay as they are, so a training step costs less than h× more,
and measured time less again where small matrices leave the processor waiting on overheads.

The measurements agree on cost: parameters and FLOPs of 4 heads × 16 and 1 head × 64 are
identical (counted and by formula), one head's step time is 0.98× the reduced model's at the
wide shape (0.88× at the tiny task shape, where fewer, larger matrices help), and
4 heads × 64 costs ×4.00 in attention FLOPs but ×2.5 per training step on paper, ×2.4 measured
at a 256-wide shape and only ×1.6 at the task's tiny shape, where fixed per-operation costs
dominate. On quality at equal steps, full-width heads were ahead on average at every checkpoint
and in every seed at step 100 (0.10 ± 0.07 nats), a lead that faded to nothing once the
models had learned the task, and never beyond two standard deviations of seed noise: more
parameters per head, a bilinear form Wq_iᵀWk_i of rank d rather than d/h, buy a little speed
early, not a better model. The single full-width head, at the reduced model's exact cost, is
the one that lags (it trails in every seed at the end), because one softmax cannot fetch two
positions without mixing them. So reducing d_h is the way to get several attention patterns for
the price of one, and widening the heads back is cost without a lasting return."""
FULL_SEEDS = 5
SMOKE_SEEDS = 1
N_SD = 2.0  # an effect must exceed 2 standard deviations of the per-seed (per-round) differences
MIN_LOSS_GAP = 0.05  # nats/token: smaller quality differences do not matter even when consistent
MIN_TIME_GAP = 0.1  # a step-time ratio must exceed 1.1 to count as slower
SAME_COST_TOL = 1.3  # reduced heads within 1.3× one head's step time still "cost the same"
MIN_SEEDS = 3  # fewer seeds cannot estimate the noise
TASK = {"length": 16, "symbols": 4, "lags": [1, 3], "batch": 32, "lr": 3e-3, "d_model": 64, "n_heads": 4,
        "d_ff": 128}
WIDE = {"d_model": 256, "d_ff": 512, "length": 64, "batch": 8}  # a shape where matmuls dominate a step
ARMS = ("one_head", "reduced", "full_width")  # (heads, d_head) from the model width, see heads()
SIZES = {
    "smoke": {"steps": 8, "checkpoints": [4, 8], "rounds": 2, "timed_steps": 1},
    "full": {"steps": 800, "checkpoints": [100, 200, 400, 800], "rounds": 5, "timed_steps": 3},
}


def heads(arm: str, d_model: int) -> tuple[int, int]:
    """(n_heads, d_head) of an arm at width d_model."""
    h = TASK["n_heads"]
    return {"one_head": (1, d_model), "reduced": (h, d_model // h), "full_width": (h, d_model)}[arm]


def arm_label(arm: str, d_model: int = TASK["d_model"]) -> str:
    h, d_head = heads(arm, d_model)
    return f"{h} head{'s' if h > 1 else ''} × {d_head}"


def model_config(arm: str, d_model: int = TASK["d_model"], d_ff: int = TASK["d_ff"],
                 length: int = TASK["length"]) -> ModelConfig:
    h, d_head = heads(arm, d_model)
    vocab_symbols = TASK["symbols"] + TASK["symbols"] ** 2  # inputs, then one id per pair
    return probe.copy_model_config(vocab_symbols, length, max_len=length, n_layers=1, d_model=d_model, d_ff=d_ff,
                                   n_heads=h, d_head=d_head, init_std=d_model**-0.5)




# -- cost on paper --------------------------------------------------------------------------------


def analytic_params(cfg: ModelConfig) -> dict[str, int]:
    """Parameters of the one-layer post-norm LM, from the formula (embedding tied to the output)."""
    d, inner = cfg.d_model, cfg.n_heads * cfg.head_dim
    attention = 4 * d * inner + 3 * inner + d  # Wq, Wk, Wv, W_O and their biases
    ffn = 2 * d * cfg.d_ff + cfg.d_ff + d
    norms = 2 * 2 * d  # two LayerNorms, gain and bias
    return {"attention": attention, "total": cfg.vocab_size * d + attention + ffn + norms}


def analytic_flops(cfg: ModelConfig, batch: int, length: int) -> dict[str, int]:
    """Forward FLOPs of the matrix products (multiply + add = 2) for ``batch`` sequences of ``length``."""
    tokens, d, inner = batch * length, cfg.d_model, cfg.n_heads * cfg.head_dim
    projections = 2 * tokens * 4 * d * inner
    scores = 2 * 2 * batch * length * length * inner  # q·k for every (query, key), then p·v
    ffn, output = 2 * tokens * 2 * d * cfg.d_ff, 2 * tokens * d * cfg.vocab_size
    return {"attention": projections + scores, "linear": projections + ffn + output,
            "total": projections + scores + ffn + output}


def counted_flops(model: nn.Module, batch: int, length: int) -> int:
    """Forward FLOPs FlopCounterMode sees, on the written-out attention path (fused SDPA hides its matmuls)."""
    attentions = [m for m in model.modules() if isinstance(m, MultiHeadAttention)]
    for attn in attentions:
        attn.capture = True
    ids = torch.full((batch, length), probe.FIRST_SYMBOL)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(ids)
    for attn in attentions:
        attn.capture, attn.weights = False, None
    return int(counter.get_total_flops())


def cost(arm: str) -> dict[str, Any]:
    """Parameters and FLOPs of one arm at the task's shape, each from the formula and counted."""
    cfg = model_config(arm)
    model = build_model(cfg)
    weights = sum(p.numel() for p in {id(p): p for p in model.parameters()}.values() if p.dim() == 2)
    flops = analytic_flops(cfg, TASK["batch"], TASK["length"])
    tokens = TASK["batch"] * TASK["length"]
    return {"arm": arm, "params": n_params(model), "params_formula": analytic_params(cfg)["total"],
            "attention_params": analytic_params(cfg)["attention"], "flops_formula": flops,
            "linear_flops_from_params": 2 * tokens * weights,
            "flops_counted": counted_flops(model, TASK["batch"], TASK["length"]),
            "train_step_flops": 3 * flops["total"]}


# -- quality and time at the task's shape --------------------------------------------------------


def pair_batch(g: torch.Generator, batch: int) -> dict[str, Tensor]:
    """Symbols ``(B, L)``; the label at t ≥ 3 is the pair (x_{t−1}, x_{t−3}) as one id, −100 before."""
    S, (near, far), L = TASK["symbols"], TASK["lags"], TASK["length"]
    x = torch.randint(0, S, (batch, L), generator=g)  # (B, L) symbol indices
    labels = torch.full_like(x, IGNORE_INDEX)
    pair = x[:, far - near : L - near] * S + x[:, : L - far]  # (B, L − far): x_{t−1}·S + x_{t−3}
    labels[:, far:] = probe.FIRST_SYMBOL + S + pair
    return {"input_ids": x + probe.FIRST_SYMBOL, "labels": labels}


@torch.no_grad()
def evaluate(model: nn.Module) -> dict[str, float]:
    """Held-out loss (nats/token) and accuracy on the same 512 sequences for every model."""
    model.eval()
    batch = pair_batch(torch.Generator().manual_seed(999), 512)
    logits = model.forward_batch(batch)  # (B, L, V)
    summed, count = smoothed_cross_entropy(logits, batch["labels"])
    keep = batch["labels"] != IGNORE_INDEX
    accuracy = float((logits.argmax(-1)[keep] == batch["labels"][keep]).double().mean())
    model.train()
    return {"loss": float(summed) / int(count), "accuracy": accuracy}


def train_arm(arm: str, seed: int, steps: int, checkpoints: list[int]) -> dict[str, Any]:
    """Train one arm with qkv's Trainer; held-out quality at each checkpoint, and the time per step."""
    torch.manual_seed(seed)
    model = build_model(model_config(arm))
    tcfg = TrainConfig(lr=TASK["lr"], schedule="cosine", warmup_steps=steps // 10, max_steps=steps,
                       label_smoothing=0.0, precision="fp32", device="cpu", seed=seed, log_every=steps + 1,
                       weight_decay=0.0)
    g = torch.Generator().manual_seed(10_000 + seed)  # the same batches for every arm of a seed
    quality, step_s = [], 0.0
    with tempfile.TemporaryDirectory() as tmp:  # the trainer's log; no checkpoint is written
        trainer = Trainer(model, tcfg, lambda epoch: [], tmp, progress=False)
        for step in range(1, steps + 1):
            batch = pair_batch(g, TASK["batch"])
            started = time.perf_counter()
            trainer.train_step([batch])
            step_s += time.perf_counter() - started
            if step in checkpoints:
                quality.append({"step": step, **evaluate(model)})
    return {"arm": arm, "seed": seed, "quality": quality, "step_s": step_s / steps}


def wide_times(rounds: int, timed_steps: int) -> list[dict[str, Any]]:
    """Training-step seconds of each arm at the wide shape, the arms interleaved within each round."""
    g = torch.Generator().manual_seed(0)
    trainers, out = {}, []
    with tempfile.TemporaryDirectory() as tmp:
        for arm in ARMS:
            torch.manual_seed(0)
            model = build_model(model_config(arm, WIDE["d_model"], WIDE["d_ff"], WIDE["length"]))
            tcfg = TrainConfig(lr=1e-4, schedule="constant", warmup_steps=0, label_smoothing=0.0, precision="fp32",
                               device="cpu", seed=0, log_every=10**9, weight_decay=0.0)
            trainers[arm] = Trainer(model, tcfg, lambda epoch: [], f"{tmp}/{arm}", progress=False)
        batch = wide_batch(g)
        for trainer in trainers.values():  # one untimed step each: first-call allocations
            trainer.train_step([batch])
        for r in range(rounds):
            times = {}
            for arm, trainer in trainers.items():
                started = time.perf_counter()
                for _ in range(timed_steps):
                    trainer.train_step([batch])
                times[arm] = (time.perf_counter() - started) / timed_steps
            out.append({"round": r, **times})
    return out


def wide_batch(g: torch.Generator) -> dict[str, Tensor]:
    ids = torch.randint(probe.FIRST_SYMBOL, probe.FIRST_SYMBOL + TASK["symbols"], (WIDE["batch"], WIDE["length"]),
                        generator=g)
    return {"input_ids": ids, "labels": ids.clone()}


def run(size: str, seeds: int, out: Path) -> dict[str, Any]:
    started = time.perf_counter()
    s = SIZES[size]
    with base.one_thread():
        costs = [cost(arm) for arm in ARMS]
        training = [train_arm(arm, seed, s["steps"], s["checkpoints"]) for seed in range(seeds) for arm in ARMS]
        wide = wide_times(s["rounds"], s["timed_steps"])
    wide_flops = {arm: 3 * analytic_flops(model_config(arm, WIDE["d_model"], WIDE["d_ff"], WIDE["length"]),
                                          WIDE["batch"], WIDE["length"])["total"] for arm in ARMS}
    results = {"cost": costs, "training": training, "wide_times": wide, "wide_train_step_flops": wide_flops}
    config = {**s, "task": "pair (x_{t-1}, x_{t-3})", **TASK, "wide": WIDE, "n_layers": 1, "position": "sinusoidal",
              "arms": {arm: heads(arm, TASK["d_model"]) for arm in ARMS}, "init_std": TASK["d_model"] ** -0.5,
              "schedule": "cosine, 10% warm-up", "precision": "fp32", "torch_threads": 1}
    names = [plot_cost(results, out), plot_quality(results, out)]
    return base.finish(verdict, base.record(NUMBER, size, seeds, out, config, results, names, started), out)


# -- plots ------------------------------------------------------------------------------------------

COLORS = {"one_head": "C2", "reduced": "C0", "full_width": "C3"}


def plot_cost(results: dict[str, Any], out: Path) -> str:
    fig, (ax_paper, ax_time) = plots.figure(2, width=5.2)
    costs = {c["arm"]: c for c in results["cost"]}
    ref = costs["reduced"]
    kinds = (("params", lambda c: c["params"], "parameters"),
             ("attention", lambda c: c["flops_formula"]["attention"], "attention FLOPs"),
             ("total", lambda c: c["flops_formula"]["total"], "model FLOPs"))
    for i, arm in enumerate(ARMS):
        for j, (_, value, label) in enumerate(kinds):
            ax_paper.bar(i + (j - 1) * 0.27, value(costs[arm]) / value(ref), width=0.25, color=f"C{j + 4}",
                         label=label if i == 0 else None)
        ax_paper.scatter([i + 0.27], [costs[arm]["flops_counted"] / ref["flops_counted"]], color="k", marker="x",
                         zorder=3, label="model FLOPs, counted" if i == 0 else None)
    ax_paper.set(ylabel="relative to 4 heads × 16 (×)", title="cost on paper, task shape")
    ratios, flops = time_ratios(results), results["wide_train_step_flops"]
    for i, arm in enumerate(ARMS):
        plots.seed_points(ax_time, i - 0.17, ratios["task"][arm], COLORS[arm], width=0.15)
        ax_time.scatter([i + 0.17] * len(ratios["wide"][arm]), ratios["wide"][arm], marker="D", s=14, color=COLORS[arm])
        ax_time.hlines(flops[arm] / flops["reduced"], i - 0.35, i + 0.35, color="k", linestyle=":",
                       label="FLOP ratio, wide shape" if i == 0 else None)
    ax_time.scatter([], [], color="grey", s=14, label="task shape, per seed (bar: mean)")
    ax_time.scatter([], [], color="grey", marker="D", s=14, label="wide shape, per round")
    ax_time.set(ylabel="training-step time / 4 heads × 16 (×)", title="measured, one thread")
    for ax in (ax_paper, ax_time):
        ax.set_xticks(range(len(ARMS)))
        ax.set_xticklabels([arm_label(a) for a in ARMS])
        ax.legend(fontsize=7)
    return plots.save(fig, out, "q06_cost.png")


def plot_quality(results: dict[str, Any], out: Path) -> str:
    fig, (ax_loss, ax_acc) = plots.figure(2, width=5.0)
    for r in results["training"]:
        steps = [q["step"] for q in r["quality"]]
        label = arm_label(r["arm"]) if r["seed"] == 0 else None
        ax_loss.plot(steps, [max(q["loss"], 1e-6) for q in r["quality"]], "o-", color=COLORS[r["arm"]], alpha=0.5,
                     markersize=3, linewidth=1, label=label)
        ax_acc.plot(steps, [q["accuracy"] for q in r["quality"]], "o-", color=COLORS[r["arm"]], alpha=0.5,
                    markersize=3, linewidth=1, label=label)
    ax_loss.set(yscale="log", xlabel="training step", ylabel="held-out loss (nats/token, log)",
                title="pair task: one line per seed")
    ax_acc.axhline(1 / TASK["symbols"] ** 2, color="grey", linestyle=":", label=f"chance (1/{TASK['symbols'] ** 2})")
    ax_acc.set(xlabel="training step", ylabel="held-out accuracy", title="pair task: one line per seed")
    for ax in (ax_loss, ax_acc):
        ax.legend(fontsize=7)
    return plots.save(fig, out, "q06_quality.png")


# -- verdict and tables -----------------------------------------------------------------------------


def time_ratios(results: dict[str, Any]) -> dict[str, dict[str, list[float]]]:
    """Step time of each arm over the reduced arm's: per seed (task shape) and per round (wide shape)."""
    by_seed: dict[int, dict[str, float]] = {}
    for r in results["training"]:
        by_seed.setdefault(r["seed"], {})[r["arm"]] = r["step_s"]
    task = {arm: [t[arm] / t["reduced"] for _, t in sorted(by_seed.items())] for arm in ARMS}
    wide = {arm: [t[arm] / t["reduced"] for t in results["wide_times"]] for arm in ARMS}
    return {"task": task, "wide": wide}


def losses(results: dict[str, Any], arm: str, step: int) -> list[float]:
    runs = sorted((r for r in results["training"] if r["arm"] == arm), key=lambda r: r["seed"])
    return [next(q["loss"] for q in r["quality"] if q["step"] == step) for r in runs]


def quality_effects(results: dict[str, Any]) -> dict[int, dict[str, dict]]:
    """Per checkpoint, paired by seed: full-width's gain over reduced, and reduced's gain over one head."""
    steps = [q["step"] for q in results["training"][0]["quality"]]
    return {step: {"full_gain": base.paired_effect(losses(results, "reduced", step),
                                                   losses(results, "full_width", step), N_SD, MIN_LOSS_GAP),
                   "split_gain": base.paired_effect(losses(results, "one_head", step),
                                                    losses(results, "reduced", step), N_SD, MIN_LOSS_GAP),
                   "one_head_better": base.paired_effect(losses(results, "reduced", step),
                                                         losses(results, "one_head", step), N_SD, MIN_LOSS_GAP)}
            for step in steps}


def cost_summary(results: dict[str, Any]) -> dict[str, Any]:
    c = {x["arm"]: x for x in results["cost"]}
    wide = time_ratios(results)["wide"]
    flops = results["wide_train_step_flops"]
    return {"h": TASK["n_heads"], "attention_ratio": c["full_width"]["flops_formula"]["attention"]
            / c["reduced"]["flops_formula"]["attention"],
            "model_flop_ratio": flops["full_width"] / flops["reduced"],
            "slower": base.paired_effect(wide["full_width"], [1.0] * len(wide["full_width"]), N_SD, MIN_TIME_GAP),
            "one_head_time": base.mean(wide["one_head"]),
            "same_params": c["one_head"]["params"] == c["reduced"]["params"],
            "checks_pass": all(x["params"] == x["params_formula"] and x["flops_counted"] == x["flops_formula"]["total"]
                               and x["linear_flops_from_params"] == x["flops_formula"]["linear"] for x in c.values())}


def verdict(metrics: dict[str, Any]) -> tuple[str, str]:
    undecided = base.undecidable(metrics, MIN_SEEDS)
    if undecided:
        return undecided
    r = metrics["results"]
    c, q = cost_summary(r), quality_effects(r)
    last = max(q)
    gain = lambda step: f"{q[step]['full_gain']['mean']:+.3f} ± {q[step]['full_gain']['sd']:.3f}"  # noqa: E731
    cost_text = (f"full-width heads cost ×{c['attention_ratio']:.2f} in attention FLOPs (h = {c['h']}), "
                 f"×{c['model_flop_ratio']:.2f} per wide training step on paper and ×{c['slower']['mean'] + 1:.2f} "
                 f"± {c['slower']['sd']:.2f} measured; one head of full width takes ×{c['one_head_time']:.2f} the "
                 f"reduced model's time at {'equal' if c['same_params'] else 'unequal'} parameters")
    if not c["checks_pass"]:
        cost_text += " (the FLOP or parameter formula disagrees with the count: see the cost table)"
    split = q[last]["split_gain"]
    quality_text = (f"held-out loss reduced − full-width at step {last}: {gain(last)} nats; one head − reduced: "
                    f"{split['mean']:+.3f} ± {split['sd']:.3f}")
    if q[last]["full_gain"]["significant"]:
        return "refuted", f"full-width heads end better beyond {N_SD:g} sd of seed noise: {quality_text}; {cost_text}"
    if not c["slower"]["significant"]:
        return "refuted", f"full-width heads are not measurably slower: {cost_text}; {quality_text}"
    early = [step for step in sorted(q) if q[step]["full_gain"]["significant"]]
    if early:
        steps = ", ".join(f"step {s}: {gain(s)}" for s in early)
        return "depends", (f"no quality gain by the end but full-width heads learn faster early ({steps} nats, "
                           f"beyond {N_SD:g} sd); {quality_text}; {cost_text}")
    if q[last]["one_head_better"]["significant"] or c["one_head_time"] * SAME_COST_TOL < 1:
        return "depends", (f"full-width heads cost more for no gain, but the reduced heads are not the cheap "
                           f"multi-subspace option here: {quality_text}; {cost_text}")
    return "confirmed", f"{cost_text}; no quality gain beyond {N_SD:g} sd at any checkpoint: {quality_text}"


def cost_table(results: dict[str, Any]) -> Table:
    rows = []
    for c in results["cost"]:
        f = c["flops_formula"]
        rows.append([arm_label(c["arm"]), str(c["params"]), str(c["params_formula"]), str(c["attention_params"]),
                     fmt(f["attention"]), fmt(f["total"]), fmt(c["flops_counted"]),
                     "yes" if c["linear_flops_from_params"] == f["linear"] else "no", fmt(c["train_step_flops"]),
                     fmt(results["wide_train_step_flops"][c["arm"]])])
    return (["heads × d_head", "params (counted)", "params (formula)", "attention params", "attention FLOPs (fwd)",
             "model FLOPs (fwd, formula)", "model FLOPs (fwd, counted)", "linear FLOPs = 2·tokens·weights",
             "train-step FLOPs", "train-step FLOPs, wide"], rows)


def quality_table(results: dict[str, Any]) -> Table:
    ratios, q, rows = time_ratios(results), quality_effects(results), []
    for arm in ARMS:
        for step in sorted(q):
            runs = [r for r in results["training"] if r["arm"] == arm]
            loss = [next(x["loss"] for x in r["quality"] if x["step"] == step) for r in runs]
            acc = [next(x["accuracy"] for x in r["quality"] if x["step"] == step) for r in runs]
            gain = q[step]["full_gain"]
            rows.append([arm_label(arm), str(step), f"{base.mean(loss):.4f} ± {base.std(loss):.4f}",
                         f"{base.mean(acc):.3f} ± {base.std(acc):.3f}",
                         f"{gain['mean']:+.4f} ± {gain['sd']:.4f}" if arm == "full_width" else "",
                         fmt(base.mean(ratios["task"][arm])), fmt(base.mean(ratios["wide"][arm]))])
    return (["heads × d_head", "step", "held-out loss (nats)", "held-out accuracy", "loss reduced − full (paired)",
             "step time / reduced, task", "step time / reduced, wide"], rows)


def tables(metrics: dict[str, Any]) -> list[Table]:
    return [cost_table(metrics["results"]), quality_table(metrics["results"])]
