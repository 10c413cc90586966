"""Question 29: How is the output sequence generated? (生成)

Claims under test (as commonly answered): beam search finds better translations than greedy
decoding, more so with a length penalty (without one it prefers short outputs); a wider beam
costs speed; sampling with a higher temperature or a wider nucleus (top-p) makes text more
diverse and less fluent — a trade-off, not a free gain.

Method:
1. Beam grid: the lab's shared Multi30k de→en translator (``qkv.lab.shared.trained_translator``,
   seed 0; its recipe and BLEU in the record) decodes a fixed subset of the test set (the first
   sentences of test_2016_flickr; the full set does not fit the time budget at beam 12) with
   beams 1, 2, 4, 8, 12 × GNMT length penalty α 0, 0.6, 1.0: sacreBLEU (13a, lowercase) and
   sentences/s on one thread. One translator is trained (training three does not fit), so the
   noise of a BLEU difference is a paired bootstrap over the sentences, not over seeds.
2. Sampling: the shared Shakespeare LM (seed 0) continues a prompt at temperature 0.5, 0.8,
   1.0, 1.2 × top-p 0.8, 0.95, 1.0, several samples per sampling seed. Diversity: distinct-1/2
   (unique word n-grams / all n-grams over the samples) and self-BLEU (each sample scored
   against the others; high = alike). Quality: the loss of the generated characters under a
   judge, the shared LM of another seed (nats/char). Differences are paired by sampling seed.

Reproduce: ``qkv ask 29 --size full``.
"""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Any

import sacrebleu
import torch
from torch import nn

from ..tasks.common import mean_token_loss
from ..tasks.translation import translate
from ..data import load_multi30k
from . import base, plots, shared
from .table import Table, fmt

NUMBER = 29
TITLE = "How is the output sequence generated?"
KEYWORD = "生成"
CLAIMS = [
    "Beam search gives higher BLEU than greedy decoding; a length penalty helps it.",
    "A wider beam decodes fewer sentences per second.",
    "Higher temperature / top-p make samples more diverse and less fluent (a trade-off).",
]
ANSWER = """\
An autoregressive decoder produces one token at a time: it scores every vocabulary entry given
the source and the tokens so far, picks one, appends it, and repeats until EOS, reusing the
keys and values of earlier positions (the KV cache) so each step costs one position, not the
whole prefix. How it picks is the decoding rule. Greedy takes the argmax, the locally best
token, which need not lie on the most probable sentence. Beam search keeps the k best partial
hypotheses by total log-probability, so a token that looks worse now can win later; since every
token adds a negative log-probability, raw scores favour short outputs, which the GNMT length
penalty ((5+|Y|)/6)^α divides out. Each step costs about k times greedy's work. Sampling draws
from the softmax instead: temperature T divides the logits (T<1 sharpens, T>1 flattens), top-k
and top-p cut the tail, trading fluency for diversity. The beam grid (BLEU and sentences/s on
the shared translator, bootstrap over sentences) and the sampling grid (distinct-n, self-BLEU,
judge loss, per sampling seed) make these observed facts at this model's size."""
FULL_SEEDS = 3
SMOKE_SEEDS = 1
MIN_SEEDS = 3
N_SD = 2.0
MIN_BLEU = 0.3  # BLEU points: a smaller beam gain does not count
MIN_DISTINCT = 0.02  # distinct-2: a smaller rise in diversity does not count
MIN_JUDGE = 0.05  # nats/char: a smaller rise in judge loss does not count
BOOTSTRAP = 200
BEAMS = (1, 2, 4, 8, 12)
ALPHAS = (0.0, 0.6, 1.0)
TEMPERATURES = (0.5, 0.8, 1.0, 1.2)
TOP_PS = (0.8, 0.95, 1.0)
PROMPT = "ROMEO:\n"
SIZES = {
    "smoke": {"test_sentences": 8, "samples": 2, "new_chars": 16, "beams": (1, 2), "alphas": (0.0, 0.6)},
    "full": {"test_sentences": 300, "samples": 8, "new_chars": 120, "beams": BEAMS, "alphas": ALPHAS},
}


