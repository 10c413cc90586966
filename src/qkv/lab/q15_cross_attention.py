"""Question 15: how do the encoder and decoder interact? (交互)

Claims under test (as commonly answered): the decoder reads the encoder through
cross-attention — queries from the decoder, keys and values from the encoder's last layer —
and its weights act as a soft alignment: each generated word attends to the source word it
translates; the alignment is clearest in the upper layers.

Method, per seed: a Multi30k de→en translator trained with qkv's preset at a small size
(``translate-de-en``, cached like the other shared models) translates test_2016_flickr
sentences greedily. The same tokens are aligned by an IBM Model 1 aligner trained by EM on the
Multi30k training pairs in the translator's own vocabulary (``qkv.interpret.align``) — a
statistical word aligner that never sees the network. For every decoder layer and head, and for
the heads' mean, the cross-attention of each output token (``qkv.interpret.capture``, teacher-
forced on the model's own output) gives a link to its most attended source token; its
alignment error against IBM Model 1 (1 − F1) is set beside that of the diagonal baseline (output
token j linked to source j·S/T), which knows only the lengths.

Reproduce: ``qkv ask 15 --size full``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..data import load_multi30k
from ..interpret import capture
from ..interpret.align import IBMModel1, alignment_error, attention_links, diagonal_links
from . import base, plots, shared
from .table import Table

NUMBER = 15
TITLE = "How do encoder and decoder interact?"
KEYWORD = "交互"
CLAIMS = [
    "Cross-attention aligns each output token with the source token it translates (better than the "
    "length-only diagonal).",
    "The alignment is clearest in the last decoder layer.",
]
ANSWER = """\
The encoder turns the source into one vector per token (its last layer's output, the "memory").
Each decoder layer has, after its masked self-attention, a cross-attention sublayer: queries
are the decoder's states, keys and values are projections of the memory — the same memory for
every decoder layer, so the source is computed once and read N times, and at generation time
its keys and values are cached once per sentence. Nothing in the loss asks cross-attention to
align words; it only has to fetch what predicting the next token needs, which often is the
source word being translated, but can be a neighbour, a punctuation mark or the end token
that carries sentence-level information. The measurement asks how often the most attended
source token is the one a classical statistical aligner (IBM Model 1) links, per layer and
head, against a baseline that knows only the sentence lengths."""
FULL_SEEDS = 3
SMOKE_SEEDS = 1
MIN_SEEDS = 3
N_SD = 2.0
MIN_GAIN = 0.05  # alignment error below the diagonal's by at least this counts as aligning
SIZES = {
    "smoke": {"overrides": ["d_model=32", "n_layers=1", "n_heads=2", "d_ff=64", "vocab_size=300", "train_limit=200",
                            "test_limit=4", "max_steps=3", "save_every=3", "warmup_steps=1"],
              "sentences": 8, "ibm_pairs": 200, "ibm_iterations": 2},
    "full": {"overrides": ["d_model=128", "n_layers=2", "n_heads=4", "d_ff=512", "max_epochs=none", "max_steps=1500",
                           "save_every=300", "warmup_steps=400", "test_limit=200"],
             "sentences": 200, "ibm_pairs": 29000, "ibm_iterations": 10},
}


def trained_translator(size: str, seed: int) -> tuple[nn.Module, Any, dict]:
    """The small Multi30k translator for (size, seed): trained by the preset on first use."""
    return shared.trained_by_preset("translate-de-en", [*SIZES[size]["overrides"], f"seed={seed}"],
                                    f"multi30k-translator-q15-{size}-seed{seed}")


def aligner(tok, s: dict) -> IBMModel1:
    pairs = load_multi30k("train")[: s["ibm_pairs"]]
    src = tok.encode_batch([de for de, _ in pairs], add_special_tokens=False)
    tgt = tok.encode_batch([en for _, en in pairs], add_special_tokens=False)
    return IBMModel1(list(zip(src, tgt)), source_vocab=tok.vocab_size, iterations=s["ibm_iterations"])


@torch.no_grad()
def sentence_links(model: nn.Module, src_ids: list[int]) -> tuple[list[int], dict[tuple[int, int], torch.Tensor]]:
    """The greedy translation's tokens and every decoder layer's ``(H, T, S)`` cross-attention over it."""
    cfg = model.config
    src = torch.tensor([src_ids + [cfg.eos_id]])  # (1, S)
    out = model.generate(src, max_new_tokens=min(cfg.max_len - 1, 2 * len(src_ids) + 10))[0].tolist()
    out = out[: out.index(cfg.eos_id)] if cfg.eos_id in out else out
    start = cfg.decoder_start_id if cfg.decoder_start_id is not None else cfg.bos_id
    with capture(model, kinds=["cross"]) as cap:
        model(src, torch.tensor([[start] + out]))
    return out, {layer: cap.weights("decoder", layer, "cross")[0][0, :, : len(out), : len(src_ids)]
                 for layer in cap.layers("decoder", "cross")}


def alignment_errors(model: nn.Module, tok, ibm: IBMModel1, s: dict) -> dict[str, Any]:
    """Mean alignment error per (layer, head), per layer for the heads' mean, and of the diagonal."""
    rows = load_multi30k("test")[: s["sentences"]]
    per_head: dict[str, list[float]] = {}
    diagonal = []
    for de, _ in rows:
        src_ids = tok.encode(de, add_special_tokens=False)[: model.config.max_len - 2]
        out, cross = sentence_links(model, src_ids)
        if not out or not src_ids:
            continue
        reference = ibm.viterbi(src_ids, out)
        diagonal.append(alignment_error(diagonal_links(len(out), len(src_ids)), reference))
        for layer, w in cross.items():  # w: (H, T, S)
            per_head.setdefault(f"{layer}.mean", []).append(alignment_error(attention_links(w.mean(0)), reference))
            for h in range(w.shape[0]):
                per_head.setdefault(f"{layer}.{h}", []).append(alignment_error(attention_links(w[h]), reference))
    return {"heads": {k: base.mean(v) for k, v in per_head.items()}, "diagonal": base.mean(diagonal),
            "sentences": len(diagonal)}


def run(size: str, seeds: int, out: Path) -> dict[str, Any]:
    started = time.perf_counter()
    s = SIZES[size]
    rows = []
    with base.one_thread():
        for seed in range(seeds):
            model, tok, results = trained_translator(size, seed)
            ibm = aligner(tok, s)
            rows.append({"seed": seed, "bleu": results.get("bleu"), **alignment_errors(model, tok, ibm, s)})
    config_record = {"preset": "translate-de-en", "overrides": s["overrides"], "test_sentences": s["sentences"],
                     "ibm_model_1": f"{s['ibm_pairs']} training pairs, {s['ibm_iterations']} EM iterations, "
                                    "the translator's tokens", "decoding": "greedy", "threads": 1}
    results = {"runs": rows}
    names = [plot(results, out)]
    return base.finish(verdict, base.record(NUMBER, size, seeds, out, config_record, results, names, started), out)


# -- verdict, table, plot ---------------------------------------------------------------------------


def best_head(run: dict) -> tuple[str, float]:
    heads = {k: v for k, v in run["heads"].items() if not k.endswith(".mean")}
    key = min(heads, key=heads.get)
    return key, heads[key]


def layer_of(key: str) -> int:
    return int(key.split(".")[0])


def claim_outcomes(metrics: dict[str, Any]) -> dict[str, tuple[str, str]]:
    runs = sorted(metrics["results"]["runs"], key=lambda r: r["seed"])
    diag, best = [r["diagonal"] for r in runs], [best_head(r)[1] for r in runs]
    gain = base.paired_effect(diag, best, N_SD, MIN_GAIN)
    aligns = "holds" if gain["significant"] else "fails" if gain["mean"] + N_SD * gain["sd"] < MIN_GAIN else "unclear"
    layers = sorted({layer_of(k) for k in runs[0]["heads"]})
    means = {layer: [r["heads"][f"{layer}.mean"] for r in runs] for layer in layers}
    last = layers[-1]
    others = [layer for layer in layers if layer != last]
    if not others:
        clearest = ("unclear", "one decoder layer: nothing to compare")
    else:
        effects = [base.paired_effect(means[o], means[last], N_SD, 0.0) for o in others]
        worse = [base.paired_effect(means[last], means[o], N_SD, 0.0)["significant"] for o in others]
        outcome = "holds" if all(e["significant"] for e in effects) else "fails" if any(worse) else "unclear"
        clearest = (outcome, ", ".join(f"layer {layer} mean-head error {base.mean(means[layer]):.3f}" for layer in layers))
    best_names = ", ".join(best_head(r)[0] for r in runs)
    return {
        "cross-attention aligns better than the diagonal": (
            aligns, f"best head error {base.mean(best):.3f} vs diagonal {base.mean(diag):.3f} (gain {gain['mean']:+.3f} "
                    f"± {gain['sd']:.3f}; best heads, layer.head: {best_names})"),
        "the last layer aligns best": clearest,
    }


def verdict(metrics: dict[str, Any]) -> tuple[str, str]:
    undecided = base.undecidable(metrics, MIN_SEEDS)
    if undecided:
        return undecided
    return base.claims_verdict(claim_outcomes(metrics), N_SD)


def tables(metrics: dict[str, Any]) -> list[Table]:
    runs = metrics["results"]["runs"]
    keys = sorted(runs[0]["heads"], key=lambda k: (layer_of(k), k))
    rows = [[k.replace(".", " / head "), f"{base.mean([r['heads'][k] for r in runs]):.3f} ± "
             f"{base.std([r['heads'][k] for r in runs]):.3f}"] for k in keys]
    rows.append(["diagonal (lengths only)", f"{base.mean([r['diagonal'] for r in runs]):.3f}"])
    claims = [[c, o, why] for c, (o, why) in claim_outcomes(metrics).items()] if metrics["seeds"] else []
    bleu = [["BLEU of each seed's translator (test, beam 4)", ", ".join(str(r.get("bleu")) for r in runs)]]
    return [(["decoder layer / head", "alignment error vs IBM Model 1 (1 − F1)"], rows),
            (["claim", "outcome", "numbers"], claims), (["", ""], bleu)]


def plot(results: dict[str, Any], out: Path) -> str:
    fig, (ax,) = plots.figure(1, width=7.0)
    runs = results["runs"]
    keys = sorted(runs[0]["heads"], key=lambda k: (layer_of(k), k))
    for i, k in enumerate(keys):
        plots.seed_points(ax, i, [r["heads"][k] for r in runs], "C1" if k.endswith(".mean") else "C0", width=0.3)
    ax.axhline(base.mean([r["diagonal"] for r in runs]), color="C3", linestyle="--", label="diagonal baseline")
    ax.set_xticks(range(len(keys)))
    ax.set_xticklabels([k.replace(".mean", " mean").replace(".", "/") for k in keys], rotation=60, fontsize=7)
    ax.set(ylabel="alignment error vs IBM Model 1 (1 − F1)", xlabel="decoder layer / head",
           title="cross-attention argmax as a word alignment (lower is better)")
    ax.legend(fontsize=8)
    return plots.save(fig, out, "q15_cross_attention.png")
