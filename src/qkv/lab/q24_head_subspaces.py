"""Question 24: how does multi-head attention use different subspaces? (多头子空间)

Claims under test (as commonly answered): each head projects the input into its own subspace and
so attends to a different kind of relation; heads specialise (some look at the previous token,
some spread wide); the heads' subspaces are different from one another.

Method, per seed: the lab's shared Shakespeare LM (``qkv.lab.shared``, 4 layers × 4 heads,
d_head 32 of d_model 128) against the same architecture at its initial weights. On held-out text,
``qkv.interpret.capture`` records every head's attention, and for each head:
* entropy of its attention rows (nats) and mean attended distance i − j;
* previous-token score: mean weight on key i − 1; first-token score: mean weight on key 0;
* diversity within a layer: the mean Jensen–Shannon divergence between the heads' attention rows.
And for the subspaces: the overlap of two heads' query (and value) row spaces, the mean squared
cosine of their principal angles — 1 for the same subspace, d_head/d_model (0.25 here) expected
for independent random ones.

Reproduce: ``qkv ask 24 --size full``.
"""

from __future__ import annotations

import itertools
import math
import time
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ..models import build_model
from ..interpret import capture
from . import base, plots, shared
from .table import Table

NUMBER = 24
TITLE = "How does multi-head attention use different subspaces?"
KEYWORD = "多头子空间"
CLAIMS = [
    "Trained heads attend differently from one another (more than at initialisation).",
    "Some heads specialise in a positional relation (e.g. the previous token).",
    "Each head works in its own subspace: heads' projections overlap no more than random subspaces.",
]
ANSWER = """\
Each head h has its own W_q^h, W_k^h, W_v^h of shape (d_head, d): it compares queries and keys
inside a d_head-dimensional projection and writes its values through its slice of W_o. Nothing
forces the projections apart — they start random and only the loss shapes them — so "different
subspaces" is a capacity the architecture offers, not a guarantee. Two heads are useful to have
when they compute different attention patterns, which can come from different subspaces or
from the same subspace read differently. The measurement separates these: how different the
heads' attention patterns are (Jensen–Shannon divergence, entropy, preferred offsets) after
training against at initialisation, and how much their projection subspaces overlap (principal
angles) against the overlap two random subspaces of that size have."""
FULL_SEEDS = 3
SMOKE_SEEDS = 1
MIN_SEEDS = 3
N_SD = 2.0
MIN_JS = 0.05  # nats: a diversity gain smaller than this does not count
SPECIALIST = 0.5  # a head putting this much weight on one offset is a specialist
SIZES = {"smoke": {"chars": 256, "windows": 2}, "full": {"chars": 8192, "windows": 32}}


def held_out(size: str) -> Tensor:
    context = shared.LM_SIZES[size]["context"]
    text = shared.shakespeare_ids("val")[: SIZES[size]["windows"] * context]
    return text.view(-1, context)  # (W, T)


@torch.no_grad()
def attention_maps(model: nn.Module, ids: Tensor) -> list[Tensor]:
    """Per layer, the ``(W, H, T, T)`` attention of every head over the windows."""
    with capture(model, kinds=["self"]) as cap:
        model(ids)
    return [cap.weights("decoder", i)[0] for i in cap.layers("decoder")]


def js_divergence(p: Tensor, q: Tensor) -> Tensor:
    """Jensen–Shannon divergence (nats) between attention rows ``(..., S)``."""
    m = 0.5 * (p + q)
    kl = lambda a: (a * (a.clamp(min=1e-12) / m.clamp(min=1e-12)).log()).sum(-1)  # noqa: E731
    return 0.5 * (kl(p) + kl(q))


