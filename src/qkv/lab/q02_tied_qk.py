"""Question 2: why different Wq and Wk; why not dot a vector with itself? (QK权重)

Claims under test (as commonly answered): with one matrix for queries and keys (Wq = Wk = W)
the score matrix X W Wᵀ Xᵀ is symmetric positive semi-definite, so score(i, j) = score(j, i)
and each token's own score q_i·k_i = |W x_i|² tends to be the largest of its row: attention
leans to the diagonal and cannot express a relation where i attends to j but j not to i.
Separate Wq and Wk are therefore needed to learn such a relation.

Method, every number per seed:
1. Unit-variance inputs: 32 tokens x ~ N(0, I) in d = 64, projections with N(0, 1/d) entries
   (unit-variance q, k components), d_head 8 … 64, tied and untied, without positions and with
   RoPE. Per score matrix: its asymmetry ‖S − Sᵀ‖/‖S‖, its least eigenvalue relative to the
   largest, how often a row's largest score is its own, and the mean softmax weight a query
   puts on itself (bidirectional, all 32 keys), against the prediction derived in ANSWER.
2. Training on the previous-token task: random symbols x_0 … x_15, the label at position t is
   x_{t−1}, which a model can only get by attending one position back. Tied vs untied Wq/Wk,
   paired by seed (same seed, same batches), in five settings: one layer with a
   causal mask, one layer without it (bidirectional: here score(t, t−1) = score(t−1, t) also
   constrains what t−1 attends to), one layer with RoPE, one layer with T5 relative biases, and
   two layers; all causal settings but the second. Held-out loss and accuracy, and the attention
   weight on the diagonal (each query on itself, t ≥ 1) and on the previous token, at init and
   after training, averaged over heads and layers.

Positions: sinusoidal absolute positions are the main setting because they are added to x
before the projection, so the tied score matrix stays exactly X W Wᵀ Xᵀ and the derivation
applies unchanged. RoPE rotates q_i and k_i by the same angle, so tied it is still Z Zᵀ with
z_i = R_i W x_i: symmetric PSD too. Only terms outside q·k break the symmetry: the causal mask
(which pairs are scored) and relative biases such as T5's (the fourth setting). Weights start
with std d_model^-½ (unit-variance q, k components, the premise of part 1); with qkv's default
0.02 the scores start near zero and neither variant leaves its plateau within this budget.

Reproduce: ``qkv ask 2 --size full``.
"""

from __future__ import annotations

import math
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ..config import ModelConfig
from ..models import build_model
from ..nn.attention import MultiHeadAttention
from ..nn.position import apply_rotary
from ..train import IGNORE_INDEX, Trainer, TrainConfig, smoothed_cross_entropy
from . import base, plots, probe
from .table import Table, fmt