def distinct_n(texts: list[str], n: int) -> float:
    """Unique word n-grams over all n-grams of the samples (Li et al., 2016); 0 if none."""
    grams = [tuple(words[i:i + n]) for words in (t.split() for t in texts) for i in range(len(words) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 0.0


def self_bleu(texts: list[str]) -> float:
    """Mean sentence BLEU of each sample against the others as references (Zhu et al., 2018)."""
    scores = [sacrebleu.sentence_bleu(t, [o for j, o in enumerate(texts) if j != i]).score
              for i, t in enumerate(texts)]
    return sum(scores) / len(scores)


def bootstrap_diff(a: list[str], b: list[str], refs: list[str], n: int = BOOTSTRAP) -> dict[str, float]:
    """BLEU(a) − BLEU(b) on the sentences, with its sd over paired resamples of the sentences."""
    bleu = lambda hyps, idx: sacrebleu.corpus_bleu([hyps[i] for i in idx], [[refs[i] for i in idx]],  # noqa: E731
                                                   lowercase=True).score
    every = list(range(len(refs)))
    rng = random.Random(0)
    diffs = []
    for _ in range(n):
        idx = [rng.randrange(len(refs)) for _ in every]
        diffs.append(bleu(a, idx) - bleu(b, idx))
    return {"mean": bleu(a, every) - bleu(b, every), "sd": base.std(diffs)}


def beam_grid(model: nn.Module, tok, s: dict) -> tuple[list[dict], dict[str, list[str]], list[str]]:
    pairs = load_multi30k("test")[: s["test_sentences"]]
    sources, refs = [p[0] for p in pairs], [p[1] for p in pairs]
    rows, hyps = [], {}
    for beams in s["beams"]:
        for alpha in s["alphas"]:
            start = time.perf_counter()
            out = translate(model, tok, sources, beams=beams, length_alpha=alpha, truncate=True)
            seconds = time.perf_counter() - start
            bleu = sacrebleu.corpus_bleu(out, [refs], lowercase=True).score
            words = sum(len(h.split()) for h in out) / sum(len(r.split()) for r in refs)
            hyps[f"{beams}/{alpha}"] = out
            rows.append({"beams": beams, "alpha": alpha, "bleu": bleu, "sentences_per_s": len(out) / seconds,
                         "length_ratio": words})
    return rows, hyps, refs


def samples(lm: nn.Module, seed: int, temperature: float, top_p: float, s: dict) -> tuple[torch.Tensor, list[str]]:
    """Sampled continuations of the prompt: the ids ``(N, P + new)`` and the new text of each."""
    prompt = torch.tensor([list(PROMPT.encode())] * s["samples"]) + shared.FIRST_BYTE  # (N, P)
    ids = lm.generate(prompt, max_new_tokens=s["new_chars"], do_sample=True, temperature=temperature,
                      top_p=top_p, seed=seed, eos_id=None)  # (N, P + new)
    texts = [bytes((row[prompt.shape[1]:] - shared.FIRST_BYTE).clamp(0, 255).tolist()).decode("utf-8", "replace")
             for row in ids]
    return ids, texts


@torch.no_grad()
def judge_loss(judge: nn.Module, ids: torch.Tensor) -> float:
    """Loss of the generated characters ``ids (N, P + new)`` under ``judge``, given the prompt (nats/char)."""
    labels = ids[:, 1:].clone()  # (N, P + new - 1)
    labels[:, : len(PROMPT.encode()) - 1] = -100  # score the generated part only
    return mean_token_loss(judge, [{"input_ids": ids[:, :-1], "labels": labels}])["loss"]


def sampling_grid(size: str, seeds: int, s: dict) -> list[dict]:
    lm, _ = shared.trained_lm(size, 0)
    judge, _ = shared.trained_lm(size, 1)
    rows = []
    for seed in range(seeds):
        for t in TEMPERATURES:
            for p in TOP_PS:
                ids, texts = samples(lm, seed, t, p, s)
                rows.append({"seed": seed, "temperature": t, "top_p": p, "distinct_1": distinct_n(texts, 1),
                             "distinct_2": distinct_n(texts, 2), "self_bleu": self_bleu(texts),
                             "judge_loss": judge_loss(judge, ids), "sample": texts[0][:80]})
    return rows


def run(size: str, seeds: int, out: Path) -> dict[str, Any]:
    started = time.perf_counter()
    s = SIZES[size]
    with base.one_thread():
        model, tok, record = shared.trained_translator(size, 0)
        grid, hyps, refs = beam_grid(model, tok, s)
        best = max((r for r in grid if r["beams"] > 1), key=lambda r: r["bleu"])
        greedy = hyps[f"1/{s['alphas'][0]}"]
        recipe = "4/0.6" if "4/0.6" in hyps else f"{s['beams'][-1]}/{s['alphas'][-1]}"
        gains = {"recipe_vs_greedy": {"cell": recipe, **bootstrap_diff(hyps[recipe], greedy, refs)},
                 "best_vs_greedy": {"cell": f"{best['beams']}/{best['alpha']}",
                                    **bootstrap_diff(hyps[f"{best['beams']}/{best['alpha']}"], greedy, refs)}}
        sampling = sampling_grid(size, seeds, s)
    translator = {k: v for k, v in record.items() if k != "examples"}
    results = {"beam_grid": grid, "beam_gain": gains, "sampling": sampling, "translator": translator}
    config = {**{k: list(v) if isinstance(v, tuple) else v for k, v in s.items()}, "translator": "shared, seed 0",
              "translator_size": shared.TRANSLATOR_SIZES[size],
              "test_subset": f"first {s['test_sentences']} of test_2016_flickr",
              "bootstrap": BOOTSTRAP, "lm": "shared Shakespeare LM seed 0", "judge": "shared Shakespeare LM seed 1",
              "temperatures": list(TEMPERATURES), "top_ps": list(TOP_PS), "prompt": PROMPT}
    names = [plot(results, out)]
    return base.finish(verdict, base.record(NUMBER, size, seeds, out, config, results, names, started), out)


def plot(results: dict[str, Any], out: Path) -> str:
    fig, (ax_bleu, ax_speed, ax_trade) = plots.figure(3, width=4.0)
    grid = results["beam_grid"]
    for i, alpha in enumerate(sorted({r["alpha"] for r in grid})):
        rows = sorted((r for r in grid if r["alpha"] == alpha), key=lambda r: r["beams"])
        ax_bleu.plot([r["beams"] for r in rows], [r["bleu"] for r in rows], "o-", color=f"C{i}", label=f"α = {alpha}")
        ax_speed.plot([r["beams"] for r in rows], [r["sentences_per_s"] for r in rows], "o-", color=f"C{i}")
    ax_bleu.set(xlabel="beam size", ylabel="BLEU (sacreBLEU, lowercase)", title="translator, test subset")
    ax_bleu.legend(fontsize=8)
    ax_speed.set(xlabel="beam size", ylabel="sentences / s (1 thread)", yscale="log", title="decoding speed")
    for j, p in enumerate(TOP_PS):
        for t in TEMPERATURES:
            rows = [r for r in results["sampling"] if r["temperature"] == t and r["top_p"] == p]
            ax_trade.scatter([r["distinct_2"] for r in rows], [r["judge_loss"] for r in rows], color=f"C{j}",
                             s=10 + 25 * t, alpha=0.7, label=f"top-p {p}" if t == TEMPERATURES[0] else None)
    ax_trade.set(xlabel="distinct-2 (higher = more diverse)", ylabel="judge loss (nats/char)",
                 title="sampling: point size = temperature")
    ax_trade.legend(fontsize=8)
    return plots.save(fig, out, "q29_generation.png")


def _sampling_cell(metrics: dict, t: float, p: float, key: str) -> list[float]:
    rows = sorted((r for r in metrics["results"]["sampling"] if r["temperature"] == t and r["top_p"] == p),
                  key=lambda r: r["seed"])
    return [r[key] for r in rows]


def effects(metrics: dict[str, Any]) -> dict[str, Any]:
    hot, cold = (max(TEMPERATURES), 1.0), (min(TEMPERATURES), 1.0)
    gain = metrics["results"]["beam_gain"]["recipe_vs_greedy"]
    grid = metrics["results"]["beam_grid"]
    speed = {b: base.mean([r["sentences_per_s"] for r in grid if r["beams"] == b]) for b in {r["beams"] for r in grid}}
    return {
        "beam": {**gain, "significant": gain["mean"] > N_SD * gain["sd"] and gain["mean"] > MIN_BLEU},
        "diversity": base.paired_effect(_sampling_cell(metrics, *hot, "distinct_2"),
                                        _sampling_cell(metrics, *cold, "distinct_2"), N_SD, MIN_DISTINCT),
        "quality_cost": base.paired_effect(_sampling_cell(metrics, *hot, "judge_loss"),
                                           _sampling_cell(metrics, *cold, "judge_loss"), N_SD, MIN_JUDGE),
        "slowdown": speed[min(speed)] / speed[max(speed)],
    }


def verdict(metrics: dict[str, Any]) -> tuple[str, str]:
    undecided = base.undecidable(metrics, MIN_SEEDS)
    if undecided:
        return undecided
    e = effects(metrics)
    b, d, q = e["beam"], e["diversity"], e["quality_cost"]
    numbers = (f"beam {b['cell']} − greedy {b['mean']:+.2f} ± {b['sd']:.2f} BLEU (bootstrap over sentences); "
               f"greedy decodes {e['slowdown']:.1f}× the sentences/s of the widest beam; "
               f"T {max(TEMPERATURES)} − T {min(TEMPERATURES)}: distinct-2 {d['mean']:+.3f} ± {d['sd']:.3f}, "
               f"judge loss {q['mean']:+.3f} ± {q['sd']:.3f} nats/char (paired by sampling seed)")
    held = {"beam beats greedy": b["significant"], "sampling trade-off": d["significant"] and q["significant"]}
    if all(held.values()):
        return "confirmed", f"both beyond {N_SD:g} sd of the noise: {numbers}"
    if not any(held.values()):
        return "refuted", f"neither beam's gain nor the sampling trade-off beyond the noise: {numbers}"
    shown = ", ".join(k for k, v in held.items() if v)
    return "depends", f"only {shown} beyond {N_SD:g} sd of the noise: {numbers}"


def tables(metrics: dict[str, Any]) -> list[Table]:
    r = metrics["results"]
    beam_rows = [[str(x["beams"]), fmt(x["alpha"]), f"{x['bleu']:.2f}", f"{x['length_ratio']:.3f}",
                  f"{x['sentences_per_s']:.1f}"]
                 for x in sorted(r["beam_grid"], key=lambda x: (x["beams"], x["alpha"]))]
    first = (["beams", "length α", "BLEU", "hyp/ref words", "sentences/s"], beam_rows)
    stat = lambda xs: f"{base.mean(xs):.3f} ± {base.std(xs):.3f}"  # noqa: E731
    sample_rows = []
    for t in TEMPERATURES:
        for p in TOP_PS:
            rows = [x for x in r["sampling"] if x["temperature"] == t and x["top_p"] == p]
            sample_rows.append([fmt(t), fmt(p)] + [stat([x[k] for x in rows]) for k in
                                                   ("distinct_1", "distinct_2", "self_bleu", "judge_loss")]
                               + [repr(rows[0]["sample"][:50])])
    second = (["temperature", "top-p", "distinct-1", "distinct-2", "self-BLEU", "judge loss (nats/char)",
               "seed-0 sample"], sample_rows)
    return [first, second]
