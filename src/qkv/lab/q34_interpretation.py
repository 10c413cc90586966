"""Question 34: how can a Transformer's decisions be interpreted? (可解释性)

Claims under test (as commonly answered): attention weights show which words a decision rests
on; most heads can be removed without hurting the model (Michel et al., 2019, "are sixteen heads
really better than one?"), and removing them makes it faster; gradient attributions such as
Integrated Gradients are faithful (they sum to the output change and depend on the weights).

Method, per seed: an SST-2 sentiment classifier trained from scratch with qkv's preset at a
small size (``classify-sst2``, cached like the other shared models), then on dev sentences:
1. Integrated Gradients per token (``qkv.interpret.attribution``): the completeness gap and the
   step count that closes it; the rank correlation of |IG| with the attention a token receives
   (last layer, heads averaged, over all queries) and with attention rollout; and Adebayo et
   al.'s check — the rank correlation of IG on the trained model with IG on re-initialised weights.
2. Head importance by ablation (dev loss with one head off) and by the head-mask gradient;
   their rank correlation; then the k least important heads (by gradient) physically pruned
   (``qkv.interpret.heads``): dev accuracy and forward time against the full model, and the
   accuracy change the summed ablation scores predicted.

Reproduce: ``qkv ask 34 --size full``.
"""

from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..data import load_sst2
from ..interpret import (ablation_importance, capture, classifier_ig, gradient_importance, prune_least_important,
                         rank_correlation, rollout)
from ..models import build_model
from . import base, plots, shared
from .table import Table, fmt

NUMBER = 34
TITLE = "How can its decisions be interpreted?"
KEYWORD = "可解释性"
CLAIMS = [
    "Attention weights show which tokens a decision rests on (they agree with a faithful attribution).",
    "Integrated Gradients is faithful: complete, and different for re-initialised weights.",
    "Half of the heads can be pruned for less than 1 accuracy point.",
    "Pruning heads makes inference faster.",
]
ANSWER = """\
Three families of explanation answer different questions. Attention weights say where a layer
read from, not what mattered: a token can be read and ignored by the value and output
projections, and information mixes across positions layer by layer, so the last layer's weights
describe mixtures, not words (rollout multiplies the layers to follow the mixing). Gradient
attributions ask what changes the output: Integrated Gradients integrates the gradient along the
straight path from a baseline (all padding) to the input, so its per-token scores sum exactly to
F(input) − F(baseline) — checkable — and must change when the weights are randomised, or they
explain the input rather than the model (Adebayo et al., 2018). Head ablation asks which parts
the model needs: zero one head and measure the loss, or take the head mask's gradient, then remove
the least needed heads physically. The measurements put numbers on each: agreement between
attention and IG, IG's completeness and randomisation check, and what pruning costs and saves."""
FULL_SEEDS = 3
SMOKE_SEEDS = 1
MIN_SEEDS = 3
N_SD = 2.0
AGREE = 0.5  # rank correlation above which attention "agrees" with IG
COMPLETE = 0.01  # relative completeness gap IG must reach
RANDOM_MAX = 0.5  # IG rank correlation with re-initialised weights must stay below this
MAX_DROP = 0.01  # accuracy points (fraction) a "little loss" allows
MIN_SPEEDUP = 1.1
SIZES = {
    "smoke": {"overrides": ["d_model=32", "n_layers=1", "n_heads=2", "d_ff=64", "vocab_size=500", "max_steps=3",
                            "max_epochs=none", "warmup_steps=1", "save_every=3", "eval_every=3"],
              "dev": 16, "ig": 3},
    "full": {"overrides": ["d_model=128", "n_layers=2", "n_heads=4", "d_ff=512", "max_epochs=1"], "dev": 872,
             "ig": 60},
}


def trained_classifier(size: str, seed: int) -> tuple[nn.Module, Any]:
    """The SST-2 classifier for (size, seed): trained by the preset on first use, then loaded."""
    model, tok, _ = shared.trained_by_preset("classify-sst2", [*SIZES[size]["overrides"], f"seed={seed}"],
                                             f"sst2-classifier-{size}-seed{seed}")
    return model, tok


