"""Question 23: what does positional encoding do, and why is it needed? (位置编码)

Claims under test (as commonly answered): self-attention treats its input as a set — permute
the tokens and the outputs are permuted the same way — so without a positional encoding the
model cannot know token order; the encoding is what tells it where each token is.

Method, every number per seed:
1. Equivariance: a freshly initialised 2-layer encoder (no dropout) with each position scheme
   and none, and causal LMs without and with sinusoidal positions. Permute the input tokens
   with a random π and compare f(π·x) with π·f(x) on the stack's hidden states: max |difference|
   and ``torch.allclose`` at a tolerance just above float32 rounding.
2. Does a causal LM without positions know where it is? Train causal LMs with
   ``position="none"`` and ``"sinusoidal"`` on the copy task (which needs the token n + 1
   positions back), then fit a linear probe (least squares, on frozen hidden states of held-out
   sequences) predicting the absolute position from the embedding output and from each layer's
   output; R² and exact-position accuracy on held-out sequences, also for the untrained models.
   The causal mask is an order by itself: position t averages over t + 1 tokens, so a model
   without positions can still count. The embedding output of a model without positions holds
   no position by construction, which makes it the baseline the later layers are compared with.

Reproduce: ``qkv ask 23 --size full``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ..config import ModelConfig
from ..models import build_model
from ..nn.position import POSITION
from . import base, plots, probe
from .table import Table, fmt

NUMBER = 23
TITLE = "What does positional encoding do; why is it needed?"
KEYWORD = "位置编码"
CLAIMS = [
    "Without positional encoding, self-attention is permutation-equivariant: shuffled input gives shuffled output.",
    "Without positional encoding the model cannot know token order.",
]
ANSWER = """\
Self-attention computes z_i = Σ_j softmax_j(q_i·k_j) v_j with q, k, v linear in the token at
each position, and the feed-forward, norms and residuals act on each position alone. Permute
the input rows with π: the scores become s_{π(i)π(j)}, the softmax over j is a sum that does
not care about order, so z becomes π·z. Every layer commutes with π, hence the whole encoder:
f(π·x) = π·f(x). Without positions "dog bites man" and "man bites dog" give the same set of
vectors, so an encoder cannot tell them apart; adding PE(p) to the embedding (or a position
term inside attention) makes the input at each place depend on where it is and breaks the
symmetry.

The second claim overreaches for decoders. A causal mask is itself an order: token t attends
to exactly t + 1 tokens, so its output depends on how many came before (an average over a
longer prefix has less variance; attention to the first token gives a count). A causal LM
without any positional encoding (NoPE; Haviv et al., 2022) therefore can and does represent
absolute position. The measurements show both: the exact equivariance of the encoder, and a
linear probe reading the position out of a causal LM that was never given one."""
FULL_SEEDS = 5
SMOKE_SEEDS = 1
N_SD = 2.0  # an effect must exceed 2 standard deviations of the per-seed differences
EQUIVARIANT_TOL = 1e-5  # max |f(πx) − πf(x)| at or below this is float32 rounding
ORDER_MIN = 1e-3  # a difference this large is order information, not rounding
MIN_R2_GAIN = 0.2  # probe R² a layer must add over the embedding output to count as knowing position
MIN_SEEDS = 3  # fewer seeds cannot estimate the noise
RIDGE = 1e-3  # keeps the probe's normal equations well conditioned
CAUSAL_CASES = (("lm", "none"), ("lm", "sinusoidal"))
LM_POSITIONS = ("none", "sinusoidal")
SIZES = {
    "smoke": {"encoder_positions": ["none", "sinusoidal"], "steps": 10, "probe_sequences": 64},
    "full": {"encoder_positions": sorted(POSITION), "steps": 300, "probe_sequences": 256},
}
TASK = {"n": 8, "symbols": 16, "batch": 32, "lr": 3e-3, "d_model": 64, "n_heads": 2, "n_layers": 2}
PERMUTED = {"batch": 4, "length": 24, "vocab": 40}


def fresh_model(family: str, position: str) -> nn.Module:
    """A 2-layer model of qkv's default init, dropout off, in eval mode."""
    cfg = ModelConfig(family=family, position=position, vocab_size=PERMUTED["vocab"], d_model=TASK["d_model"],
                      n_layers=2, n_heads=4, d_ff=128, max_len=64, dropout_embed=0.0, dropout_residual=0.0,
                      dropout_attention=0.0, dropout_activation=0.0)
    return build_model(cfg).eval()