def head_stats(w: Tensor) -> dict[str, list[float]]:
    """Per head of one layer's ``(W, H, T, T)`` weights: entropy, mean distance, previous/first token."""
    T = w.shape[-1]
    i, j = torch.arange(T)[:, None], torch.arange(T)[None, :]
    entropy = -(w * w.clamp(min=1e-12).log()).sum(-1)  # (W, H, T)
    distance = (w * (i - j).clamp(min=0)).sum(-1)
    previous = torch.diagonal(w, offset=-1, dim1=-2, dim2=-1)  # (W, H, T-1): weight on key i-1
    return {"entropy": entropy[..., 1:].mean(dim=(0, 2)).tolist(), "distance": distance.mean(dim=(0, 2)).tolist(),
            "previous": previous.mean(dim=(0, 2)).tolist(), "first": w[..., 1:, 0].mean(dim=(0, 2)).tolist()}


def diversity(w: Tensor) -> float:
    """Mean JS divergence between every pair of heads of one layer (rows after the first)."""
    pairs = itertools.combinations(range(w.shape[1]), 2)
    return base.mean([float(js_divergence(w[:, a, 1:], w[:, b, 1:]).mean()) for a, b in pairs])


def subspace_overlap(a: Tensor, b: Tensor) -> float:
    """Mean squared cosine of the principal angles between the row spaces of ``(k, d)`` a and b."""
    qa, qb = torch.linalg.qr(a.T)[0], torch.linalg.qr(b.T)[0]  # (d, k) orthonormal bases
    return float((torch.linalg.svdvals(qa.T @ qb) ** 2).mean())


def overlaps(model: nn.Module) -> dict[str, float]:
    """Mean overlap between heads of the same layer, for the query and the value projections."""
    out = {}
    for name in ("q_proj", "v_proj"):
        values = []
        for layer in model.decoder.layers:
            attn = layer.self_attn
            heads = getattr(attn, name).weight.detach().view(attn.n_heads, attn.d_head, -1)  # (H, D, d)
            values += [subspace_overlap(heads[a], heads[b]) for a, b in itertools.combinations(range(attn.n_heads), 2)]
        out[name] = base.mean(values)
    return out


def measure(model: nn.Module, ids: Tensor) -> dict[str, Any]:
    maps = attention_maps(model.eval(), ids)
    return {"layers": [head_stats(w) for w in maps], "diversity": [diversity(w) for w in maps],
            "overlap": overlaps(model)}


def run(size: str, seeds: int, out: Path) -> dict[str, Any]:
    started = time.perf_counter()
    ids = held_out(size)
    rows = []
    with base.one_thread():
        for seed in range(seeds):
            trained, record = shared.trained_lm(size, seed)
            torch.manual_seed(seed)
            initial = build_model(shared.lm_config(size))
            rows.append({"seed": seed, "trained": measure(trained, ids), "initial": measure(initial, ids),
                         "lm_val_loss": record["loss"]})
    cfg = shared.lm_config(size)
    results = {"runs": rows, "random_overlap": cfg.head_dim / cfg.d_model}
    config_record = {"model": f"shared Shakespeare LM ({size}): d {cfg.d_model}, {cfg.n_layers} layers, {cfg.n_heads} "
                              f"heads of {cfg.head_dim}", "held_out": f"{ids.numel()} characters of the validation text",
                     "threads": 1}
    names = [plot(results, out)]
    return base.finish(verdict, base.record(NUMBER, size, seeds, out, config_record, results, names, started), out)


# -- verdict, table, plot ---------------------------------------------------------------------------

MIN_OVERLAP_GAP = 0.05  # an overlap this far above random counts as shared subspaces


def per_seed(metrics: dict[str, Any], which: str, fn) -> list[float]:
    return [fn(r[which]) for r in sorted(metrics["results"]["runs"], key=lambda r: r["seed"])]


def best_previous(m: dict) -> float:
    return max(max(layer["previous"]) for layer in m["layers"])