def dev_batch(tok, n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    rows = load_sst2("dev")[:n]
    ids = [i[:128] for i in tok.encode_batch([t for t, _ in rows])]
    T = max(map(len, ids))
    batch = torch.full((len(ids), T), tok.pad_id, dtype=torch.long)
    for r, i in enumerate(ids):
        batch[r, : len(i)] = torch.tensor(i)
    return batch, batch != tok.pad_id, torch.tensor([y for _, y in rows])


def loss_fn(model: nn.Module, batch: dict) -> torch.Tensor:
    return F.cross_entropy(model(batch["ids"], batch["mask"]), batch["labels"])


@torch.no_grad()
def accuracy_and_time(model: nn.Module, ids, mask, labels) -> tuple[float, float]:
    model(ids[:8], mask[:8])  # warm-up
    start = time.perf_counter()
    logits = torch.cat([model(ids[i:i + 64], mask[i:i + 64]) for i in range(0, len(ids), 64)])
    return float((logits.argmax(-1) == labels).float().mean()), time.perf_counter() - start


def attention_received(model: nn.Module, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per token: attention it receives in the last layer (heads and queries averaged), and its
    attention-rollout share; both ``(T,)``."""
    with torch.no_grad(), capture(model, kinds=["self"]) as cap:
        model(ids)
    layers = [cap.weights("encoder", i)[0] for i in cap.layers("encoder")]  # each (1, H, T, T)
    return layers[-1].mean(dim=(1, 2))[0], rollout(layers).mean(dim=1)[0]


def attribution_row(model: nn.Module, random_model: nn.Module, ids: torch.Tensor) -> dict[str, float]:
    """IG on one sentence ``(1, T)``: completeness, steps, agreement with attention, randomisation."""
    ig = classifier_ig(model, ids)
    magnitude = ig["tokens"][0].abs()  # (T,)
    received, rolled = attention_received(model, ids)
    shuffled = classifier_ig(random_model, ids, target=ig["target"])["tokens"][0].abs()
    return {"gap": float(ig["delta"][0]), "steps": ig["steps"], "ig_vs_attention": rank_correlation(magnitude, received),
            "ig_vs_rollout": rank_correlation(magnitude, rolled), "ig_vs_random_weights": rank_correlation(magnitude, shuffled)}


def attributions(model: nn.Module, tok, s: dict, seed: int) -> dict[str, float]:
    torch.manual_seed(10_000 + seed)
    random_model = build_model(model.config).eval()  # Adebayo et al.: same architecture, fresh weights
    ids, mask, _ = dev_batch(tok, s["ig"])
    rows = [attribution_row(model, random_model, ids[i:i + 1, : int(mask[i].sum())]) for i in range(len(ids))]
    return {key: (max if key == "gap" else base.mean)([r[key] for r in rows]) for key in rows[0]}


def heads(model: nn.Module, tok, s: dict) -> dict[str, Any]:
    ids, mask, labels = dev_batch(tok, s["dev"])
    batches = [{"ids": ids[i:i + 128], "mask": mask[i:i + 128], "labels": labels[i:i + 128]}
               for i in range(0, len(ids), 128)]
    ablation = ablation_importance(model, batches, loss_fn)
    gradient = gradient_importance(model, batches, loss_fn)
    flat = lambda d: torch.tensor([v for key in sorted(d) for v in d[key]])  # noqa: E731
    pruned = copy.deepcopy(model)
    total = sum(len(v) for v in gradient.values())
    removed = prune_least_important(pruned, gradient, k=total // 2)
    full_acc, full_time = accuracy_and_time(model, ids, mask, labels)
    pruned_acc, pruned_time = accuracy_and_time(pruned, ids, mask, labels)
    times = [accuracy_and_time(m, ids, mask, labels)[1] for _ in range(2) for m in (model, pruned)]
    with torch.no_grad():
        loss = lambda m: base.mean([float(loss_fn(m, b)) for b in batches])  # noqa: E731
        actual = loss(pruned) - loss(model)
    return {"heads": total, "pruned": len(removed), "importance_rank_corr": rank_correlation(flat(ablation), flat(gradient)),
            "accuracy": full_acc, "pruned_accuracy": pruned_acc,
            "speedup": base.mean([times[i] / times[i + 1] for i in range(0, len(times), 2)] + [full_time / pruned_time]),
            "predicted_loss_change": sum(ablation[key][h] for key, h in removed), "actual_loss_change": actual,
            "ablation": {f"{k[0]}.{k[1]}": v for k, v in ablation.items()},
            "gradient": {f"{k[0]}.{k[1]}": v for k, v in gradient.items()}}


def run(size: str, seeds: int, out: Path) -> dict[str, Any]:
    started = time.perf_counter()
    s = SIZES[size]
    rows = []
    with base.one_thread():
        for seed in range(seeds):
            model, tok = trained_classifier(size, seed)
            rows.append({"seed": seed, **attributions(model, tok, s, seed), **heads(model, tok, s)})
    results = {"runs": rows}
    config_record = {"preset": "classify-sst2", "overrides": s["overrides"], "dev_sentences": s["dev"],
                     "ig_sentences": s["ig"], "ig_baseline": "padding embedding at every position",
                     "pruned": "half of all heads, least important by head-mask gradient", "threads": 1}
    names = [plot(results, out)]
    return base.finish(verdict, base.record(NUMBER, size, seeds, out, config_record, results, names, started), out)


# -- verdict, table, plot ---------------------------------------------------------------------------


def column(metrics: dict[str, Any], key: str) -> list[float]:
    return [r[key] for r in sorted(metrics["results"]["runs"], key=lambda r: r["seed"])]


def claim_outcomes(metrics: dict[str, Any]) -> dict[str, tuple[str, str]]:
    def against(values: list[float], threshold: float, above: bool) -> str:
        m, sd = base.mean(values), base.std(values)
        if (m - N_SD * sd > threshold) if above else (m + N_SD * sd < threshold):
            return "holds"
        return "fails" if ((m + N_SD * sd < threshold) if above else (m - N_SD * sd > threshold)) else "unclear"
    agree = column(metrics, "ig_vs_attention")
    drop = [a - b for a, b in zip(column(metrics, "accuracy"), column(metrics, "pruned_accuracy"))]
    complete = all(g <= COMPLETE for g in column(metrics, "gap"))
    randomised = against(column(metrics, "ig_vs_random_weights"), RANDOM_MAX, above=False)
    stat = lambda v: f"{base.mean(v):.3f} ± {base.std(v):.3f}"  # noqa: E731
    return {
        "attention agrees with IG": (against(agree, AGREE, True), f"rank correlation {stat(agree)}"),
        "IG is faithful": ("holds" if complete and randomised == "holds" else "fails" if not complete or
                           randomised == "fails" else "unclear",
                           f"largest completeness gap {max(column(metrics, 'gap')):.4f}, rank correlation with "
                           f"re-initialised weights {stat(column(metrics, 'ig_vs_random_weights'))}"),
        "half the heads prune for < 1 point": (against(drop, MAX_DROP, False), f"accuracy drop {stat(drop)}"),
        "pruning heads is faster": (against(column(metrics, "speedup"), MIN_SPEEDUP, True),
                                    f"speed-up {stat(column(metrics, 'speedup'))}"),
    }


def verdict(metrics: dict[str, Any]) -> tuple[str, str]:
    undecided = base.undecidable(metrics, MIN_SEEDS)
    if undecided:
        return undecided
    return base.claims_verdict(claim_outcomes(metrics), N_SD)


def tables(metrics: dict[str, Any]) -> list[Table]:
    keys = ("accuracy", "pruned_accuracy", "speedup", "importance_rank_corr", "predicted_loss_change",
            "actual_loss_change", "ig_vs_attention", "ig_vs_rollout", "ig_vs_random_weights", "gap", "steps")
    rows = [[k, f"{base.mean(column(metrics, k)):.4g} ± {base.std(column(metrics, k)):.2g}",
             ", ".join(fmt(v) for v in column(metrics, k))] for k in keys]
    claims = [[c, o, why] for c, (o, why) in claim_outcomes(metrics).items()] if metrics["seeds"] else []
    return [(["measure", "mean ± sd", "per seed"], rows), (["claim", "outcome", "numbers"], claims)]


def plot(results: dict[str, Any], out: Path) -> str:
    fig, (ax_corr, ax_heads) = plots.figure(2, width=5.0)
    m = {"results": results}
    for i, key in enumerate(("ig_vs_attention", "ig_vs_rollout", "ig_vs_random_weights")):
        plots.seed_points(ax_corr, i, column(m, key), f"C{i}", width=0.2)
    ax_corr.axhline(0, color="grey", linewidth=0.8)
    ax_corr.set(xticks=range(3), ylabel="Spearman rank correlation with |IG|", title="what agrees with IG")
    ax_corr.set_xticklabels(["last-layer\nattention", "attention\nrollout", "IG of re-initialised\nweights"], fontsize=8)
    for i, key in enumerate(("accuracy", "pruned_accuracy")):
        plots.seed_points(ax_heads, i, [100 * v for v in column(m, key)], f"C{i + 3}", width=0.2)
    ax_heads.set(xticks=range(2), ylabel="SST-2 dev accuracy (%)", title="half of the heads pruned")
    ax_heads.set_xticklabels(["all heads", "pruned"], fontsize=8)
    return plots.save(fig, out, "q34_interpretation.png")
