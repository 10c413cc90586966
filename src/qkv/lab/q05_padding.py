"""Question 5: how is padding masked in attention scores? (padding mask)

Claims under test (as commonly answered): setting the scores of padded keys to -inf before the
softmax gives them weight exactly 0, so the outputs at real positions are the same with or
without trailing padding; without the mask the padding leaks into them.

Method: for every family (encoder, lm, seq2seq) × every position kind × every attention path
— the fused kernel, the written-out reference path (``capture = True`` on every attention
module), and decoding through the KV cache with either kernel — run a batch of real tokens
once as it is and once with pad tokens appended, the mask given both times, and compare the
outputs at the real positions with ``torch.equal`` (bit-identical) and by max |difference|.
Then run the padded batch again with ``mask=None``. Through the cache the real positions are
the prefill of the prompt plus one decoding step after it (LM), or every decoding step
cross-attending to a padded source (seq2seq). Each seed draws new weights, a new length and a
new number of pads. (Shaw relative positions add a term the fused kernel cannot take, so their
"fused" cases run the reference path too.)

Reproduce: ``qkv ask 5 --size full``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ..config import ModelConfig
from ..models import build_model
from ..nn.attention import MultiHeadAttention
from ..nn.position import POSITION
from . import base, plots
from .table import Table, fmt

NUMBER = 5
TITLE = "How is padding masked in attention scores?"
KEYWORD = "padding mask"
CLAIMS = [
    "Masking padded keys with -inf before the softmax makes padding invisible: outputs at real "
    "positions are identical with or without trailing padding.",
    "Without the mask, padding changes the outputs at real positions.",
]
ANSWER = """\
A padded batch carries a boolean mask, True at real tokens. Before the softmax every score
q_i·k_j whose key j is padding is set to -inf; exp(-inf) = 0, so padded keys get weight
exactly zero and the remaining weights are the softmax over the real keys alone. The outputs
at real positions are then, in exact arithmetic, the same as without the padding. In float32
they are equal to rounding, and bit-identical only where the kernels happen to sum in the same
order for both lengths: padding changes tensor shapes, and with them the blocking of the
matrix products (the table counts how often the bits match).