NUMBER = 2
TITLE = "Why different Wq and Wk; why not dot a vector with itself?"
KEYWORD = "QK权重"
CLAIMS = [
    "With Wq = Wk the score matrix X W Wᵀ Xᵀ is symmetric positive semi-definite.",
    "Each query's own score |W x_i|² is then usually the largest of its row: attention leans to the diagonal.",
    "So tied Wq = Wk cannot learn an asymmetric relation such as 'attend to the previous token'; "
    "untied Wq, Wk can.",
]
ANSWER = """\
Write z_i = W x_i. With Wq = Wk = W the scores are S_ij = z_i·z_j, so S = Z Zᵀ: symmetric
(S_ij = S_ji) and positive semi-definite (vᵀSv = |Zᵀv|² ≥ 0). By Cauchy–Schwarz
S_ij ≤ |z_i||z_j|, so a query can prefer another key over itself only if that key's
projection is longer than its own. To attend to the previous token everywhere, the norms would
have to grow towards the start, |z_0| > |z_1| > … > |z_T|, and without a causal mask row t−1
must also prefer t−2 over t although S_{t−1,t} = S_{t,t−1} is the score row t needs to be large:
possible only with ever thinner margins. At random init the diagonal wins outright: with
unit-variance x and W entries N(0, 1/d), S_ii/√d_h ≈ √d_h (a chi-square mean) while
S_ij/√d_h ≈ N(0, 1 + d_h/d), so the own score sits about √d_h standard deviations above the
others. The softmax weight on itself is then about E[e^a / (e^a + (T−1)·e^((1+d_h/d)/2))], with
a = |z_i|²/√d_h averaged over its spread (mean √d_h; the code integrates it): 0.29 at d_h = 8
and 0.92 at d_h = 64 for T = 32 keys, against 1/32 for uniform attention.
RoPE does not change this: q_i and k_i are rotated by the same R_i, so S is again Z Zᵀ.
Separate matrices give S = X Wqᵀ Wk Xᵀ, a general bilinear form of rank ≤ d_h that can map
position t's features onto position t−1's, an asymmetric relation a tied form cannot hold.

The measurements: at unit variance the tied score matrices are exactly symmetric (with RoPE
too), never have a negative eigenvalue beyond rounding, and the own weight follows the
prediction (0.29 measured at d_h = 8, 0.94 at d_h = 64). On the previous-token task every
one-layer tied model (causal, bidirectional, RoPE, and T5 biases that could carry the offset on
their own) stays near chance, 0.07–0.12 accuracy, with 0.5–0.9 of its attention on itself,
while the untied models reach 0.88–1.00. The unqualified claim fails in one place: a two-layer
tied model learns the task as well as the untied one. Its first layer stays on the diagonal
(0.95 of the weight), but the feed-forward block and the norm make the second layer's inputs
position-dependent; there the tied scores still give 0.68 to the query itself, yet rank t−1
first among the other keys (0.23), and since x_t is already in the residual stream the output
can discount the own-token part and read x_{t−1} from the rest. Tying removes a degree of
freedom and biases every layer towards itself; it does not make the relation impossible for a
deeper network. Why Wq ≠ Wk, then: a query ("what I look for") and a key ("what I offer") are
different roles, and one matrix forces every token to look for itself first. The cost of
keeping them separate is one d × d_h matrix per head; the gain is that the score can be any
bilinear form, not only a Gram matrix. Where Q and K are shared on purpose (the Reformer's
shared-QK attention, Kitaev et al., 2020), a token is forbidden to attend to itself for exactly
this reason."""
FULL_SEEDS = 5
SMOKE_SEEDS = 1
N_SD = 2.0  # an effect must exceed 2 standard deviations of the per-seed differences
MIN_ACC_GAP = 0.1  # held-out accuracy, untied − tied: smaller gaps do not matter even when consistent
MIN_DIAG_GAP = 0.1  # attention weight on the diagonal, tied − untied
SYMMETRY_TOL = 1e-5  # ‖S − Sᵀ‖/‖S‖ of a tied score matrix in float32: rounding only
MIN_SEEDS = 3  # fewer seeds cannot estimate the noise
UNIT = {"tokens": 32, "d_model": 64, "draws": 4}
TASK = {"length": 16, "symbols": 16, "lag": 1, "batch": 32, "lr": 3e-3, "d_model": 64, "n_heads": 2, "d_ff": 128}
SETTINGS = {  # name → (layers, causal mask, position)
    "causal": (1, True, "sinusoidal"),
    "bidirectional": (1, False, "sinusoidal"),
    "rope": (1, True, "rope"),
    "t5_bias": (1, True, "t5_bias"),
    "2 layers": (2, True, "sinusoidal"),
}
SIZES = {
    "smoke": {"d_heads": [8, 32], "steps": 6, "settings": list(SETTINGS)},
    "full": {"d_heads": [8, 16, 32, 64], "steps": 300, "settings": list(SETTINGS)},
}


# -- part 1: unit-variance inputs -------------------------------------------------------------


