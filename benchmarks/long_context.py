"""Memory and time against sequence length for each long-sequence fix (questions 31 and 32).

Question: what does each fix save, what does it cost, and at which length does it matter?
Claims under test: full attention grows as n² in time (and, when it materialises anything of
size T × T, in memory); a block-local window grows as n·w; segment memory (Transformer-XL) and
gradient checkpointing keep training memory flat or smaller; a rolling window cache keeps
decoding memory flat.

Rerun (from the repository root; the JSON goes to stdout and to ``--out``)::

    python -m benchmarks.long_context --threads 2 --out runs/bench/long_context.json
    python -m benchmarks.long_context --quick     # lengths 256 and 1024
    python -m benchmarks.long_context --size long # up to 16k (about an hour on one CPU thread)

The model: a decoder-only LM, d=256, 4 layers, 4 heads, d_ff 1024, rotary positions, vocab
256, batch 1, fp32 unless said. Training variants (forward + backward of the LM loss over one
sequence of T tokens):

* ``reference``  — every attention layer on its reference path (``capture=True``): scores and
  weights materialised, (T, T) per head;
* ``full_mask``  — the fused path given a token mask (a padded batch's path): SDPA with a
  materialised (T, T) boolean mask;
* ``is_causal``  — the default fused path, SDPA ``is_causal`` (no mask tensor);
* ``window``     — ``window=256``: the block-local path (``nn.local_attention``);
* ``window_mask`` — the same window as a (T, T) mask over full attention (what qkv did before):
  the peer the block path must beat;
* ``xl``         — ``xl_memory=512``: the sequence in segments of 512, each attending to the
  previous one's keys (detached) and back-propagated alone;
* ``checkpoint`` — ``is_causal`` with gradient checkpointing (each layer recomputed in backward);
* ``bf16``       — ``is_causal`` under bf16 autocast (only where the CPU has AVX-512-BF16/AMX);
* ``accumulate`` — batch 2 as two micro-batches of 1 (gradient accumulation) against
  ``batch2``, the same two sequences in one step.

Attention alone: one attention layer (forward + backward) from 1k to 16k tokens, the block window
against the same window as a (T, T) mask over full attention, and plain ``is_causal``; and the
same three as the attention operation alone (``op_*``: q, k, v given, the window's (T, T) mask
built inside the call as a model builds it every forward), without the projections, whose
O(T) memory is the same in all three and bounds the layer's ratio.

Decoding: per-token latency (median over 16 steps) and KV-cache bytes after a prefill of n
tokens, for the full cache, the rolling window cache (window 256) and XL memory (512).
Time: median of ``rounds`` calls (after a warm-up call at ≤ 1k tokens); peak memory: resident-set rise of one call in a
fresh process per variant (``benchmarks.common.PeakMemory``). Variants whose estimated memory
exceeds ``--memory-cap-gib`` are skipped and say so.
"""

from __future__ import annotations

import argparse
import sys
import time
from contextlib import nullcontext
from pathlib import Path
from statistics import median
from typing import Any, Callable

import torch
import torch.nn.functional as F

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks import common  # noqa: E402
from qkv import ModelConfig  # noqa: E402
from qkv.models import build_model  # noqa: E402
from qkv.train.runtime import cpu_has_fast_bf16  # noqa: E402

ATTENTION = ("block_window", "mask_window", "is_causal",  # one attention layer alone
             "op_block_window", "op_mask_window", "op_is_causal")  # the attention operation alone
ATTENTION_LENGTHS = dict(long=[1024, 4096, 8192, 16384], full=[1024, 4096, 8192, 16384], quick=[1024],
                         tiny=[64, 128])
TRAIN = ("reference", "full_mask", "is_causal", "window", "window_mask", "xl", "checkpoint", "bf16",
         "accumulate", "batch2")
DECODE = ("full_cache", "window_cache", "xl_cache")
LENGTHS = dict(long=[256, 1024, 4096, 8192, 16384], full=[256, 1024, 4096, 8192], quick=[256, 1024], tiny=[64, 128])
MODEL = dict(long=dict(d=256, layers=4, heads=4, window=256, segment=512),
             full=dict(d=256, layers=4, heads=4, window=256, segment=512),
             quick=dict(d=256, layers=4, heads=4, window=256, segment=512),
             tiny=dict(d=32, layers=2, heads=2, window=16, segment=32))