def claim_outcomes(metrics: dict[str, Any]) -> dict[str, tuple[str, str]]:
    div = base.paired_effect(per_seed(metrics, "trained", lambda m: base.mean(m["diversity"])),
                             per_seed(metrics, "initial", lambda m: base.mean(m["diversity"])), N_SD, MIN_JS)
    prev_t, prev_i = per_seed(metrics, "trained", best_previous), per_seed(metrics, "initial", best_previous)
    random = metrics["results"]["random_overlap"]
    q = [o - random for o in per_seed(metrics, "trained", lambda m: m["overlap"]["q_proj"])]
    q_m, q_sd = base.mean(q), base.std(q)
    diverse = "holds" if div["significant"] else "fails" if div["mean"] + N_SD * div["sd"] < MIN_JS else "unclear"
    specialist = ("holds" if min(prev_t) > SPECIALIST and max(prev_i) < SPECIALIST else
                  "fails" if max(prev_t) < SPECIALIST else "unclear")
    own = ("fails" if q_m - N_SD * q_sd > MIN_OVERLAP_GAP else
           "holds" if q_m + N_SD * q_sd < MIN_OVERLAP_GAP else "unclear")
    return {
        "heads differ more after training": (diverse, f"JS diversity trained − initial {div['mean']:+.3f} ± {div['sd']:.3f} nats"),
        "a previous-token specialist appears": (specialist, f"best head's weight on i−1: trained "
                                                f"{base.mean(prev_t):.2f} (min {min(prev_t):.2f}), initial {base.mean(prev_i):.2f}"),
        "heads use their own subspaces": (own, f"query-subspace overlap − random ({random:.2f}) {q_m:+.3f} ± {q_sd:.3f}"),
    }


def verdict(metrics: dict[str, Any]) -> tuple[str, str]:
    undecided = base.undecidable(metrics, MIN_SEEDS)
    if undecided:
        return undecided
    return base.claims_verdict(claim_outcomes(metrics), N_SD)


def tables(metrics: dict[str, Any]) -> list[Table]:
    rows = []
    first = sorted(metrics["results"]["runs"], key=lambda r: r["seed"])[0]
    for which in ("trained", "initial"):
        for i, layer in enumerate(first[which]["layers"]):
            for h in range(len(layer["entropy"])):
                rows.append([which, str(i), str(h), f"{layer['entropy'][h]:.2f}", f"{layer['distance'][h]:.1f}",
                             f"{layer['previous'][h]:.2f}", f"{layer['first'][h]:.2f}"])
    heads = (["weights", "layer", "head", "entropy (nats)", "mean distance", "weight on i−1", "weight on token 0"], rows)
    claims = [[c, o, why] for c, (o, why) in claim_outcomes(metrics).items()] if metrics["seeds"] else []
    return [heads, (["claim", "outcome", "numbers"], claims)]


def plot(results: dict[str, Any], out: Path) -> str:
    fig, (ax_heads, ax_div) = plots.figure(2, width=5.0)
    for r in results["runs"]:
        for which, marker in (("trained", "o"), ("initial", "x")):
            layers = r[which]["layers"]
            ax_heads.scatter([h for layer in layers for h in layer["distance"]],
                             [h for layer in layers for h in layer["entropy"]], marker=marker, s=16, alpha=0.6,
                             color="C0" if which == "trained" else "C7", label=which if r["seed"] == 0 else None)
            ax_div.plot(range(len(r[which]["diversity"])), r[which]["diversity"], marker=marker,
                        color="C0" if which == "trained" else "C7", alpha=0.7, label=which if r["seed"] == 0 else None)
    ax_heads.set(xlabel="mean attended distance i − j (tokens)", ylabel="attention entropy (nats)",
                 title="each head (all layers, seeds)")
    ax_div.set(xlabel="layer", ylabel="mean JS divergence between heads (nats)", title="how different the heads are")
    ax_heads.legend(fontsize=8)
    ax_div.legend(fontsize=8)
    return plots.save(fig, out, "q24_head_subspaces.png")