def score_stats(s: Tensor) -> dict[str, float]:
    """Symmetry, definiteness and diagonal dominance of one score matrix ``(T, T)`` (already scaled)."""
    s64 = s.double()
    eig = torch.linalg.eigvalsh((s64 + s64.T) / 2)  # (T,) ascending
    p = torch.softmax(s64, dim=-1)  # (T, T), every key visible
    rows = torch.arange(s.shape[0])
    return {"asymmetry": float((s64 - s64.T).norm() / s64.norm()), "min_eig": float(eig[0] / eig.abs().max()),
            "diag_argmax": float((s64.argmax(-1) == rows).double().mean()), "diag_weight": float(p.diagonal().mean())}


def rotate(z: Tensor) -> Tensor:
    """RoPE at positions 0 … T−1 (the library's rotate-half pairing): ``(T, D)`` → ``(T, D)``."""
    T, D = z.shape
    inv_freq = 1.0 / (10000.0 ** (torch.arange(0, D, 2).float() / D))  # (D/2,)
    angles = torch.arange(T).float()[:, None] * inv_freq  # (T, D/2)
    angles = torch.cat([angles, angles], dim=-1)  # (T, D)
    return apply_rotary(z[None, None], angles.cos()[None, None], angles.sin()[None, None])[0, 0]


def predicted_diag_weight(d_head: int, tokens: int, d_model: int) -> float:
    """E[e^a / (e^a + Σ_j e^(s_j))] with the others' sum at its mean (T−1)·e^(σ²/2), σ² = 1 + d_h/d,
    and the own scaled score a = |z|²/√d_h, |z|² ~ Gamma with mean d_h and variance 2·d_h·(1 + d_h/d)
    (the spread of xᵀWᵀWx over x and W), integrated on a grid."""
    mean, var = d_head, 2 * d_head * (1 + d_head / d_model)
    shape, scale = mean**2 / var, var / mean
    z2 = torch.linspace(1e-6, mean + 12 * math.sqrt(var), 4001, dtype=torch.float64)  # values of |z|²
    density = ((shape - 1) * z2.log() - z2 / scale - math.lgamma(shape) - shape * math.log(scale)).exp()
    log_others = math.log(tokens - 1) + (1 + d_head / d_model) / 2
    own_weight = torch.sigmoid(z2 / math.sqrt(d_head) - log_others)  # e^a / (e^a + others)
    return float(torch.trapezoid(own_weight * density, z2))


def unit_variance(d_head: int, seed: int) -> dict[str, Any]:
    """Part 1 at one d_head: score statistics, tied and untied, with and without RoPE, averaged over draws."""
    g = torch.Generator().manual_seed(seed * 1000 + d_head)
    T, d = UNIT["tokens"], UNIT["d_model"]
    cells: dict[str, list[dict]] = {}
    for _ in range(UNIT["draws"]):
        x = torch.randn(T, d, generator=g)  # (T, d)
        w_q, w_k = torch.randn(2, d_head, d, generator=g) / math.sqrt(d)  # (D, d) each
        for tied in (True, False):
            q, k = x @ w_q.T, x @ (w_q if tied else w_k).T  # (T, D)
            for rope in (False, True):
                qr, kr = (rotate(q), rotate(k)) if rope else (q, k)
                name = ("tied" if tied else "untied") + ("_rope" if rope else "")
                cells.setdefault(name, []).append(score_stats(qr @ kr.T / math.sqrt(d_head)))  # (T, T)
    averaged = {name: {key: base.mean([c[key] for c in items]) for key in items[0]} for name, items in cells.items()}
    return {"d_head": d_head, "seed": seed, "predicted_diag_weight": predicted_diag_weight(d_head, T, d),
            **averaged}


# -- part 2: the previous-token task ----------------------------------------------------------


