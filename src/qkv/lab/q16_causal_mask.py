"""Question 16: decoder vs encoder self-attention; why the sequence mask? (sequence mask)

Claims under test (as commonly answered): the decoder's self-attention masks the future so the
output at position t depends only on tokens up to t; without the mask a decoder trained with
teacher forcing "cheats" by reading the token it is asked to predict, so its training loss
collapses while the model is useless when it must generate one token at a time.

Method, every number per seed:
1. Invariance: for every position kind, change the tokens after t and measure the largest
   change of the logits at positions ≤ t, in a causal LM and in the same weights with
   ``causal_mask=False`` (the encoder-style, unmasked self-attention).
2. Cheating: train a character LM on Tiny Shakespeare twice per seed, with and without the
   mask (same initial weights, same batches), with rotary positions: reading the next token is
   then one fixed relative offset, which a small model finds within the run. (With absolute
   sinusoidal positions, the same 400 steps at d_model 64 left the unmasked model at the
   masked one's loss: it had not yet found the future, so the run measured nothing.) Measure each on held-out text (a) the way it was
   trained (teacher forcing, its own mask setting) and (b) causally — its weights run with the
   mask, which is what generation, one token after another, amounts to (checked: the
   unmasked model's cached greedy decoding equals its causal full pass). Then each model
   generates text greedily, scored by an independent judge: the lab's shared Shakespeare LM
   (``qkv.lab.shared``, seed 0, bigger and trained longer), in nats per character.

Reproduce: ``qkv ask 16 --size full``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..config import ModelConfig
from ..data import random_lm_batch, sequential_lm_batches
from ..models import build_model
from ..tasks.common import mean_token_loss
from ..train import TrainConfig
from . import base, plots, shared
from .table import Table, fmt

NUMBER = 16
TITLE = "Decoder vs encoder self-attention; why the sequence mask?"
KEYWORD = "sequence mask"
CLAIMS = [
    "With the mask, the output at position t does not depend on any later token.",
    "A decoder trained without the mask cheats: its teacher-forced loss collapses.",
    "The same model is far worse when it must predict causally, and so are its generations.",
]
ANSWER = """\
Encoder self-attention lets every position attend to every other: the whole input is known.
A decoder is trained with teacher forcing, all target positions in one pass, but at inference
it produces one token at a time and token t+1 does not exist yet when t is predicted. The
sequence (causal, look-ahead) mask sets the scores of keys j > i to −∞ before the softmax, so
query i gets exactly zero weight on the future and the parallel training pass computes what
step-by-step decoding will compute. Without the mask, position t can read token t+1 — the very
label it is scored on — so training learns to copy it: the loss falls far below what language
allows, and none of that skill survives when the future is not there. The measurements check
both halves: the invariance exactly, for every position scheme, and the cheating model's
teacher-forced loss, causal loss and generations against the masked model's."""
FULL_SEEDS = 5
SMOKE_SEEDS = 2
MIN_SEEDS = 3
N_SD = 2.0
LEAK_TOLERANCE = 1e-6  # largest change at positions ≤ t that still counts as "none"
MIN_GAP = 0.2  # nats/char: smaller loss differences do not count as cheating or as harm
POSITIONS = ("sinusoidal", "learned", "shaw", "t5_bias", "rope", "alibi", "none")
SIZES = {
    "smoke": {"steps": 10, "d_model": 32, "n_layers": 1, "context": 32, "val_chars": 2048, "sample_chars": 16},
    "full": {"steps": 400, "d_model": 64, "n_layers": 2, "context": 64, "val_chars": 32768, "sample_chars": 200},
}
BATCH = 16
PROMPT = "ROMEO:\n"
CHEAT_POSITION = "rope"  # see the module docstring, part 2


def lm_config(s: dict, causal: bool, position: str = CHEAT_POSITION) -> ModelConfig:
    return ModelConfig(family="lm", vocab_size=256 + shared.FIRST_BYTE, d_model=s["d_model"], n_layers=s["n_layers"],
                       n_heads=2, d_ff=4 * s["d_model"], max_len=s["context"], position=position,
                       causal_mask=causal, norm_placement="pre", dropout_embed=0.0, dropout_residual=0.0)


