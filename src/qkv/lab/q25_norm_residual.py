"""Question 25: what LayerNorm and residual connections are for. (LN/残差)

Claims under test (as commonly answered): LayerNorm keeps activations at a stable scale across
depth; the residual path carries the signal, each sublayer adding a correction to it.

Method: the copy-task LMs of question 11 at one depth (12 layers, weights at std d_model^-½),
in ten variants: LayerNorm or RMSNorm × post-/pre-LN × residual on/off, plus the same stack
with no norm at all (every norm replaced by the identity, no final norm; where the norm sits
no longer matters then), residual on/off. On a fixed held-out batch, at initialisation and
after training, every seed:
1. The residual stream by depth: the RMS of the hidden state entering layer 1 and leaving every
   layer (forward hooks on ``model.decoder.layers``), and its growth, largest over smallest.
2. Each sublayer's update against the stream it is added to: RMS(f(·)) / RMS(x) for the
   attention and the feed-forward of every layer.
3. What the stream carries: the mean cosine between each token's state after the last layer
   and its state entering layer 1, and the mean cosine between different tokens of a sequence.
Residual on and off of a seed share the batches, so those comparisons are paired by seed.

Reproduce: ``qkv ask 25 --size full``.
"""

from __future__ import annotations

import math
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from matplotlib.ticker import MaxNLocator
from torch import Tensor, nn

from ..errors import TrainingError
from ..nn.block import Residual
from ..train import Trainer, TrainConfig
from . import base, plots, probe
from . import q11_residual as q11
from .table import Table, fmt

NUMBER = 25
TITLE = "Purpose of LayerNorm and residual connections"
KEYWORD = "LN/残差"
CLAIMS = [
    "LayerNorm keeps activations at a stable scale across depth.",
    "The residual path carries the signal: each sublayer adds an update to a stream that keeps its input.",
]
ANSWER = """\
The two pieces solve different problems. A residual connection, x_{l+1} = x_l + f_l(x_l), makes
the identity the default: the stream that leaves a block still contains what entered it, each
sublayer adds an update, and the gradient reaches every layer through the skip path (question
11). Its cost is scale: if every f_l adds about as much as it receives, the variance of the
stream grows with every sublayer, Var(x_L) ≈ Var(x_0) · 2^(2L) for L layers of unit-gain
sublayers, so activations and logits grow without bound with depth.

LayerNorm, (x − mean) / std · γ + β over each token's features (RMSNorm: x / rms · γ), fixes
the scale. Where it sits decides which scale it fixes. Post-LN, LN(x + f(x)), normalises the
stream itself: every layer hands on unit-RMS states, at the price of dividing the skip path by
the norm at every sublayer. Pre-LN, x + f(LN(x)), normalises only what each sublayer reads: the
sublayers always see unit-scale inputs, but the stream itself is never normalised and grows
(roughly as the square root of the number of sublayers, not exponentially), which is why
pre-LN stacks end with a final norm. So "LayerNorm keeps activations stable across depth" is
exact for post-LN, holds for the sublayer inputs of pre-LN, and does not hold for the pre-LN
residual stream.

In the measurements (12 layers, Xavier-scale init) the post-norm stream stays at unit RMS, the
pre-norm stream grows about 4× by the top at init and about 8× after training, and without any
norm it grows about 3000× at init and training diverges in most seeds.

The residual keeps the signal only where the skip path is not rescaled. In pre-LN each sublayer
adds an update of about a fifth to a third of the stream's RMS, and the state at the top still
points partly along its input (cosine about 0.26 at init). In post-LN every update is about as
large as the stream it joins and the norm then halves the skip's share of the variance, so
after 24 sublayers nothing of the input direction is left at init even with the skip. Without
the residual, a norm keeps the scale but not the signal: each layer's output is a new vector
and the tokens of a sequence collapse onto one (cosine between positions 1.00)."""
FULL_SEEDS = 5
SMOKE_SEEDS = 2
MIN_SEEDS = 3  # fewer seeds cannot estimate the noise
N_SD = 2.0  # an effect must exceed 2 standard deviations of the per-seed differences
STABLE = 2.0  # stream RMS within a factor 2 from the embedding to the last layer: a stable scale
MIN_LOG_GROWTH_GAP = math.log(2)  # no norm must grow the stream at least 2× more to credit the norm
MIN_COS_GAP = 0.2  # input cosine gap (residual − none) that counts as carrying the signal
VARIANTS = [(n, p, r) for n in ("layer", "rms") for p in ("post", "pre") for r in (True, False)]
VARIANTS += [("none", "pre", True), ("none", "pre", False)]  # no norm: placement makes no difference
COLORS = {("layer", "post"): "C0", ("layer", "pre"): "C2", ("rms", "post"): "C4", ("rms", "pre"): "C8",
          ("none", "pre"): "C3"}