def lag_batch(g: torch.Generator, batch: int) -> dict[str, Tensor]:
    """Random symbols ``(B, L)``; the label at position t is the symbol at t − lag (−100 before)."""
    lag = TASK["lag"]
    x = torch.randint(probe.FIRST_SYMBOL, probe.FIRST_SYMBOL + TASK["symbols"], (batch, TASK["length"]), generator=g)
    labels = torch.full_like(x, IGNORE_INDEX)  # (B, L)
    labels[:, lag:] = x[:, :-lag]
    return {"input_ids": x, "labels": labels}


def model_config(setting: str, tied: bool) -> ModelConfig:
    layers, causal, position = SETTINGS[setting]
    # init_std d^-½: unit-variance q, k components at init, as in part 1
    return probe.copy_model_config(TASK["symbols"], TASK["length"], max_len=TASK["length"], n_layers=layers,
                                   d_model=TASK["d_model"], n_heads=TASK["n_heads"], d_ff=TASK["d_ff"],
                                   causal_mask=causal, position=position, tie_qk=tied,
                                   init_std=TASK["d_model"] ** -0.5)


def train_lag(cfg: ModelConfig, steps: int, seed: int) -> tuple[nn.Module, list[float]]:
    """Train a fresh model on the previous-token task with qkv's Trainer; returns (model, loss per step)."""
    torch.manual_seed(seed)
    model = build_model(cfg)
    tcfg = TrainConfig(lr=TASK["lr"], schedule="cosine", warmup_steps=steps // 10, max_steps=steps,
                       label_smoothing=0.0, precision="fp32", device="cpu", seed=seed, log_every=steps + 1,
                       weight_decay=0.0)
    g = torch.Generator().manual_seed(10_000 + seed)  # the same batches for tied and untied
    with tempfile.TemporaryDirectory() as tmp:  # the trainer's log; no checkpoint is written
        trainer = Trainer(model, tcfg, lambda epoch: [], tmp, progress=False)
        curve = [trainer.train_step([lag_batch(g, TASK["batch"])])["loss"] for _ in range(steps)]
    return model.eval(), curve


@torch.no_grad()
def evaluate(model: nn.Module) -> dict[str, Any]:
    """Held-out loss, accuracy, and per layer the mean attention weight on the diagonal and one back."""
    attentions = [m for m in model.modules() if isinstance(m, MultiHeadAttention)]
    for attn in attentions:
        attn.capture = True
    batch = lag_batch(torch.Generator().manual_seed(999), 256)
    logits = model.forward_batch(batch)  # (B, L, V)
    summed, count = smoothed_cross_entropy(logits, batch["labels"])
    keep = batch["labels"] != IGNORE_INDEX
    accuracy = float((logits.argmax(-1)[keep] == batch["labels"][keep]).double().mean())
    # weights (B, H, L, L); position 0 has only itself to attend to under the causal mask: skipped
    diag = [float(a.weights.diagonal(dim1=-2, dim2=-1)[..., 1:].mean()) for a in attentions]
    previous = [float(a.weights.diagonal(offset=-TASK["lag"], dim1=-2, dim2=-1).mean()) for a in attentions]
    for attn in attentions:
        attn.capture, attn.weights = False, None
    return {"loss": float(summed) / int(count), "accuracy": accuracy, "diag_by_layer": diag,
            "previous_by_layer": previous, "diag": base.mean(diag), "previous": base.mean(previous)}


def uniform_diag(causal: bool) -> float:
    """Diagonal weight of uniform attention over the visible keys (queries t ≥ 1)."""
    L = TASK["length"]
    return base.mean([1 / (t + 1) for t in range(1, L)]) if causal else 1 / L