Queries at padded positions are never used (their loss is ignored), so their rows only need to
stay finite. In a causal decoder trailing pads come after every real query and are invisible
even without the mask during teacher forcing; they become visible as soon as a token is
decoded after them through the KV cache, and in cross-attention to a padded source."""
FULL_SEEDS = 5
SMOKE_SEEDS = 1
MASKED_TOL = 1e-5  # float32 rounding from a different summation order stays far below this
UNMASKED_MIN = 1e-3  # a leak the mask must prevent: orders of magnitude above rounding
PATHS = {"encoder": ("fused", "reference"),
         "lm": ("fused", "reference", "kv_cache_fused", "kv_cache_reference"),
         "seq2seq": ("fused", "reference", "kv_cache_fused", "kv_cache_reference")}
SMOKE_POSITIONS = ("sinusoidal", "rope")


def tiny_model(family: str, position: str, reference: bool) -> nn.Module:
    """A 2-layer model without dropout; ``reference`` sends every attention module down the
    written-out path (``capture = True``)."""
    cfg = ModelConfig(family=family, position=position, vocab_size=50, d_model=32, n_layers=2, n_heads=4,
                      d_ff=64, max_len=64, dropout_embed=0.0, dropout_residual=0.0,
                      dropout_attention=0.0, dropout_activation=0.0)
    model = build_model(cfg).eval()
    for module in model.modules():
        if isinstance(module, MultiHeadAttention):
            module.capture = reference
    return model


def pad(ids: Tensor, n_pad: int) -> tuple[Tensor, Tensor]:
    """ids ``(B, T)`` → padded ids ``(B, T + n_pad)`` (pad id 0) and mask, True = real."""
    B, T = ids.shape
    padded = torch.cat([ids, torch.zeros(B, n_pad, dtype=ids.dtype)], dim=1)
    return padded, torch.arange(T + n_pad)[None, :].expand(B, -1) < T


def full_pass(model: nn.Module, family: str, ids: Tensor, mask: Tensor | None) -> Tensor:
    """Outputs at every position: hidden states / logits ``(B, T, ·)`` (seq2seq: source = target)."""
    if family == "seq2seq":
        return model(ids, ids, mask, mask)
    return model(ids, mask)


def lm_cached(model: nn.Module, ids: Tensor, mask: Tensor | None, T: int, new: Tensor) -> Tensor:
    """Prefill ``ids`` through the cache, then decode ``new`` ``(B, 1)`` after it; returns the
    logits at the real prompt positions and of the new token, ``(B, T + 1, V)``."""
    cache = model.new_cache(max_len=ids.shape[1] + 1)
    prefill = model(ids, mask, cache=cache)  # (B, S, V)
    step_mask = None if mask is None else torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)  # (B, S + 1)
    step = model(new, step_mask, cache=cache)  # (B, 1, V)
    return torch.cat([prefill[:, :T], step], dim=1)


def seq2seq_cached(model: nn.Module, src: Tensor, src_mask: Tensor | None, tgt: Tensor) -> Tensor:
    """Decode ``tgt`` ``(B, T)`` one token at a time through the cache against the (padded) source."""
    memory = model.encode(src, src_mask)  # (B, S, d)
    cache = model.new_cache(max_len=tgt.shape[1])
    steps = [model.decode(tgt[:, t:t + 1], memory, src_mask, cache=cache) for t in range(tgt.shape[1])]
    return torch.cat(steps, dim=1)  # (B, T, V)


def outputs(family: str, path: str, model: nn.Module, ids: Tensor, n_pad: int, g: torch.Generator):
    """(without padding, padded with mask, padded without mask) at the real positions."""
    T = ids.shape[1]
    padded, pmask = pad(ids, n_pad)
    new = torch.randint(4, 50, (ids.shape[0], 1), generator=g)  # the LM's next token, decoded after the prompt

    def real_positions(x: Tensor, mask: Tensor | None) -> Tensor:
        if not path.startswith("kv_cache"):
            return full_pass(model, family, x, mask)[:, :T]
        if family == "lm":
            return lm_cached(model, x, mask, T, new)
        return seq2seq_cached(model, x, mask, ids)

    full = torch.ones_like(ids, dtype=torch.bool)  # the unpadded run gets its (all-real) mask too
    return real_positions(ids, full), real_positions(padded, pmask), real_positions(padded, None)


def mask_needed(family: str, path: str) -> bool:
    """Can a real query see a trailing pad when no mask is given? Not in a causal LM's full pass."""
    return not (family == "lm" and not path.startswith("kv_cache"))


@torch.no_grad()
def case(family: str, position: str, path: str, seed: int) -> dict[str, Any]:
    torch.manual_seed(seed)
    model = tiny_model(family, position, reference=path.endswith("reference"))
    g = torch.Generator().manual_seed(seed)
    T, n_pad = 5 + seed % 4, 2 + seed % 5  # lengths and pad counts vary with the seed
    ids = torch.randint(4, 50, (2, T), generator=g)  # (B=2, T) real tokens
    alone, masked, unmasked = outputs(family, path, model, ids, n_pad, g)
    return {"family": family, "position": position, "path": path, "seed": seed, "T": T, "pads": n_pad,
            "bit_identical": torch.equal(alone, masked),
            "max_diff_masked": float((alone - masked).abs().max()),
            "max_diff_unmasked": float((alone - unmasked).abs().max()),
            "mask_needed": mask_needed(family, path)}


def run(size: str, seeds: int, out: Path) -> dict[str, Any]:
    started = time.perf_counter()
    positions = SMOKE_POSITIONS if size == "smoke" else tuple(sorted(POSITION))
    cases = [case(family, position, path, seed) for seed in range(seeds) for family, paths in PATHS.items()
             for path in paths for position in positions]
    results = {"cases": cases}
    config = {"positions": list(positions), "paths": {k: list(v) for k, v in PATHS.items()}, "batch": 2,
              "d_model": 32, "n_layers": 2, "n_heads": 4, "dtype": "float32",
              "length": "5 + seed % 4", "pads": "2 + seed % 5"}
    plot = plot_cases(cases, out)
    return base.finish(verdict, base.record(NUMBER, size, seeds, out, config, results, [plot], started), out)