ROUNDS = dict(long=1, full=2, quick=3, tiny=1)
MEMORY_CAP_GIB = dict(long=16.0, full=12.0, quick=2.0, tiny=0.5)
DECODE_STEPS = 16


def config(m: dict, T: int, **changes: Any) -> ModelConfig:
    return ModelConfig(family="lm", vocab_size=256, d_model=m["d"], n_layers=m["layers"], n_heads=m["heads"],
                       d_ff=4 * m["d"], max_len=max(T, 8), position="rope", dropout_embed=0.0,
                       dropout_residual=0.0, **changes)


def estimated_bytes(variant: str, T: int, m: dict) -> int:
    """Rough training peak, to skip what cannot fit: O(T²) per layer for what materialises scores,
    O(T·d) activations for everything."""
    activations = 4 * T * m["d"] * 40 * m["layers"] * (2 if variant == "batch2" else 1)
    if variant == "reference":
        return activations + 3 * 4 * m["heads"] * T * T * m["layers"]
    if variant in ("full_mask", "window_mask"):
        return activations + 5 * T * T
    return activations


def loss_fn(model: torch.nn.Module, ids: torch.Tensor, mask: torch.Tensor | None = None, cache=None) -> torch.Tensor:
    logits = model(ids[:, :-1], mask, cache=cache) if cache is not None else model(ids[:, :-1], mask)  # (B, T, V)
    return F.cross_entropy(logits.flatten(0, 1), ids[:, 1:].flatten())


def train_call(variant: str, m: dict, T: int) -> Callable[[], None]:
    """One training step's forward + backward for ``variant`` at length T."""
    changes = {"window": m["window"]} if variant in ("window", "window_mask") else {}
    if variant == "xl":
        changes = {"xl_memory": m["segment"]}
    model = build_model(config(m, T, **changes))
    if variant == "reference":
        for layer in model.decoder.layers:
            layer.self_attn.capture = True
    model.decoder.gradient_checkpointing = variant == "checkpoint"
    batch = 2 if variant in ("accumulate", "batch2") else 1
    ids = torch.randint(0, 256, (batch, T + 1))
    mask = torch.ones(batch, T, dtype=torch.bool) if variant in ("full_mask", "window_mask") else None
    if variant in ("full_mask", "window_mask"):  # a hook (here: none) keeps the stack off its
        model.decoder.mask_hook = lambda allowed, T_, S_: allowed  # is_causal and block shortcuts
    autocast = torch.autocast("cpu", dtype=torch.bfloat16) if variant == "bf16" else nullcontext()

    def call() -> None:
        with autocast:
            if variant == "xl":
                memory = model.new_cache(max_len=m["segment"])
                for s in range(0, T, m["segment"]):
                    loss_fn(model, ids[:, s:s + m["segment"] + 1], cache=memory).backward()
            elif variant == "accumulate":
                for row in range(batch):
                    (loss_fn(model, ids[row:row + 1]) / batch).backward()
            else:
                loss_fn(model, ids, mask).backward()
        model.zero_grad(set_to_none=True)

    return call


def time_call(call: Callable[[], None], rounds: int, warm_up: bool) -> float:
    if warm_up:  # kernel selection and allocator: once per variant, at the short lengths
        call()
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return median(times)


@torch.no_grad()
def decode_row(variant: str, m: dict, n: int) -> dict[str, float]:
    """Per-token latency (ms) and cache bytes after a prefill of n tokens."""
    changes = {"full_cache": {}, "window_cache": {"window": m["window"]}, "xl_cache": {"xl_memory": m["segment"]}}
    model = build_model(config(m, n + DECODE_STEPS, **changes[variant])).eval()
    cache = model.new_cache(max_len=n + DECODE_STEPS + 1)
    model(torch.randint(0, 256, (1, n)), cache=cache)
    token = torch.randint(0, 256, (1, 1))
    times = []
    for _ in range(DECODE_STEPS):
        start = time.perf_counter()
        model(token, cache=cache)
        times.append(time.perf_counter() - start)
    held = sum(c.k.numel() * c.k.element_size() * 2 for c in cache.self_attn if c.k is not None)
    if variant == "full_cache":  # the preallocated buffer's filled part is what is in use
        held = held * cache.length // cache.self_attn[0].max_len
    return {"ms_per_token": common.rounded(1e3 * median(times)), "cache_mib": common.rounded(held / 2**20)}


