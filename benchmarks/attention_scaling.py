"""How one qkv attention layer's time and memory grow with sequence length, path by path.

Question: what does each attention path cost as the sequence grows (questions 3, 22, 24)? Claim
under test: the fused path's memory grows linearly with length while the reference path's grows
quadratically; additive attention is O(n²·d) in memory; a sliding window costs less than full
attention.

Rerun (from the repository root; the JSON goes to stdout and to ``--out``)::

    python -m benchmarks.attention_scaling --device cpu --threads 2 --out runs/bench/attention_scaling.json
    python -m benchmarks.attention_scaling --quick    # lengths 128..1024, what ``qkv bench`` runs

One ``MultiHeadAttention`` self-attention layer (d=256, 4 heads, batch 1, fp32, causal mask as a
decoder has), forward + backward of ``out.sum()``. Variants:

* ``reference``  — ``capture=True``: softmax(QKᵀ/√d)V written out (weights kept);
* ``fused``      — the default path, SDPA with whatever mask a decoder ``Stack`` hands its layers
  for an unpadded sequence (the benchmark asks ``Stack.attention_mask``, so it follows the library);
* ``fused_mask`` — the default path for a batch that comes with a token mask (all real here):
  SDPA with a materialised boolean ``(B, 1, T, T)`` padding ∧ causal mask;
* ``window``     — ``ModelConfig(window=256)``: the fused path with causal ∧ sliding-window mask;
* ``additive``   — ``attention="additive"`` (Bahdanau), reference path by necessity;
* ``sdpa_is_causal`` — not a qkv path: the same projections, then SDPA with ``is_causal=True``
  and no mask tensor. The floor the fused path can reach.

Time: the median of interleaved windows (variants alternate at each length); ``time_ratios``
divides two variants' times at each length. FLOPs per call:
6·4d²·T (projections) + 12·T²·d (attention, causal not halved). Peak memory: resident-set rise of
one call, measured in a fresh process per variant (lengths ascending, the allocator trimmed
between them; see ``benchmarks.common``). A (variant, length) whose estimated memory exceeds
``--memory-cap-gib`` is not run; the JSON says so under ``skipped``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

if __package__ in (None, ""):  # run as a file, not with -m: make `benchmarks.common` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks import common  # noqa: E402
from qkv import ModelConfig  # noqa: E402
from qkv.nn.attention import MultiHeadAttention  # noqa: E402
from qkv.nn.stack import Stack  # noqa: E402

VARIANTS = ("reference", "fused", "fused_mask", "window", "additive", "sdpa_is_causal")
LENGTHS = dict(
    full=[128, 256, 512, 1024, 2048, 4096, 8192], quick=[128, 256, 512, 1024], tiny=[64, 128]
)
LAYER = dict(full=dict(d=256, heads=4, batch=1, window=256), quick=dict(d=256, heads=4, batch=1, window=256),
             tiny=dict(d=64, heads=4, batch=1, window=32))
RATIOS = (("reference", "fused"), ("fused_mask", "fused"), ("window", "fused"), ("fused", "sdpa_is_causal"))
MEMORY_CAP_GIB = dict(full=8.0, quick=0.5, tiny=0.5)  # quick: additive stops at 256 (it is slow too)
SCHEDULE = dict(
    full=dict(warmup=2, rounds=5, min_window_s=0.3),
    quick=dict(warmup=1, rounds=3, min_window_s=0.1),
    tiny=dict(warmup=1, rounds=2, min_window_s=0.02),
)


def estimated_bytes(variant: str, T: int, d: int, heads: int, batch: int) -> int:
    """Rough peak of one forward + backward, to decide what not to run (fp32).

    Reference: about five (B, H, T, T) tensors live at once (scores, masked scores, weights and
    their gradients). Additive adds three (B, H, T, T, D) = (B, T, T, d) tensors (q + k, its
    tanh, the gradient). Fused paths: the (T, T) boolean mask, the float copy SDPA makes of it
    on CPU, and O(T·d) activations.
    """
    square = 4 * batch * heads * T * T
    activations = 4 * batch * T * d * 16
    if variant == "reference":
        return 5 * square + activations
    if variant == "additive":
        return 3 * 4 * batch * T * T * d + 5 * square + activations
    return 5 * T * T + activations


def build(variant: str, layer: dict[str, int], T: int, device: str) -> tuple[Callable[[], Tensor], Callable[[], None]]:
    """``(forward, call)`` for ``variant`` at length ``T``: ``forward()`` returns the layer's
    output ``(B, T, d)``; ``call()`` runs forward + backward (what is timed)."""
    cfg = ModelConfig(
        d_model=layer["d"], n_heads=layer["heads"], attention="additive" if variant == "additive" else "dot",
        dropout_attention=0.0,
    )
    attn = MultiHeadAttention(cfg).to(device)
    attn.capture = variant == "reference"
    x = torch.randn(layer["batch"], T, layer["d"], device=device, requires_grad=True)  # (B, T, d)
    mask = decoder_mask(variant, layer, T, device)

    def forward() -> Tensor:
        if variant == "sdpa_is_causal":
            return _sdpa_is_causal(attn, x)
        return attn(x, mask=mask)

    def call() -> None:
        forward().sum().backward()
        x.grad = None
        attn.zero_grad(set_to_none=True)

    return forward, call


def decoder_mask(variant: str, layer: dict[str, int], T: int, device: str) -> Any:
    """The mask a one-layer decoder ``Stack`` gives its attention for a length-``T`` sequence.

    Asked of ``Stack.attention_mask`` itself, so the benchmark times what a model runs:
    ``fused_mask`` passes an all-real token mask (a padded batch's path), ``window`` sets
    ``window`` in the config. Masks are True = may attend.
    """
    cfg = ModelConfig(
        family="lm", vocab_size=8, d_model=layer["d"], n_heads=layer["heads"], n_layers=1, d_ff=8,
        max_len=T, window=layer["window"] if variant == "window" else None,
    )
    stack = Stack(cfg, nn.Embedding(cfg.vocab_size, cfg.d_model), causal=True)
    token_mask = torch.ones(layer["batch"], T, dtype=torch.bool, device=device) if variant == "fused_mask" else None
    return stack.attention_mask(T, T, token_mask, torch.device(device))


def _sdpa_is_causal(attn: MultiHeadAttention, x: Tensor) -> Tensor:
    """qkv's projections around SDPA with ``is_causal=True`` (no mask tensor)."""
    B, T, _ = x.shape
    q, k, v = attn._project_self(x)  # (B, H, T, D) each
    out = F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=attn.scale)
    return attn.out_proj(out.transpose(1, 2).reshape(B, T, -1))  # (B, H, T, D) -> (B, T, H·D)