@torch.no_grad()
def leak(position: str, seed: int) -> dict[str, Any]:
    """Largest change of logits at positions ≤ t when the tokens after t change (t first,
    middle and next to last)."""
    s = SIZES["smoke"]
    torch.manual_seed(seed)
    causal = build_model(lm_config(s, True, position)).eval()
    unmasked = build_model(lm_config(s, False, position)).eval()
    unmasked.load_state_dict(causal.state_dict())
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(shared.FIRST_BYTE, 260, (2, 16), generator=g)  # (B, T)
    models = {"causal": causal, "unmasked": unmasked}
    logits = {name: model(ids) for name, model in models.items()}  # (B, T, V)
    worst = {"causal": 0.0, "unmasked": 0.0}
    for t in (0, ids.shape[1] // 2, ids.shape[1] - 2):
        changed = ids.clone()
        changed[:, t + 1:] = torch.randint(shared.FIRST_BYTE, 260, changed[:, t + 1:].shape, generator=g)
        for name, model in models.items():
            diff = (logits[name][:, : t + 1] - model(changed)[:, : t + 1]).abs().max()
            worst[name] = max(worst[name], float(diff))
    return {"position": position, "seed": seed, **worst}


def train(cfg: ModelConfig, s: dict, seed: int, stream: torch.Tensor) -> nn.Module:
    """One LM run: fixed initial weights and batches per seed, so masked and unmasked are paired."""
    torch.manual_seed(seed)
    model = build_model(cfg)
    gen = torch.Generator().manual_seed(10_000 + seed)
    batches = [random_lm_batch(stream, s["context"], BATCH, gen) for _ in range(s["steps"])]
    tcfg = TrainConfig(lr=2e-3, schedule="cosine", warmup_steps=s["steps"] // 10, max_steps=s["steps"],
                       label_smoothing=0.0, precision="fp32", device="cpu", seed=seed, log_every=s["steps"] + 1,
                       weight_decay=0.0)
    shared.train_steps(model, tcfg, batches)
    return model.eval()


def as_causal(model: nn.Module, s: dict) -> nn.Module:
    """The same weights run with the causal mask: what one-token-at-a-time prediction sees."""
    causal = build_model(lm_config(s, True))
    causal.load_state_dict(model.state_dict())
    return causal.eval()


@torch.no_grad()
def generation_loss(model: nn.Module, judge: nn.Module, s: dict) -> tuple[float, str, bool]:
    """Greedy text from the prompt, its loss under ``judge`` (nats/char), and whether the cached
    decoding equals the model's causal full pass over the same text (it must: decoding is causal)."""
    prompt = torch.tensor([list(PROMPT.encode())]) + shared.FIRST_BYTE  # (1, P)
    n = min(s["sample_chars"], s["context"] - prompt.shape[1])
    out = model.generate(prompt, max_new_tokens=n, eos_id=None)  # (1, P + n)
    batch = {"input_ids": out[:, :-1], "labels": out[:, 1:].clone()}
    batch["labels"][:, : prompt.shape[1] - 1] = -100  # score the generated part only
    loss = mean_token_loss(judge, [batch])["loss"]
    rerun = as_causal(model, s)(out[:, :-1])[:, prompt.shape[1] - 1:].argmax(-1)  # (1, n)
    consistent = torch.equal(rerun, out[:, prompt.shape[1]:])
    text = bytes((out[0, prompt.shape[1]:] - shared.FIRST_BYTE).clamp(0, 255).tolist()).decode("utf-8", "replace")
    return loss, text, consistent


def cheating(seed: int, s: dict, stream: torch.Tensor, held_out: torch.Tensor, judge: nn.Module) -> dict[str, Any]:
    models = {name: train(lm_config(s, causal), s, seed, stream) for name, causal in
              (("masked", True), ("unmasked", False))}
    batches = lambda: sequential_lm_batches(held_out, s["context"], 64)  # noqa: E731
    row: dict[str, Any] = {"seed": seed}
    for name, model in models.items():
        row[f"{name}_teacher_forced"] = mean_token_loss(model, batches())["loss"]
        row[f"{name}_causal"] = mean_token_loss(as_causal(model, s), batches())["loss"]
        loss, text, consistent = generation_loss(model, judge, s)
        row[f"{name}_generation"], row[f"{name}_sample"], row[f"{name}_decoding_is_causal"] = loss, text, consistent
    return row


def run(size: str, seeds: int, out: Path) -> dict[str, Any]:
    started = time.perf_counter()
    s = SIZES[size]
    stream, held_out = shared.shakespeare_ids("train"), shared.shakespeare_ids("val")[: s["val_chars"]]
    leaks = [leak(p, seed) for seed in range(seeds) for p in POSITIONS]
    judge, judge_record = shared.trained_lm(size, 0)
    cheats = [cheating(seed, s, stream, held_out, judge) for seed in range(seeds)]
    results = {"leak": leaks, "cheating": cheats, "judge": judge_record}
    config = {**s, "batch": BATCH, "lr": 2e-3, "position": CHEAT_POSITION, "data": "Tiny Shakespeare, bytes", "prompt": PROMPT,
              "leak_model": "smoke-size LM, random init", "precision": "fp32"}
    names = [plot(results, out)]
    return base.finish(verdict, base.record(NUMBER, size, seeds, out, config, results, names, started), out)


def plot(results: dict[str, Any], out: Path) -> str:
    fig, (ax_leak, ax_loss) = plots.figure(2, width=5.0)
    for i, p in enumerate(POSITIONS):
        rows = [r for r in results["leak"] if r["position"] == p]
        for name, color in (("causal", "C2"), ("unmasked", "C3")):
            values = [max(r[name], 1e-12) for r in rows]  # exact zeros drawn at 1e-12 on the log axis
            plots.seed_points(ax_leak, i + (0.2 if name == "unmasked" else -0.2), values, color, width=0.15)
    ax_leak.set(yscale="log", xticks=range(len(POSITIONS)), ylabel="max |Δ logit| at positions ≤ t",
                title="changing tokens after t (1e-12 = exactly 0)")
    ax_leak.set_xticklabels(POSITIONS, rotation=30, fontsize=8)
    ax_leak.scatter([], [], color="C2", label="causal mask")
    ax_leak.scatter([], [], color="C3", label="no mask")
    ax_leak.legend(fontsize=8)
    kinds = ("teacher_forced", "causal", "generation")
    for j, kind in enumerate(kinds):
        for name, color, dx in (("masked", "C2", -0.2), ("unmasked", "C3", 0.2)):
            plots.seed_points(ax_loss, j + dx, [r[f"{name}_{kind}"] for r in results["cheating"]], color, width=0.15)
    ax_loss.set(xticks=range(3), ylabel="loss (nats/char)", title="trained with (green) and without (red) the mask")
    ax_loss.set_xticklabels(["teacher-forced\n(own mask)", "causal\n(as generated)", "its generations\n(judged)"],
                            fontsize=8)
    return plots.save(fig, out, "q16_causal_mask.png")


def effects(metrics: dict[str, Any]) -> dict[str, dict]:
    rows = sorted(metrics["results"]["cheating"], key=lambda r: r["seed"])
    col = lambda key: [r[key] for r in rows]  # noqa: E731
    return {
        "cheats": base.paired_effect(col("masked_teacher_forced"), col("unmasked_teacher_forced"), N_SD, MIN_GAP),
        "causal_harm": base.paired_effect(col("unmasked_causal"), col("masked_causal"), N_SD, MIN_GAP),
        "generation_harm": base.paired_effect(col("unmasked_generation"), col("masked_generation"), N_SD, MIN_GAP),
    }


def verdict(metrics: dict[str, Any]) -> tuple[str, str]:
    undecided = base.undecidable(metrics, MIN_SEEDS)
    if undecided:
        return undecided
    leaks = metrics["results"]["leak"]
    worst_causal = max(r["causal"] for r in leaks)
    least_unmasked = min(r["unmasked"] for r in leaks)
    e = effects(metrics)
    numbers = (f"largest change at positions ≤ t: {worst_causal:.2e} with the mask, at least {least_unmasked:.2e} "
               f"without; teacher-forced loss masked − unmasked {e['cheats']['mean']:+.2f} ± {e['cheats']['sd']:.2f}, "
               f"causal loss unmasked − masked {e['causal_harm']['mean']:+.2f} ± {e['causal_harm']['sd']:.2f}, "
               f"generation loss {e['generation_harm']['mean']:+.2f} ± {e['generation_harm']['sd']:.2f} nats/char")
    if worst_causal > LEAK_TOLERANCE:
        return "refuted", f"the mask leaks: {numbers}"
    held = [k for k in ("cheats", "causal_harm", "generation_harm") if e[k]["significant"]]
    if len(held) == 3 and least_unmasked > LEAK_TOLERANCE:
        return "confirmed", f"every effect beyond {N_SD:g} sd of seed noise and {MIN_GAP} nats: {numbers}"
    if not held:
        return "refuted", f"no effect of dropping the mask beyond seed noise: {numbers}"
    return "depends", f"only {', '.join(held)} beyond {N_SD:g} sd of seed noise: {numbers}"


def tables(metrics: dict[str, Any]) -> list[Table]:
    r = metrics["results"]
    leak_rows = []
    for p in POSITIONS:
        rows = [x for x in r["leak"] if x["position"] == p]
        leak_rows.append([p, fmt(max(x["causal"] for x in rows)), fmt(min(x["unmasked"] for x in rows))])
    first = (["position", "max |Δ| ≤ t, causal mask", "min over seeds of max |Δ| ≤ t, no mask"], leak_rows)
    stat = lambda key: (f"{base.mean([x[key] for x in r['cheating']]):.3f} ± "  # noqa: E731
                        f"{base.std([x[key] for x in r['cheating']]):.3f}")
    rows = [[name, stat(f"{name}_teacher_forced"), stat(f"{name}_causal"), stat(f"{name}_generation"),
             repr(r["cheating"][0][f"{name}_sample"][:60]),
             str(all(x[f"{name}_decoding_is_causal"] for x in r["cheating"]))] for name in ("masked", "unmasked")]
    second = (["trained", "teacher-forced loss", "causal loss", "generation loss (judged)", "seed-0 sample",
               "cached decoding = causal pass"], rows)
    return [first, second]