def train_cell(setting: str, tied: bool, seed: int, steps: int) -> dict[str, Any]:
    """One (setting, tied, seed): attention at init, then train and measure held-out."""
    cfg = model_config(setting, tied)
    torch.manual_seed(seed)
    at_init = evaluate(build_model(cfg).eval())
    started = time.perf_counter()
    model, curve = train_lag(cfg, steps, seed)
    return {"setting": setting, "tied": tied, "seed": seed, **evaluate(model), "diag_init": at_init["diag"],
            "previous_init": at_init["previous"], "curve": curve[:: max(1, steps // 50)],
            "train_s": time.perf_counter() - started}




def run(size: str, seeds: int, out: Path) -> dict[str, Any]:
    started = time.perf_counter()
    s = SIZES[size]
    with base.one_thread():
        unit = [unit_variance(d, seed) for seed in range(seeds) for d in s["d_heads"]]
        training = [train_cell(setting, tied, seed, s["steps"]) for seed in range(seeds)
                    for setting in s["settings"] for tied in (False, True)]
    results = {"unit_variance": unit, "training": training,
               "uniform_diag": {name: uniform_diag(SETTINGS[name][1]) for name in s["settings"]}}
    config = {**s, "task": "previous token", **TASK, "unit": UNIT, "settings_detail": SETTINGS,
              "init_std": TASK["d_model"] ** -0.5, "schedule": "cosine, 10% warm-up", "precision": "fp32",
              "torch_threads": 1}
    names = [plot_unit(unit, out), plot_training(results, out)]
    return base.finish(verdict, base.record(NUMBER, size, seeds, out, config, results, names, started), out)


# -- plots --------------------------------------------------------------------------------------

UNIT_CASES = (("tied", "C3", "o", "tied"), ("tied_rope", "C1", "^", "tied, RoPE"),
              ("untied", "C0", "s", "untied"), ("untied_rope", "C2", "v", "untied, RoPE"))


def plot_unit(unit: list[dict], out: Path) -> str:
    fig, (ax_w, ax_a, ax_s) = plots.figure(3)
    d_heads = sorted({u["d_head"] for u in unit})
    for name, color, marker, label in UNIT_CASES:
        for ax, key in ((ax_w, "diag_weight"), (ax_a, "diag_argmax"), (ax_s, "asymmetry")):
            xs, ys = [u["d_head"] for u in unit], [max(u[name][key], 1e-12) for u in unit]
            ax.scatter(xs, ys, color=color, marker=marker, s=16, alpha=0.7, label=label)
    ax_w.plot(d_heads, [predicted_diag_weight(d, UNIT["tokens"], UNIT["d_model"]) for d in d_heads], "k--",
              linewidth=1, label="prediction (tied, see ANSWER)")
    ax_w.axhline(1 / UNIT["tokens"], color="grey", linestyle=":", label=f"uniform (1/{UNIT['tokens']})")
    ax_w.set(ylabel="mean softmax weight on itself", title=f"{UNIT['tokens']} unit-variance tokens, all keys")
    ax_a.set(ylabel="fraction of rows whose max is the diagonal", title="own score largest in its row")
    ax_s.set(yscale="log", ylabel="‖S − Sᵀ‖ / ‖S‖ (log; 1e-12 = exactly 0)", title="score-matrix asymmetry")
    for ax in (ax_w, ax_a, ax_s):
        plots.log_ticks(ax, d_heads)
        ax.set_xlabel("d_head (log)")
        ax.legend(fontsize=7)
    return plots.save(fig, out, "q02_unit.png")


def plot_training(results: dict[str, Any], out: Path) -> str:
    fig, (ax_acc, ax_diag, ax_prev) = plots.figure(3, width=4.6)
    cells = by_setting(results["training"])
    for i, (setting, items) in enumerate(cells.items()):
        for j, (tied, color) in enumerate(((False, "C0"), (True, "C3"))):
            runs = [r for r in items if r["tied"] == tied]
            label = ("tied" if tied else "untied") if i == 0 else None
            x = i + (j - 0.5) * 0.35
            plots.seed_points(ax_acc, x, [r["accuracy"] for r in runs], color, label, width=0.2)
            plots.seed_points(ax_diag, x, [r["diag"] for r in runs], color, label, width=0.2)
            ax_diag.scatter([x] * len(runs), [r["diag_init"] for r in runs], s=14, facecolors="none",
                            edgecolors=color, label=f"{label}, at init" if label else None)
            plots.seed_points(ax_prev, x, [r["previous"] for r in runs], color, label, width=0.2)
        ax_diag.hlines(results["uniform_diag"][setting], i - 0.45, i + 0.45, color="grey", linestyle=":",
                       label="uniform attention" if i == 0 else None)
    ax_acc.axhline(1 / TASK["symbols"], color="grey", linestyle=":", label=f"chance (1/{TASK['symbols']})")
    ax_acc.set(ylabel="held-out accuracy", title="previous-token task, after training")
    ax_diag.set(ylabel="attention weight on itself (t ≥ 1)", title="diagonal mass (hollow: at init)")
    ax_prev.set(ylabel="attention weight on t − 1", title="weight on the previous token")
    for ax in (ax_acc, ax_diag, ax_prev):
        ax.set_xticks(range(len(cells)))
        ax.set_xticklabels(list(cells), fontsize=7, rotation=20)
        ax.set_ylim(0, 1.35)  # room above the points for the legend
        ax.set_yticks([0, 0.2, 0.4, 0.6, 0.8, 1.0])
        ax.legend(fontsize=7, loc="upper center", ncol=3, columnspacing=0.8, handletextpad=0.3)
    return plots.save(fig, out, "q02_training.png")


# -- verdict and tables -------------------------------------------------------------------------


def by_setting(training: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for r in training:
        out.setdefault(r["setting"], []).append(r)
    return out


def paired(items: list[dict], key: str, tied: bool) -> list[float]:
    return [r[key] for r in sorted(items, key=lambda r: r["seed"]) if r["tied"] == tied]


def effects(metrics: dict[str, Any]) -> dict[str, dict]:
    """Per setting, paired by seed: accuracy untied − tied, and diagonal weight tied − untied."""
    out = {}
    for setting, items in by_setting(metrics["results"]["training"]).items():
        out[setting] = {
            "hurt": base.paired_effect(paired(items, "accuracy", False), paired(items, "accuracy", True),
                                       N_SD, MIN_ACC_GAP),
            "diagonal": base.paired_effect(paired(items, "diag", True), paired(items, "diag", False),
                                           N_SD, MIN_DIAG_GAP),
            "tied_accuracy": base.mean(paired(items, "accuracy", True)),
            "untied_accuracy": base.mean(paired(items, "accuracy", False)),
        }
    return out


def unit_summary(metrics: dict[str, Any]) -> dict[str, float]:
    """Largest tied asymmetry (either position kind) and, at the largest d_head, the diagonal's lead."""
    unit = metrics["results"]["unit_variance"]
    top = [u for u in unit if u["d_head"] == max(v["d_head"] for v in unit)]
    return {"asymmetry": max(max(u["tied"]["asymmetry"], u["tied_rope"]["asymmetry"]) for u in unit),
            "min_eig": min(u["tied"]["min_eig"] for u in unit), "d_head": top[0]["d_head"],
            "argmax_tied": base.mean([u["tied"]["diag_argmax"] for u in top]),
            "argmax_untied": base.mean([u["untied"]["diag_argmax"] for u in top])}


def describe(setting: str, e: dict) -> str:
    return (f"{setting}: accuracy {e['untied_accuracy']:.2f} untied vs {e['tied_accuracy']:.2f} tied "
            f"(gap {e['hurt']['mean']:+.2f} ± {e['hurt']['sd']:.2f}), diagonal weight tied − untied "
            f"{e['diagonal']['mean']:+.2f} ± {e['diagonal']['sd']:.2f}")


def verdict(metrics: dict[str, Any]) -> tuple[str, str]:
    undecided = base.undecidable(metrics, MIN_SEEDS)
    if undecided:
        return undecided
    u, per = unit_summary(metrics), effects(metrics)
    unit_text = (f"tied score matrices have asymmetry ≤ {u['asymmetry']:.1e} and least eigenvalue ratio "
                 f"{u['min_eig']:+.1e}; at d_head {u['d_head']} the own score is the row maximum in "
                 f"{u['argmax_tied']:.0%} of rows tied vs {u['argmax_untied']:.0%} untied")
    if u["asymmetry"] > SYMMETRY_TOL:
        return "refuted", f"tied scores are not symmetric: {unit_text} (tolerance {SYMMETRY_TOL:g})"
    hurt = [s for s, e in per.items() if e["hurt"]["significant"]]
    leaning = [s for s, e in per.items() if e["diagonal"]["significant"]]
    details = "; ".join(describe(s, e) for s, e in per.items())
    if not hurt:
        return "refuted", f"{unit_text}, but tying does not cost accuracy beyond {N_SD:g} sd of seed noise ({details})"
    if len(hurt) == len(per) and len(leaning) == len(per):
        return "confirmed", (f"{unit_text}; tied models lose accuracy and lean to the diagonal beyond {N_SD:g} sd "
                             f"in every setting ({details})")
    spared = [s for s in per if s not in hurt]
    return "depends", (f"{unit_text}; tying costs accuracy beyond {N_SD:g} sd in {', '.join(hurt)}"
                       + (f" but not in {', '.join(spared)}" if spared else "")
                       + (f", and the diagonal lean is beyond noise only in {', '.join(leaning) or 'none'}"
                          if len(leaning) < len(per) else "") + f" ({details})")


def mean_sd(values: list[float]) -> str:
    return f"{base.mean(values):.3f} ± {base.std(values):.3f}"


def unit_table(unit_variance: list[dict]) -> Table:
    """Part 1 per d_head, means over seeds."""
    unit: dict[int, list[dict]] = {}
    for item in unit_variance:
        unit.setdefault(item["d_head"], []).append(item)
    columns = [("tied", "diag_weight"), ("tied_rope", "diag_weight"), ("untied", "diag_weight"),
               ("tied", "diag_argmax"), ("untied", "diag_argmax"), ("tied", "asymmetry"),
               ("tied_rope", "asymmetry"), ("untied", "asymmetry"), ("tied", "min_eig")]
    rows = [[str(d), fmt(base.mean([u["predicted_diag_weight"] for u in items])),
             *(fmt(base.mean([u[case][key] for u in items])) for case, key in columns)]
            for d, items in sorted(unit.items())]
    return (["d_head", "self weight predicted", "self weight tied", "tied RoPE", "untied", "row max on diagonal tied",
             "untied", "asymmetry tied", "tied RoPE", "untied", "least eig / largest, tied"], rows)


def training_table(metrics: dict[str, Any]) -> Table:
    """Part 2 per setting and tie, mean ± sd over seeds, with the paired accuracy gap."""
    r, per, rows = metrics["results"], effects(metrics), []
    for setting, items in by_setting(r["training"]).items():
        for tied in (False, True):
            runs = [x for x in items if x["tied"] == tied]
            gap = per[setting]["hurt"]
            rows.append([setting, "tied" if tied else "untied",
                         *(mean_sd([x[key] for x in runs]) for key in ("accuracy", "loss", "diag_init", "diag",
                                                                         "previous")),
                         fmt(r["uniform_diag"][setting]), f"{gap['mean']:+.3f} ± {gap['sd']:.3f}" if tied else ""])
    return (["setting", "Wq, Wk", "held-out accuracy", "held-out loss (nats)", "self weight at init",
             "self weight trained", "weight on t − 1", "self weight if uniform", "accuracy untied − tied"], rows)


def tables(metrics: dict[str, Any]) -> list[Table]:
    return [unit_table(metrics["results"]["unit_variance"]), training_table(metrics)]