@torch.no_grad()
def equivariance(family: str, position: str, seed: int) -> dict[str, Any]:
    """Part 1: max |f(π·x) − π·f(x)| on the stack's hidden states for a random permutation π."""
    torch.manual_seed(seed)
    model = fresh_model(family, position)
    stack = model.encoder if family == "encoder" else model.decoder
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(probe.FIRST_SYMBOL, PERMUTED["vocab"], (PERMUTED["batch"], PERMUTED["length"]), generator=g)
    perm = torch.randperm(PERMUTED["length"], generator=g)
    permuted_outputs = stack(ids)[:, perm]  # π·f(x): (B, T, d)
    outputs_of_permuted = stack(ids[:, perm])  # f(π·x): (B, T, d)
    diff = float((permuted_outputs - outputs_of_permuted).abs().max())
    close = torch.allclose(permuted_outputs, outputs_of_permuted, rtol=0.0, atol=EQUIVARIANT_TOL)
    return {"family": family, "position": position, "seed": seed, "max_diff": diff, "allclose": close}


@torch.no_grad()
def hidden_states(model: nn.Module, ids: Tensor) -> list[Tensor]:
    """The embedding output (input to layer 1) and every layer's output, each ``(B, T, d)``."""
    layers, states = model.decoder.layers, []
    hooks = [layers[0].register_forward_pre_hook(lambda mod, args: states.append(args[0]))]
    hooks += [layer.register_forward_hook(lambda mod, args, out: states.append(out)) for layer in layers]
    model(ids)
    for hook in hooks:
        hook.remove()
    return states


def fit_linear(features: Tensor, targets: Tensor) -> Tensor:
    """Ridge least squares with a bias column: features ``(N, d)``, targets ``(N, k)`` → ``(d + 1, k)``."""
    x = torch.cat([features, torch.ones(len(features), 1, dtype=features.dtype)], dim=1)  # (N, d + 1)
    gram = x.T @ x + RIDGE * len(x) * torch.eye(x.shape[1], dtype=x.dtype)
    return torch.linalg.solve(gram, x.T @ targets)


def apply_linear(weights: Tensor, features: Tensor) -> Tensor:
    return torch.cat([features, torch.ones(len(features), 1, dtype=features.dtype)], dim=1) @ weights


def position_probe(state: Tensor, n_train: int) -> dict[str, float]:
    """R² of a linear regression onto the position and accuracy of a linear (one-hot least squares)
    classifier of it; fitted on the first ``n_train`` sequences of ``state`` ``(B, T, d)``, scored on the rest."""
    B, T, d = state.shape
    pos = torch.arange(T, dtype=torch.float64).expand(B, T)  # (B, T)
    x, y = state.double(), pos
    train, test = x[:n_train].reshape(-1, d), x[n_train:].reshape(-1, d)  # (N, d)
    y_train, y_test = y[:n_train].reshape(-1, 1), y[n_train:].reshape(-1)
    predicted = apply_linear(fit_linear(train, y_train), test)[:, 0]  # (N_test,)
    r2 = 1.0 - float(((predicted - y_test) ** 2).sum() / ((y_test - y_test.mean()) ** 2).sum())
    one_hot = torch.eye(T, dtype=torch.float64)[y_train[:, 0].long()]  # (N_train, T)
    chosen = apply_linear(fit_linear(train, one_hot), test).argmax(-1)  # (N_test,)
    return {"r2": r2, "accuracy": float((chosen == y_test.long()).double().mean())}


def probe_layers(model: nn.Module, sequences: int) -> list[dict[str, float]]:
    """The position probe at the embedding output (layer 0) and after each layer, held-out copy inputs."""
    batch = probe.copy_batch(torch.Generator().manual_seed(4242), sequences, TASK["n"], TASK["symbols"])
    n_train = sequences * 3 // 4
    return [{"layer": i, **position_probe(h, n_train)} for i, h in enumerate(hidden_states(model, batch["input_ids"]))]


def lm_config(position: str) -> ModelConfig:
    # init_std d_model^-1/2 as in question 4: at 0.02 the copy task is not learnt in a CPU budget
    return probe.copy_model_config(TASK["symbols"], TASK["n"], d_model=TASK["d_model"], n_heads=TASK["n_heads"],
                                   n_layers=TASK["n_layers"], position=position, init_std=TASK["d_model"] ** -0.5)