SIZES = {
    "smoke": {"depth": 2, "steps": 2},
    "full": {"depth": 12, "steps": 60},
}


def variant_name(norm: str, placement: str, residual: bool | None = None) -> str:
    wiring = "no norm" if norm == "none" else f"{placement}-{'LN' if norm == 'layer' else 'RMSNorm'}"
    return wiring if residual is None else f"{wiring}, {'residual' if residual else 'no residual'}"


class NoNorm(nn.Module):
    """The identity in a norm's place: ``(x, token_mask) -> x``."""

    def forward(self, x: Tensor, token_mask: Tensor | None = None) -> Tensor:
        return x


def build_variant(depth: int, norm: str, placement: str, residual: bool, seed: int) -> nn.Module:
    """The copy-task LM of question 11 with the given norm; ``"none"`` swaps every norm for the identity."""
    if norm != "none":
        return q11.fresh_model(q11.model_config(depth, placement, residual, norm=norm), seed)
    model = q11.fresh_model(q11.model_config(depth, placement, residual, final_norm=False), seed)
    for wiring in model.modules():
        if isinstance(wiring, Residual):
            wiring.norm = NoNorm()
    return model


def train_model(model: nn.Module, seed: int, steps: int) -> tuple[nn.Module | None, list[float]]:
    """``probe.train_copy``'s training of an already built model; (None, []) on a non-finite loss."""
    task = q11.TASK
    tcfg = TrainConfig(lr=task["lr"], schedule="cosine", warmup_steps=steps // 10, max_steps=steps,
                       label_smoothing=0.0, precision="fp32", device="cpu", seed=seed, log_every=steps + 1,
                       weight_decay=0.0)
    g = torch.Generator().manual_seed(10_000 + seed)
    with tempfile.TemporaryDirectory() as tmp:  # the trainer's log; no checkpoint is written
        trainer = Trainer(model, tcfg, lambda epoch: [], tmp, progress=False)
        try:
            curve = [trainer.train_step([probe.copy_batch(g, task["batch"], task["n"], task["symbols"])])["loss"]
                     for _ in range(steps)]
        except TrainingError:
            return None, []
    return model.eval(), curve


def rms(x: Tensor) -> float:
    return float(x.pow(2).mean().sqrt())


@torch.no_grad()
def update_ratios(model: nn.Module, batch: dict[str, Tensor]) -> list[float]:
    """RMS(f(·)) / RMS(x) for each sublayer f and the stream x it is added to (attention, FFN, …)."""
    stream, ratios, hooks = {}, [], []
    for layer in model.decoder.layers:
        for wiring, sublayer in ((layer.sub_attn, layer.self_attn), (layer.sub_ffn, layer.ffn)):
            hooks.append(wiring.register_forward_pre_hook(lambda mod, args: stream.update(x=args[0])))
            hooks.append(sublayer.register_forward_hook(
                lambda mod, args, out: ratios.append(rms(out) / rms(stream["x"]))))
    model.forward_batch(batch)
    for hook in hooks:
        hook.remove()
    return ratios