def groups(cases: list[dict]) -> dict[tuple[str, str], list[dict]]:
    out: dict[tuple[str, str], list[dict]] = {}
    for c in cases:
        out.setdefault((c["family"], c["path"]), []).append(c)
    return out


def plot_cases(cases: list[dict], out: Path) -> str:
    fig, (ax,) = plots.figure(1, width=9.0, height=3.6)
    floor = 1e-9  # bit-identical cases (difference 0) are drawn at the floor of the log axis
    grouped = groups(cases)
    for i, items in enumerate(grouped.values()):
        plots.seed_points(ax, i - 0.15, [max(c["max_diff_masked"], floor) for c in items], "C0",
                          "with mask" if i == 0 else None, width=0.2)
        plots.seed_points(ax, i + 0.15, [max(c["max_diff_unmasked"], floor) for c in items], "C1",
                          "without mask" if i == 0 else None, width=0.2)
    ax.axhline(MASKED_TOL, color="C0", linestyle=":", label=f"rounding tolerance {MASKED_TOL:g}")
    ax.set_yscale("log")
    ax.set(ylabel="max |Δ output| at real positions (log)", ylim=(floor / 3, 10),
           title="padded vs unpadded (each point one position kind × seed; 0 drawn at 1e-9)")
    ax.set_xticks(range(len(grouped)))
    ax.set_xticklabels([f"{f}\n{p.replace('kv_cache_', 'cache ')}" for f, p in grouped], fontsize=7)
    ax.legend(fontsize=7, loc="center right")
    return plots.save(fig, out, "q05_padding.png")


def verdict(metrics: dict[str, Any]) -> tuple[str, str]:
    smoke = base.smoke_verdict(metrics)
    if smoke:
        return smoke
    cases = metrics["results"]["cases"]
    n, identical = len(cases), sum(c["bit_identical"] for c in cases)
    worst = max(c["max_diff_masked"] for c in cases)
    needed = [c for c in cases if c["mask_needed"]]
    weakest = min(c["max_diff_unmasked"] for c in needed)
    leak = f"without the mask every case that can see a pad differs (smallest max |Δ| {weakest:.2e})"
    if worst > MASKED_TOL:
        bad = max(cases, key=lambda c: c["max_diff_masked"])
        return "refuted", (f"with the mask, {bad['family']}/{bad['position']}/{bad['path']} still differs by "
                           f"{worst:.2e} (> {MASKED_TOL:g}) at real positions")
    if weakest < UNMASKED_MIN:
        return "refuted", (f"without the mask some case differs by only {weakest:.2e} (< {UNMASKED_MIN:g}): "
                           f"padding did not leak where it should have")
    if identical == n:
        return "confirmed", f"all {n} masked cases are bit-identical to the unpadded run; {leak}"
    return "depends", (f"with the mask outputs are equal to float32 rounding (max |Δ| {worst:.2e} ≤ "
                       f"{MASKED_TOL:g}) but bit-identical in only {identical} of {n} cases, depending on "
                       f"the path; {leak}")


def tables(metrics: dict[str, Any]) -> list[Table]:
    rows = []
    for (family, path), items in groups(metrics["results"]["cases"]).items():
        rows.append([family, path, str(len(items)), f"{sum(c['bit_identical'] for c in items)}/{len(items)}",
                     fmt(max(c["max_diff_masked"] for c in items)),
                     fmt(min(c["max_diff_unmasked"] for c in items)),
                     fmt(max(c["max_diff_unmasked"] for c in items)),
                     "yes" if items[0]["mask_needed"] else "no (causal)"])
    return [(["family", "path", "cases", "bit-identical", "max |Δ| masked", "min |Δ| unmasked",
              "max |Δ| unmasked", "pads visible without mask"], rows)]