def train_lm(position: str, seed: int, steps: int, sequences: int) -> dict[str, Any]:
    """Part 2 at one position kind and seed: probes before and after training, held-out copy loss."""
    cfg = lm_config(position)
    torch.manual_seed(seed)  # the same draws train_copy makes, so this is its initial model
    untrained = probe_layers(build_model(cfg).eval(), sequences)
    model, curve = probe.train_copy(cfg, steps=steps, seed=seed, n=TASK["n"], symbols=TASK["symbols"],
                                    batch=TASK["batch"], lr=TASK["lr"])
    held_out = probe.copy_eval(model, n=TASK["n"], symbols=TASK["symbols"])
    return {"position": position, "seed": seed, "untrained": untrained, "trained": probe_layers(model, sequences),
            "final_loss": held_out["loss"], "accuracy": held_out["accuracy"], "curve": curve[:: max(1, steps // 50)]}


def run(size: str, seeds: int, out: Path) -> dict[str, Any]:
    started = time.perf_counter()
    s = SIZES[size]
    cases = [("encoder", p) for p in s["encoder_positions"]] + list(CAUSAL_CASES)
    permutations = [equivariance(family, position, seed) for seed in range(seeds) for family, position in cases]
    lms = [train_lm(position, seed, s["steps"], s["probe_sequences"])
           for seed in range(seeds) for position in LM_POSITIONS]
    results = {"equivariance": permutations, "lm": lms}
    config = {**s, "task": "copy", **TASK, "permuted": PERMUTED, "equivariant_tol": EQUIVARIANT_TOL,
              "probe": "ridge least squares, 3/4 of the sequences to fit, 1/4 to score", "ridge": RIDGE,
              "init_std": "0.02 (part 1), d_model^-1/2 (part 2)", "precision": "fp32"}
    names = [plot_positions(results, out)]
    return base.finish(verdict, base.record(NUMBER, size, seeds, out, config, results, names, started), out)


def case_groups(items: list[dict]) -> dict[tuple[str, str], list[dict]]:
    out: dict[tuple[str, str], list[dict]] = {}
    for item in items:
        out.setdefault((item["family"], item["position"]), []).append(item)
    return out


def lms_of(items: list[dict], position: str) -> list[dict]:
    return sorted((r for r in items if r["position"] == position), key=lambda r: r["seed"])


def plot_equivariance(ax, results: dict[str, Any]) -> None:
    floor = 1e-9  # an exact match (difference 0) is drawn at the floor of the log axis
    groups = case_groups(results["equivariance"])
    for i, ((family, position), items) in enumerate(groups.items()):
        color = "C0" if position == "none" else "C1"
        plots.seed_points(ax, i, [max(r["max_diff"], floor) for r in items], color, width=0.3)
    ax.axhline(EQUIVARIANT_TOL, color="grey", linestyle=":", label=f"rounding tolerance {EQUIVARIANT_TOL:g}")
    ax.set_yscale("log")
    ax.set(ylabel="max |f(πx) − πf(x)| (log)", ylim=(floor / 3, 30), title="permuted input, at init (0 at 1e-9)")
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels([f"{f}\n{p}" for f, p in groups], fontsize=7, rotation=45)
    ax.legend(fontsize=7)


def plot_probe(ax, results: dict[str, Any]) -> None:
    for position, color in zip(LM_POSITIONS, ("C0", "C1")):
        runs = lms_of(results["lm"], position)
        for stage, style in (("trained", "-"), ("untrained", ":")):
            layers = [p["layer"] for p in runs[0][stage]]
            for r in runs:
                ax.scatter(layers, [p["r2"] for p in r[stage]], color=color, s=10, alpha=0.6)
            means = [base.mean([r[stage][k]["r2"] for r in runs]) for k in layers]
            ax.plot(layers, means, color=color, linestyle=style, label=f"LM, {position}, {stage}")
    ax.set(xlabel="layer (0 = embedding output)", ylabel="held-out R² of linear position probe",
           title="causal LM: is absolute position readable?", ylim=(-0.1, 1.05))
    ax.set_xticks(layers)
    ax.legend(fontsize=7)


def plot_positions(results: dict[str, Any], out: Path) -> str:
    fig, (ax_e, ax_p, ax_a) = plots.figure(3)
    plot_equivariance(ax_e, results)
    plot_probe(ax_p, results)
    for i, (position, color) in enumerate(zip(LM_POSITIONS, ("C0", "C1"))):
        plots.seed_points(ax_a, i, [r["accuracy"] for r in lms_of(results["lm"], position)], color, width=0.3)
    ax_a.axhline(1 / TASK["symbols"], color="grey", linestyle=":", label=f"chance (1/{TASK['symbols']})")
    ax_a.set(xticks=range(len(LM_POSITIONS)), ylabel="held-out copy accuracy (fraction)", ylim=(0, 1.05),
             title="causal LM on the copy task, per seed")
    ax_a.set_xticklabels([f"position {p}" for p in LM_POSITIONS])
    ax_a.legend(fontsize=7)
    return plots.save(fig, out, "q23_positions.png")


def r2_gain(run: dict[str, Any]) -> tuple[float, float]:
    """(best R² over the layers of the trained model, its R² at the embedding output)."""
    trained = run["trained"]
    return max(p["r2"] for p in trained[1:]), trained[0]["r2"]


def position_learnt(metrics: dict[str, Any]) -> dict[str, Any]:
    """Trained LM without positions: best layer's probe R² against the embedding output's, paired by seed."""
    runs = lms_of(metrics["results"]["lm"], "none")
    best, embedding = zip(*(r2_gain(r) for r in runs))
    return {"best": base.mean(best), "embedding": base.mean(embedding),
            "gain": base.paired_effect(list(best), list(embedding), N_SD, MIN_R2_GAIN),
            "accuracy": base.mean([r["accuracy"] for r in runs]),
            "accuracy_sinusoidal": base.mean([r["accuracy"] for r in lms_of(metrics["results"]["lm"], "sinusoidal")])}


def worst_diffs(metrics: dict[str, Any]) -> dict[str, float]:
    groups = case_groups(metrics["results"]["equivariance"])
    return {"none": max(r["max_diff"] for r in groups["encoder", "none"]),
            "sinusoidal": min(r["max_diff"] for r in groups["encoder", "sinusoidal"])}


def verdict(metrics: dict[str, Any]) -> tuple[str, str]:
    undecided = base.undecidable(metrics, MIN_SEEDS)
    if undecided:
        return undecided
    diffs, learnt = worst_diffs(metrics), position_learnt(metrics)
    equiv = (f"the encoder without positions gives max |f(πx) − πf(x)| = {diffs['none']:.2e} "
             f"(tolerance {EQUIVARIANT_TOL:g}), with sinusoidal positions at least {diffs['sinusoidal']:.2e}")
    gain = learnt["gain"]
    lm = (f"a causal LM trained without positions has position probe R² {learnt['best']:.3f} at its best layer "
          f"vs {learnt['embedding']:.3f} at the embedding output (gain {gain['mean']:+.3f} ± {gain['sd']:.3f}); "
          f"copy accuracy {learnt['accuracy']:.3f} vs {learnt['accuracy_sinusoidal']:.3f} with sinusoidal")
    if diffs["none"] > EQUIVARIANT_TOL or diffs["sinusoidal"] < ORDER_MIN:
        return "refuted", f"equivariance does not hold as claimed: {equiv}; {lm}"
    if gain["significant"]:
        return "depends", (f"the encoder is permutation-equivariant without positions, but the causal mask lets an "
                           f"LM without them learn position: {equiv}; {lm}")
    if gain["mean"] > MIN_R2_GAIN:
        return "inconclusive", f"{equiv}; the causal LM's position gain is within seed noise: {lm}"
    return "confirmed", f"{equiv}; and without positions not even a causal LM represents position: {lm}"


def tables(metrics: dict[str, Any]) -> list[Table]:
    """Per permutation case: worst difference and allclose; per LM, stage and layer: probe R² and accuracy."""
    r = metrics["results"]
    first = (["family", "position", "max |f(πx) − πf(x)|, smallest seed", "largest seed", "allclose (all seeds)"],
             [[f, p, fmt(min(x["max_diff"] for x in items)), fmt(max(x["max_diff"] for x in items)),
               str(all(x["allclose"] for x in items))] for (f, p), items in case_groups(r["equivariance"]).items()])
    rows = []
    for position in LM_POSITIONS:
        runs = lms_of(r["lm"], position)
        for stage in ("untrained", "trained"):
            for k, layer in enumerate(runs[0][stage]):
                r2s = [x[stage][k]["r2"] for x in runs]
                rows.append([position, stage, str(layer["layer"]), f"{base.mean(r2s):.3f} ± {base.std(r2s):.3f}",
                             fmt(base.mean([x[stage][k]["accuracy"] for x in runs])),
                             fmt(base.mean([x["accuracy"] for x in runs])) if stage == "trained" else ""])
    second = (["LM position", "stage", "layer", "probe R² (mean ± sd)", "probe accuracy", "copy accuracy"], rows)
    return [first, second]