def train_flops(T: int, d: int, batch: int) -> int:
    return common.dense_train_flops(4 * d * d, batch * T) + batch * common.attention_train_flops(T, T, d)


def runnable(size: str, cap_gib: float) -> dict[str, list[int]]:
    """Lengths each variant runs at: all, until its estimated memory passes the cap."""
    L = LAYER[size]
    return {
        v: [T for T in LENGTHS[size] if estimated_bytes(v, T, L["d"], L["heads"], L["batch"]) <= cap_gib * 2**30]
        for v in VARIANTS
    }


def memory_child(variant: str, size: str, lengths: list[int], device: str, threads: int) -> dict[str, float]:
    """Runs inside the child: peak memory of one call at each length (ascending)."""
    torch.set_num_threads(threads)
    build(variant, LAYER[size], 8, device)[1]()  # imports, thread pools, kernel selection
    out: dict[str, float] = {}
    for T in sorted(lengths):
        _, call = build(variant, LAYER[size], T, device)
        with common.PeakMemory(device) as mem:
            call()
        out[str(T)] = common.rounded(mem.peak_mib)
        del call
    return out


def run(size: str = "full", *, device: str = "cpu", threads: int = 2, memory_cap_gib: float | None = None,
        memory_jobs: int = 2) -> dict[str, Any]:
    """The whole benchmark as a JSON-able dict (``main`` prints it)."""
    memory_cap_gib = MEMORY_CAP_GIB[size] if memory_cap_gib is None else memory_cap_gib
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    layer, todo = LAYER[size], runnable(size, memory_cap_gib)
    results: dict[str, dict[str, dict[str, Any]]] = {v: {} for v in VARIANTS}
    for T in LENGTHS[size]:
        calls = {v: build(v, layer, T, device)[1] for v in VARIANTS if T in todo[v]}
        timings = common.time_interleaved(calls, device=device, **SCHEDULE[size])
        flops = train_flops(T, layer["d"], layer["batch"])
        for v in VARIANTS:
            if v in timings:
                s = timings[v]["median_s"]
                results[v][str(T)] = dict(ms=common.rounded(s * 1e3), gflops=common.rounded(flops / s / 1e9))
            else:
                gib = estimated_bytes(v, T, layer["d"], layer["heads"], layer["batch"]) / 2**30
                results[v][str(T)] = dict(skipped=f"estimated {gib:.1f} GiB > memory cap {memory_cap_gib} GiB")
        del calls
    if memory_jobs:
        _add_memory(results, todo, size, device, threads, memory_jobs)
    return dict(
        benchmark="attention_scaling", size=size, **common.environment(device, threads), precision="fp32",
        layer=dict(layer, mask="causal", work="forward + backward of out.sum()"), lengths=LENGTHS[size],
        memory_cap_gib=memory_cap_gib, schedule=SCHEDULE[size], variants=results,
        time_ratios={f"{a}/{b}": _ratio(results, a, b) for a, b in RATIOS},
    )


