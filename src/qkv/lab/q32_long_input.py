"""Question 32: sequence-length limits; how are very long inputs handled? (长文本)

Claims under test (as commonly answered): a Transformer is limited to the length it was trained
on; ALiBi (and, less so, RoPE) extrapolate to longer inputs; evaluating a long text in
non-overlapping chunks overstates the loss, a sliding (strided) evaluation gives each token its
context back; a sliding attention window loses long-range information; Transformer-XL's segment
memory lets a model use context beyond its segment and improves perplexity.

Method: byte-level LMs on Jane Austen's novels (the train split's four novels; Northanger
Abbey, the validation split, held out), trained at context C with the same steps, batches and seeds: RoPE, ALiBi, and RoPE
trained Transformer-XL style — consecutive segments of C with a memory of C (keys/values of the
previous segment, no gradient into it). Each is evaluated on the same held-out text, nats per
character:
1. ``chunks``: non-overlapping windows of C (each token sees 0 … C-1 tokens before it);
2. ``strided``: windows of C every C/4 tokens, scoring only the last C/4 (every token sees at
   least 3C/4 tokens);
3. ``long``: windows of 4C and 16C at once (extrapolation past the trained length);
4. ``window``: windows of 16C with a sliding attention window of C (every token sees exactly
   the C before it, at O(n·C) cost);
5. ``memory``: consecutive segments of C with a memory of C (every token sees C to 2C before it).
Time per token of each evaluation is recorded beside its loss.

Reproduce: ``qkv ask 32 --size full``.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import ModelConfig
from ..data import load_austen, random_lm_batch, sequential_lm_batches, strided_lm_windows
from ..models import build_model
from ..train.schedules import cosine
from . import base, plots
from .table import Table, fmt

NUMBER = 32
TITLE = "Sequence-length limits; handling very long input"
KEYWORD = "长文本"
CLAIMS = [
    "ALiBi extrapolates: evaluated on 4–16× its training length its loss does not get worse.",
    "RoPE does not extrapolate: on longer inputs than trained its loss gets worse.",
    "Non-overlapping chunks overstate the loss; strided evaluation gives it back.",
    "A sliding attention window loses long-range information (longer context would help).",
    "Transformer-XL's segment memory improves the loss at equal segment length (for the model trained with "
    "it, and against a model trained without).",
]
ANSWER = """\
Self-attention has no recurrence, so nothing in it fixes a length — the limits come from the
position scheme and from cost. Learned positions stop at max_len; sinusoids and rotary angles
go on but produce relative offsets the model never saw; ALiBi adds a penalty linear in distance
that the model learned to read at every offset up to its training length and extends naturally.
Cost is the other limit: full attention is O(n²) time, so long inputs are cut. The ways around
it trade context for compute: chunks are cheapest but give the first tokens of every chunk no
context; a strided (sliding) evaluation re-reads overlap so every token keeps most of its
context, at context/stride times the compute; a sliding attention window keeps cost O(n·w) but
never lets a token see past w; a segment memory (Transformer-XL) carries the previous segment's
keys and values forward, so a model trained on short segments reads twice as far at inference
for the price of attending to one more segment. The measurements put a number on each: loss
(nats/char) and time per token on held-out Austen, per method and per position scheme."""
FULL_SEEDS = 3
SMOKE_SEEDS = 1
MIN_SEEDS = 3
N_SD = 2.0
MIN_GAP = 0.01  # nats/char: differences smaller than this do not count either way
MODELS = ("rope", "alibi", "rope_xl")
SIZES = {
    "smoke": {"d_model": 32, "n_layers": 1, "context": 16, "steps": 6, "batch": 4, "eval_chars": 4096},
    "full": {"d_model": 128, "n_layers": 3, "context": 128, "steps": 600, "batch": 16, "eval_chars": 65536},
}
LR = 2e-3
FIRST_BYTE = 4  # ids 0–3 reserved, byte b is id b + 4 (as qkv.lab.shared)


def austen_ids(split: str) -> Tensor:
    data = load_austen(split).encode("utf-8")
    return torch.frombuffer(bytearray(data), dtype=torch.uint8).long() + FIRST_BYTE  # (N,)


def config(s: dict, position: str, **changes: Any) -> ModelConfig:
    settings = dict(family="lm", vocab_size=256 + FIRST_BYTE, d_model=s["d_model"], n_layers=s["n_layers"],
                    n_heads=4 if s["d_model"] >= 64 else 2, d_ff=4 * s["d_model"], max_len=s["context"],
                    position=position, norm_placement="pre", dropout_embed=0.0, dropout_residual=0.0)
    return ModelConfig(**{**settings, **changes})


def lm_loss(model: nn.Module, ids: Tensor, labels: Tensor, cache=None) -> Tensor:
    logits = model(ids, cache=cache) if cache is not None else model(ids)  # (B, T, V)
    return F.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=-100)


def segment_batches(stream: Tensor, s: dict, steps: int) -> list[tuple[Tensor, Tensor, bool]]:
    """XL training data: the stream cut into ``batch`` contiguous lanes; step i reads segment i of
    every lane, so each row continues the row before it. The flag says a pass over the lanes
    starts again (the memory is then emptied)."""
    C, B = s["context"], s["batch"]
    lane = len(stream) // B
    lanes = stream[: lane * B].view(B, lane)  # (B, lane)
    per_pass = (lane - 1) // C
    out = []
    for i in range(steps):
        start = (i % per_pass) * C
        window = lanes[:, start:start + C + 1]  # (B, C + 1)
        out.append((window[:, :-1], window[:, 1:], start == 0))
    return out


def train(name: str, s: dict, seed: int, stream: Tensor) -> nn.Module:
    """One model, same optimiser, schedule and token count for every kind."""
    torch.manual_seed(seed)
    xl = name == "rope_xl"
    model = build_model(config(s, "alibi" if name == "alibi" else "rope", xl_memory=s["context"] if xl else None))
    opt = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda i: cosine(i, warmup=s["steps"] // 10, total=s["steps"]))
    gen = torch.Generator().manual_seed(1000 + seed)
    segments = segment_batches(stream, s, s["steps"]) if xl else None
    memory = None
    model.train()
    for step in range(s["steps"]):
        if xl:
            ids, labels, fresh = segments[step]
            memory = model.new_cache(max_len=s["context"]) if fresh else memory
        else:
            batch = random_lm_batch(stream, s["context"], s["batch"], gen)
            ids, labels = batch["input_ids"], batch["labels"]
        loss = lm_loss(model, ids, labels, cache=memory)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
    return model.eval()


# -- evaluation ---------------------------------------------------------------------------------


def variant(model: nn.Module, s: dict, position: str, **changes: Any) -> nn.Module:
    """The same weights under another config (longer max_len, a window, a memory)."""
    other = build_model(config(s, position, **changes))
    other.load_state_dict(model.state_dict())
    return other.eval()


def summed_loss(model: nn.Module, batches) -> tuple[float, int]:
    total, count = 0.0, 0
    for ids, labels in batches:
        logits = model(ids)  # (B, T, V)
        total += float(F.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=-100, reduction="sum"))
        count += int((labels != -100).sum())
    return total, count


def windows(held: Tensor, length: int, batch: int = 8):
    for b in sequential_lm_batches(held, length, batch):
        yield b["input_ids"], b["labels"]


def strided(held: Tensor, C: int, batch: int = 32):
    w = strided_lm_windows(held, C, C // 4)
    for i in range(0, len(w["input_ids"]), batch):
        yield w["input_ids"][i:i + batch], w["labels"][i:i + batch]


def memory_loss(model: nn.Module, held: Tensor, C: int, lanes: int = 4) -> tuple[float, int]:
    """Consecutive segments of C over ``lanes`` contiguous parts of the text, with a memory of C."""
    n = (len(held) - 1) // (lanes * C) * C  # targets per lane, whole segments
    inputs = torch.stack([held[i * n: (i + 1) * n] for i in range(lanes)])  # (L, n)
    targets = torch.stack([held[i * n + 1: (i + 1) * n + 1] for i in range(lanes)])
    memory, total = model.new_cache(max_len=C), 0.0
    for start in range(0, n, C):
        logits = model(inputs[:, start:start + C], cache=memory)  # (L, C, V)
        total += float(F.cross_entropy(logits.flatten(0, 1), targets[:, start:start + C].flatten(), reduction="sum"))
    return total, lanes * n


@torch.no_grad()
def evaluate(name: str, model: nn.Module, s: dict, held: Tensor) -> dict[str, dict[str, float]]:
    """loss (nats/char), time per character (µs) and mean tokens of context, per method."""
    C, position = s["context"], "alibi" if name == "alibi" else "rope"
    methods = {
        "chunks": (lambda: summed_loss(model, windows(held, C)), (C - 1) / 2),
        "strided": (lambda: summed_loss(model, strided(held, C)), C - C / 8 - 0.5),
        "long_4x": (lambda: summed_loss(variant(model, s, position, max_len=4 * C), windows(held, 4 * C, 4)),
                    (4 * C - 1) / 2),
        "long_16x": (lambda: summed_loss(variant(model, s, position, max_len=16 * C), windows(held, 16 * C, 1)),
                     (16 * C - 1) / 2),
        "window": (lambda: summed_loss(variant(model, s, position, max_len=16 * C, window=C),
                                       windows(held, 16 * C, 1)), C - 1),
        "memory": (lambda: memory_loss(variant(model, s, position, xl_memory=C), held, C), C + (C - 1) / 2),
    }
    out = {}
    for method, (fn, context) in methods.items():
        start = time.perf_counter()
        total, count = fn()
        out[method] = {"loss": total / count, "us_per_char": 1e6 * (time.perf_counter() - start) / count,
                       "chars": count, "mean_context": context}
    return out


def run(size: str, seeds: int, out: Path) -> dict[str, Any]:
    started = time.perf_counter()
    s = SIZES[size]
    stream, held = austen_ids("train"), austen_ids("val")
    block = 16 * s["context"]
    held = held[: (min(len(held), s["eval_chars"]) - 1) // block * block + 1]  # every method scores the same targets
    rows = []
    with base.one_thread():
        for seed in range(seeds):
            for name in MODELS:
                model = train(name, s, seed, stream)
                rows.append({"model": name, "seed": seed, "eval": evaluate(name, model, s, held)})
    results = {"runs": rows}
    config_record = {**s, "lr": LR, "models": list(MODELS), "data": "Jane Austen (bytes): train split (4 novels); val split (Northanger Abbey) held out",
                     "schedule": "cosine, 10% warm-up", "optimizer": "AdamW, no weight decay, clip 1.0",
                     "strided_stride": s["context"] // 4, "memory": s["context"], "threads": 1, "precision": "fp32"}
    names = [plot(results, s, out)]
    return base.finish(verdict, base.record(NUMBER, size, seeds, out, config_record, results, names, started), out)


# -- verdict ------------------------------------------------------------------------------------


def losses(metrics: dict[str, Any], model: str, method: str) -> list[float]:
    rows = sorted((r for r in metrics["results"]["runs"] if r["model"] == model), key=lambda r: r["seed"])
    return [r["eval"][method]["loss"] for r in rows]


def outcome(higher: list[float], lower: list[float]) -> tuple[str, dict]:
    """"holds" if ``higher`` exceeds ``lower`` beyond noise and MIN_GAP, "fails" if even the
    optimistic end of the difference stays below MIN_GAP, else "unclear"."""
    e = base.paired_effect(higher, lower, N_SD, MIN_GAP)
    if e["significant"]:
        return "holds", e
    return ("fails" if e["mean"] + N_SD * e["sd"] < MIN_GAP else "unclear"), e


CLAIM_TESTS = {  # claim → (model, method that should be higher, model, method that should be lower)
    "ALiBi gets worse at 16×": ("alibi", "long_16x", "alibi", "chunks"),
    "RoPE gets worse at 16×": ("rope", "long_16x", "rope", "chunks"),
    "chunks overstate the loss (vs strided)": ("rope", "chunks", "rope", "strided"),
    "a window of C loses information (vs memory C..2C)": ("rope_xl", "window", "rope_xl", "memory"),
    "XL memory lowers the loss of the model trained with it": ("rope_xl", "chunks", "rope_xl", "memory"),
    "an XL model with memory beats a standard model in chunks": ("rope", "chunks", "rope_xl", "memory"),
}
EXPECTED = {"ALiBi gets worse at 16×": "fails"}  # the popular claim is that ALiBi does NOT get worse


def claim_outcomes(metrics: dict[str, Any]) -> dict[str, tuple[str, dict]]:
    return {claim: outcome(losses(metrics, m1, a), losses(metrics, m2, b))
            for claim, (m1, a, m2, b) in CLAIM_TESTS.items()}


def verdict(metrics: dict[str, Any]) -> tuple[str, str]:
    undecided = base.undecidable(metrics, MIN_SEEDS)
    if undecided:
        return undecided
    found = claim_outcomes(metrics)
    agree = {c: o == EXPECTED.get(c, "holds") for c, (o, _) in found.items()}
    text = "; ".join(f"{c}: {o} ({e['mean']:+.3f} ± {e['sd']:.3f} nats/char)" for c, (o, e) in found.items())
    if any(o == "unclear" for o, _ in found.values()) and not any(agree.values()):
        return "inconclusive", f"no claim decided beyond {N_SD:g} sd of seed noise: {text}"
    if all(agree.values()):
        return "confirmed", f"every claim as popularly stated, beyond {N_SD:g} sd of seed noise: {text}"
    if not any(agree.values()) and all(o != "unclear" for o, _ in found.values()):
        return "refuted", f"no claim holds as popularly stated: {text}"
    return "depends", f"some claims hold and some do not (differences: higher − lower, paired by seed): {text}"


# -- table and plot -------------------------------------------------------------------------------

METHODS = ("chunks", "strided", "long_4x", "long_16x", "window", "memory")


def tables(metrics: dict[str, Any]) -> list[Table]:
    rows = []
    for model in MODELS:
        runs = [r for r in metrics["results"]["runs"] if r["model"] == model]
        for method in METHODS:
            ls = [r["eval"][method]["loss"] for r in runs]
            us = [r["eval"][method]["us_per_char"] for r in runs]
            rows.append([model, method, f"{base.mean(ls):.3f} ± {base.std(ls):.3f}", fmt(base.mean(us)),
                         fmt(runs[0]["eval"][method]["mean_context"])])
    first = (["trained", "evaluated as", "loss (nats/char)", "µs per char", "mean context (tokens)"], rows)
    claims = [[c, o, f"{e['mean']:+.3f} ± {e['sd']:.3f}"] for c, (o, e) in claim_outcomes(metrics).items()]
    return [first, (["claim", "outcome", "difference (nats/char)"], claims)]


def plot(results: dict[str, Any], s: dict, out: Path) -> str:
    fig, (ax_loss, ax_time) = plots.figure(2, width=5.0)
    metrics = {"results": results}
    for i, model in enumerate(MODELS):
        for j, method in enumerate(METHODS):
            x = j + 0.25 * (i - 1)
            plots.seed_points(ax_loss, x, losses(metrics, model, method), f"C{i}", width=0.12,
                              label=model if j == 0 else None)
            us = [r["eval"][method]["us_per_char"] for r in results["runs"] if r["model"] == model]
            plots.seed_points(ax_time, x, us, f"C{i}", width=0.12, label=model if j == 0 else None)
    C = s["context"]
    labels = [f"chunks\n{C}", f"strided\n{C}/{C // 4}", f"long\n{4 * C}", f"long\n{16 * C}",
              f"window {C}\nover {16 * C}", f"memory {C}\nsegments {C}"]
    for ax in (ax_loss, ax_time):
        ax.set_xticks(range(len(METHODS)))
        ax.set_xticklabels(labels, fontsize=7)
        ax.legend(fontsize=8)
    ax_loss.set(ylabel="held-out loss (nats/char)", title=f"trained at context {C}, evaluated as")
    ax_time.set(ylabel="µs per character (1 thread)", yscale="log", title="time of each evaluation")
    return plots.save(fig, out, "q32_long_input.png")