def attention_call(variant: str, m: dict, T: int) -> Callable[[], None]:
    """Forward + backward of one attention layer over T tokens: the block window, the same
    window as a (T, T) mask over full attention, and plain causal attention."""
    from qkv.nn import masks
    from qkv.nn.attention import MultiHeadAttention

    if variant.startswith("op_"):
        return attention_op_call(variant[3:], m, T)
    attn = MultiHeadAttention(config(m, T, window=m["window"]))
    x = torch.randn(1, T, m["d"], requires_grad=True)  # (B, T, d)
    mask = {"block_window": masks.LocalWindow(m["window"]), "is_causal": masks.CAUSAL,
            "mask_window": masks.LocalWindow(m["window"]).materialise(T, T)}[variant]

    def call() -> None:
        attn(x, mask=mask).sum().backward()
        x.grad = None
        attn.zero_grad(set_to_none=True)

    return call


def attention_op_call(variant: str, m: dict, T: int) -> Callable[[], None]:
    """Forward + backward of the attention operation alone on given q, k, v ``(1, H, T, D)``."""
    from qkv.nn import masks
    from qkv.nn.attention import fused_attention
    from qkv.nn.local_attention import block_local_attention

    H, w = m["heads"], m["window"]
    D = m["d"] // H
    leaves = [torch.randn(1, T, H, D, requires_grad=True) for _ in range(3)]  # token-major, as projected
    q, k, v = (t.transpose(1, 2) for t in leaves)  # (1, H, T, D)
    attend = {"block_window": lambda: block_local_attention(q, k, v, w, D ** -0.5),
              "mask_window": lambda: fused_attention(q, k, v, scale=D ** -0.5,
                                                     mask=masks.LocalWindow(w).materialise(T, T)),
              "is_causal": lambda: fused_attention(q, k, v, scale=D ** -0.5, is_causal=True)}[variant]

    def call() -> None:
        attend().sum().backward()
        for t in leaves:
            t.grad = None

    return call


def memory_child(variant: str, size: str, lengths: list[int], threads: int) -> dict[str, float]:
    torch.set_num_threads(threads)
    m = MODEL[size]
    build = attention_call if variant in ATTENTION else train_call
    build(variant, m, 16)()  # imports, thread pools
    out = {}
    for T in sorted(lengths):
        call = build(variant, m, T)
        with common.PeakMemory("cpu") as mem:
            call()
        out[str(T)] = common.rounded(mem.peak_mib)
        del call
    return out


def runnable(size: str, cap_gib: float) -> dict[str, list[int]]:
    fast_bf16 = cpu_has_fast_bf16()
    return {v: [T for T in LENGTHS[size] if estimated_bytes(v, T, MODEL[size]) <= cap_gib * 2**30]
            if v != "bf16" or fast_bf16 else [] for v in TRAIN}