def _add_memory(results: dict, todo: dict[str, list[int]], size: str, device: str, threads: int, jobs: int) -> None:
    variants = [v for v in VARIANTS if todo[v]]
    calls = [
        ("benchmarks.attention_scaling", ["--memory-child", v, "--size", size, "--device", device,
                                          "--threads", str(threads), "--lengths", *map(str, todo[v])])
        for v in variants
    ]
    for v, peaks in zip(variants, common.run_children(calls, jobs)):
        for T, mib in peaks.items():
            results[v][T]["peak_mib"] = mib


def _ratio(results: dict, slow: str, fast: str) -> dict[str, float]:
    """time(slow) / time(fast) at each length both ran (> 1: ``fast`` is faster)."""
    return {
        T: common.rounded(results[slow][T]["ms"] / results[fast][T]["ms"])
        for T in results[fast] if "ms" in results[fast][T] and "ms" in results[slow].get(T, {})
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    size = "quick" if args.quick else args.size
    if args.memory_child:
        result: dict[str, Any] = memory_child(args.memory_child, size, args.lengths, args.device, args.threads)
        print(json.dumps(result))
        return result
    result = run(size, device=args.device, threads=args.threads, memory_cap_gib=args.memory_cap_gib,
                 memory_jobs=args.memory_jobs)
    common.emit(result, args.out)
    return result


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = common.base_parser(__doc__.split("\n\n")[0], LENGTHS)
    p.add_argument("--memory-cap-gib", type=float, help=f"skip runs estimated above this {MEMORY_CAP_GIB}")
    p.add_argument("--memory-jobs", type=int, default=2, help="memory processes at a time (0: skip memory)")
    p.add_argument("--out", help="also write the JSON here")
    p.add_argument("--memory-child", choices=VARIANTS, help=argparse.SUPPRESS)
    p.add_argument("--lengths", type=int, nargs="+", help=argparse.SUPPRESS)
    return p.parse_args(argv)


if __name__ == "__main__":
    main()