def stream_profile(model: nn.Module, batch: dict[str, Tensor]) -> dict[str, Any]:
    """Stream RMS by depth, sublayer update ratios, input cosine by depth and token cosine at the top."""
    states = q11.hidden_states(model, batch)  # L + 1 tensors (B, T, d)
    first = nn.functional.normalize(states[0], dim=-1)  # (B, T, d)
    input_cos = [float((nn.functional.normalize(h, dim=-1) * first).sum(-1).mean()) for h in states[1:]]
    return {"rms": [rms(h) for h in states], "update_ratio": update_ratios(model, batch), "input_cos": input_cos,
            "token_similarity": q11.token_similarity(states[-1])}


def cell(depth: int, norm: str, placement: str, residual: bool, seed: int, steps: int) -> dict[str, Any]:
    """One (variant, seed): the stream at init, then training, then the stream of the trained model."""
    model, batch = build_variant(depth, norm, placement, residual, seed), q11.fixed_batch()
    init = stream_profile(model, batch)
    trained, curve = train_model(model, seed, steps)
    return {"norm": norm, "placement": placement, "residual": residual, "seed": seed, "init": init,
            "trained": stream_profile(trained, batch) if trained is not None else None,
            **q11.held_out(trained), "curve": curve[:: max(1, steps // 50)]}


def run(size: str, seeds: int, out: Path) -> dict[str, Any]:
    started = time.perf_counter()
    s = SIZES[size]
    with base.one_thread():
        cells = [cell(s["depth"], *v, seed, s["steps"]) for seed in range(seeds) for v in VARIANTS]
        results = {"cells": cells}
        config = {**s, "task": "copy", **q11.TASK, "chance_loss": q11.CHANCE, "init_std": q11.TASK["d_model"] ** -0.5,
                  "schedule": "cosine, 10% warm-up", "precision": "fp32"}
        names = [plot_stream(results, out), plot_updates(results, out)]
        return base.finish(verdict, base.record(NUMBER, size, seeds, out, config, results, names, started), out)


# -- summaries ------------------------------------------------------------------------------------


def select(cells: list[dict], norm: str, placement: str, residual: bool) -> list[dict]:
    """The cells of one variant, in seed order."""
    return sorted((c for c in cells if (c["norm"], c["placement"], c["residual"]) == (norm, placement, residual)),
                  key=lambda c: c["seed"])


def growth(profile: dict[str, Any] | None) -> float:
    """Largest over smallest stream RMS across depth; inf for a run that diverged."""
    if profile is None:
        return math.inf
    return max(profile["rms"]) / min(profile["rms"]) if min(profile["rms"]) > 0 else math.inf


def summary(cells: list[dict], norm: str, placement: str, residual: bool, when: str) -> dict[str, Any]:
    """Per variant at ``when`` ("init" or "trained"): growth per seed, last-layer input cosine per seed,
    median update ratio and token cosine (means over the seeds that did not diverge)."""
    runs = select(cells, norm, placement, residual)
    kept = [c[when] for c in runs if c[when] is not None]
    median = lambda xs: sorted(xs)[len(xs) // 2]  # noqa: E731
    return {"growth": [growth(c[when]) for c in runs],
            "input_cos": [c[when]["input_cos"][-1] if c[when] is not None else 0.0 for c in runs],
            "update_ratio": base.mean([median(p["update_ratio"]) for p in kept]) if kept else math.nan,
            "token_similarity": base.mean([p["token_similarity"] for p in kept]) if kept else math.nan}


def log_gap(a: list[float], b: list[float]) -> dict[str, Any]:
    """Paired: is log a larger than log b by at least ln 2 beyond seed noise? (inf counts as 1e30)"""
    logs = lambda xs: [math.log(min(x, 1e30)) for x in xs]  # noqa: E731
    return base.paired_effect(logs(a), logs(b), N_SD, MIN_LOG_GROWTH_GAP)


def stability(cells: list[dict]) -> dict[tuple, dict[str, Any]]:
    """Per normed wiring with residual: mean growth at init and trained, stable?, and the gap to no norm."""
    out = {}
    for norm, placement in ((n, p) for n in ("layer", "rms") for p in ("post", "pre")):
        item = {}
        for when in ("init", "trained"):
            normed = summary(cells, norm, placement, True, when)["growth"]
            bare = summary(cells, "none", "pre", True, when)["growth"]
            item[when] = {"growth": base.mean(normed), "none": base.mean(bare), "gap": log_gap(bare, normed)}
        item["stable"] = all(item[w]["growth"] <= STABLE for w in ("init", "trained"))
        item["norm_matters"] = all(item[w]["gap"]["significant"] for w in ("init", "trained"))
        out[(norm, placement)] = item
    return out


def carriage(cells: list[dict]) -> dict[tuple, dict[str, Any]]:
    """Per normed wiring: last-layer input cosine with and without residual, and the paired gap."""
    out = {}
    for norm, placement in ((n, p) for n in ("layer", "rms") for p in ("post", "pre")):
        item = {}
        for when in ("init", "trained"):
            on, off = (summary(cells, norm, placement, r, when) for r in (True, False))
            item[when] = {"on": base.mean(on["input_cos"]), "off": base.mean(off["input_cos"]),
                          "update_ratio": on["update_ratio"],
                          "gap": base.paired_effect(on["input_cos"], off["input_cos"], N_SD, MIN_COS_GAP)}
        item["carries"] = all(item[w]["gap"]["significant"] for w in ("init", "trained"))
        out[(norm, placement)] = item
    return out


# -- plots ----------------------------------------------------------------------------------------


def variant_lines(ax, cells: list[dict], residual: bool, when: str, key: str, start: int) -> None:
    """One thin line per seed of every variant with this residual setting; x from ``start``."""
    for norm, placement, r in VARIANTS:
        if r != residual:
            continue
        color = COLORS[(norm, placement)]
        for c in select(cells, norm, placement, r):
            if c[when] is not None:
                values = c[when][key]
                ax.plot(range(start, start + len(values)), values, color=color, alpha=0.45, marker=".", markersize=3)
        ax.plot([], [], color=color, label=variant_name(norm, placement))


def plot_stream(results: dict[str, Any], out: Path) -> str:
    fig, axes = plots.figure(4, width=3.6)
    cells = results["cells"]
    panels = [(True, "init"), (True, "trained"), (False, "init"), (False, "trained")]
    for ax, (residual, when) in zip(axes, panels):
        variant_lines(ax, cells, residual, when, "rms", 0)
        ax.set(yscale="log", xlabel="layer (0 = embedding)", ylabel="stream RMS (log)",
               title=f"{'residual' if residual else 'no residual'}, {'at init' if when == 'init' else 'trained'}")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend(fontsize=6)
    return plots.save(fig, out, "q25_stream.png")


def plot_updates(results: dict[str, Any], out: Path) -> str:
    fig, (ax_init, ax_trained, ax_cos) = plots.figure(3)
    cells = results["cells"]
    for ax, when in ((ax_init, "init"), (ax_trained, "trained")):
        variant_lines(ax, cells, True, when, "update_ratio", 1)
        ax.axhline(1.0, color="grey", linestyle=":")
        ax.set(yscale="log", xlabel="sublayer (odd: attention, even: FFN)", ylabel="RMS(f) / RMS(stream) (log)",
               title=f"update / stream, residual, {'at init' if when == 'init' else 'trained'}")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend(fontsize=6)
    variant_lines(ax_cos, cells, True, "trained", "input_cos", 1)
    for norm, placement, residual in VARIANTS:
        if not residual:
            for c in select(cells, norm, placement, residual):
                if c["trained"] is not None:
                    values = c["trained"]["input_cos"]
                    ax_cos.plot(range(1, len(values) + 1), values, color=COLORS[(norm, placement)], alpha=0.45,
                                linestyle="--")
    ax_cos.plot([], [], color="grey", linestyle="--", label="no residual (dashed)")
    ax_cos.set(xlabel="layer", ylabel="cos(state, embedding state)", title="what is left of the input, trained")
    ax_cos.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax_cos.legend(fontsize=6)
    return plots.save(fig, out, "q25_updates.png")


# -- verdict and tables ---------------------------------------------------------------------------


def scale_text(stable: dict[tuple, dict[str, Any]]) -> str:
    bare = next(iter(stable.values()))
    growths = ", ".join(f"{variant_name(*k)} {v['init']['growth']:.2f}× → {v['trained']['growth']:.2f}×"
                        for k, v in stable.items())
    return (f"stream RMS max/min over depth, init → trained: {growths}; no norm "
            f"{bare['init']['none']:.3g}× → {bare['trained']['none']:.3g}×")


def carry_text(carried: dict[tuple, dict[str, Any]]) -> str:
    cosines = ", ".join(f"{variant_name(*k)} {v['trained']['on']:.2f} vs {v['trained']['off']:.2f} "
                        f"({v['init']['on']:.2f} vs {v['init']['off']:.2f})" for k, v in carried.items())
    updates = ", ".join(f"{variant_name(*k)} {v['trained']['update_ratio']:.2f}" for k, v in carried.items())
    return (f"last-layer cosine with the input, with vs without residual, trained (init): {cosines}; "
            f"median update/stream RMS, trained: {updates}")


def verdict(metrics: dict[str, Any]) -> tuple[str, str]:
    undecided = base.undecidable(metrics, MIN_SEEDS)
    if undecided:
        return undecided
    cells = metrics["results"]["cells"]
    stable, carried = stability(cells), carriage(cells)
    numbers = f"{scale_text(stable)}. The {carry_text(carried)}"
    steady = [variant_name(*k) for k, v in stable.items() if v["stable"] and v["norm_matters"]]
    carries = [variant_name(*k) for k, v in carried.items() if v["carries"]]
    if len(steady) == len(stable) and len(carries) == len(carried):
        return "confirmed", (f"every norm keeps the stream within {STABLE:g}× and the residual keeps the input "
                             f"(cosine gap ≥ {MIN_COS_GAP:g} beyond noise) in every wiring: {numbers}")
    if not steady and not carries:
        return "refuted", (f"no norm keeps the stream within {STABLE:g}× of its start, and the residual keeps no "
                           f"more of the input than its absence (cosine gap < {MIN_COS_GAP:g} or within noise): "
                           f"{numbers}")
    return "depends", (f"the stream stays within {STABLE:g}× (and the norm is why) in "
                       f"{', '.join(steady) or 'no wiring'}; "
                       f"the residual keeps the input (cosine gap ≥ {MIN_COS_GAP:g} beyond noise) in "
                       f"{', '.join(carries) or 'no wiring'}: {numbers}")


def tables(metrics: dict[str, Any]) -> list[Table]:
    """Per variant: stream growth, update ratio, input and token cosine (init → trained), held-out loss."""
    cells = metrics["results"]["cells"]
    rows = []
    for norm, placement, residual in VARIANTS:
        at = {w: summary(cells, norm, placement, residual, w) for w in ("init", "trained")}
        arrow = lambda key: f"{fmt(at['init'][key])} → {fmt(at['trained'][key])}"  # noqa: E731
        rows.append([variant_name(norm, placement, residual),
                     f"{fmt(base.mean(at['init']['growth']))} → {fmt(base.mean(at['trained']['growth']))}",
                     arrow("update_ratio"),
                     f"{fmt(base.mean(at['init']['input_cos']))} → {fmt(base.mean(at['trained']['input_cos']))}",
                     arrow("token_similarity"), q11.loss_text(select(cells, norm, placement, residual))])
    return [(["variant", "stream growth max/min (init → trained)", "median update/stream",
              "last-layer input cosine", "token cosine, last layer",
              "held-out loss (mean ± sd, finished runs)"], rows)]