def run(size: str, threads: int, cap_gib: float, memory: bool) -> dict[str, Any]:
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    m, todo = MODEL[size], runnable(size, cap_gib)
    train: dict[str, dict[str, Any]] = {v: {} for v in TRAIN}
    for T in LENGTHS[size]:
        for v in TRAIN:
            if T in todo[v]:
                seconds = time_call(train_call(v, m, T), ROUNDS[size], warm_up=T <= 1024)
                train[v][str(T)] = {"ms": common.rounded(1e3 * seconds)}
            else:
                why = "no AVX-512-BF16/AMX on this CPU" if v == "bf16" and not todo[v] else \
                    f"estimated {estimated_bytes(v, T, m) / 2**30:.1f} GiB > cap {cap_gib} GiB"
                train[v][str(T)] = {"skipped": why}
    if memory:
        calls = [("benchmarks.long_context", ["--memory-child", v, "--size", size, "--threads", str(threads),
                                              "--lengths", *map(str, todo[v])]) for v in TRAIN if todo[v]]
        for v, peaks in zip([v for v in TRAIN if todo[v]], common.run_children(calls, 1)):
            for T, mib in peaks.items():
                train[v][T]["peak_mib"] = mib
    decode = {v: {str(n): decode_row(v, m, n) for n in LENGTHS[size]} for v in DECODE}
    attention = attention_section(size, threads, memory)
    return dict(benchmark="long_context", size=size, **common.environment("cpu", threads), model=m,
                lengths=LENGTHS[size], memory_cap_gib=cap_gib, train=train, decode=decode,
                ratios=ratios(train), attention=attention)


def attention_section(size: str, threads: int, memory: bool) -> dict[str, Any]:
    """One attention layer: time and peak memory of the block window against the masked window."""
    m, lengths = MODEL[size], ATTENTION_LENGTHS[size]
    rows: dict[str, dict[str, Any]] = {v: {} for v in ATTENTION}
    for T in lengths:
        for v in ATTENTION:
            rows[v][str(T)] = {"ms": common.rounded(1e3 * time_call(attention_call(v, m, T), ROUNDS[size], True))}
    if memory:
        calls = [("benchmarks.long_context", ["--memory-child", v, "--size", size, "--threads", str(threads),
                                              "--lengths", *map(str, lengths)]) for v in ATTENTION]
        for v, peaks in zip(ATTENTION, common.run_children(calls, 1)):
            for T, mib in peaks.items():
                rows[v][T]["peak_mib"] = mib
    ratio = {f"{prefix}mask_window/{prefix}block_window": {
        key: {T: common.rounded(rows[f"{prefix}mask_window"][T][key] / rows[f"{prefix}block_window"][T][key])
              for T in rows[f"{prefix}block_window"] if rows[f"{prefix}block_window"][T].get(key)}
        for key in ("ms", "peak_mib")} for prefix in ("", "op_")}
    return {"layer": dict(d=m["d"], heads=m["heads"], window=m["window"], batch=1), "lengths": lengths,
            "variants": rows, **ratio}


def ratios(train: dict[str, dict[str, Any]]) -> dict[str, dict[str, float]]:
    """time and memory of a peer / the fix, at each length both ran (> 1: the fix saves)."""
    out = {}
    for slow, fast in (("window_mask", "window"), ("is_causal", "window"), ("is_causal", "xl"),
                       ("is_causal", "checkpoint"), ("batch2", "accumulate"), ("reference", "is_causal")):
        for key in ("ms", "peak_mib"):
            out[f"{key}: {slow}/{fast}"] = {
                T: common.rounded(train[slow][T][key] / train[fast][T][key])
                for T in train[fast] if key in train[fast][T] and key in train[slow].get(T, {})
                and train[fast][T][key] > 0}
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    size = "quick" if args.quick else args.size
    if args.memory_child:
        result: dict[str, Any] = memory_child(args.memory_child, size, args.lengths, args.threads)
        print(__import__("json").dumps(result))
        return result
    cap = MEMORY_CAP_GIB[size] if args.memory_cap_gib is None else args.memory_cap_gib
    result = run(size, args.threads, cap, memory=not args.no_memory)
    common.emit(result, args.out)
    return result


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = common.base_parser(__doc__.split("\n\n")[0], LENGTHS)
    p.add_argument("--memory-cap-gib", type=float, help=f"skip runs estimated above this {MEMORY_CAP_GIB}")
    p.add_argument("--no-memory", action="store_true", help="time only (no memory child processes)")
    p.add_argument("--out", help="also write the JSON here")
    p.add_argument("--memory-child", choices=TRAIN + ATTENTION, help=argparse.SUPPRESS)
    p.add_argument("--lengths", type=int, nargs="+", help=argparse.SUPPRESS)
    return p.parse_args(argv)


if __name__ == "__main__":
    main()
