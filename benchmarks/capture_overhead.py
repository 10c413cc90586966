"""What attention capture costs when it is not used, and what it costs when it is (qkv.interpret).

Question: does a model that has been through ``qkv.interpret.capture`` run as fast as one that
never was, and bit for bit the same? And how much slower is a captured forward (the reference
path, weights materialised) than the fused one?

Rerun (from the repository root; the JSON goes to stdout and to ``--out``)::

    python -m benchmarks.capture_overhead --threads 1 --out runs/bench/capture_overhead.json
    python -m benchmarks.capture_overhead --quick

The model: the ``translate-de-en`` shape (d 256, 3+3 layers, 4 heads, vocab 8000), random
weights, eval mode, batch 8 × 32 source and target tokens. Four arms, interleaved round by round
(median of ``rounds`` rounds of ``calls`` forwards each): ``never`` (a model never captured),
``after`` (the same weights in a second model that went through a ``capture`` block, then left
it), ``capture_one`` (inside a block capturing one decoder layer's cross-attention) and
``capture_all`` (every attention module). ``after/never`` is the claim "zero cost when not
capturing"; the machine's noise is ``never`` against itself (two copies of the never-captured
model, ``never_again/never``).
"""

from __future__ import annotations

import copy
import sys
import time
from contextlib import nullcontext
from pathlib import Path
from statistics import median
from typing import Any

import torch

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks import common  # noqa: E402
from qkv import ModelConfig, build_model  # noqa: E402
from qkv.interpret import capture  # noqa: E402

SHAPE = dict(full=dict(d=256, layers=3, heads=4, vocab=8000, batch=8, length=32),
             quick=dict(d=256, layers=3, heads=4, vocab=8000, batch=8, length=32),
             tiny=dict(d=32, layers=1, heads=2, vocab=100, batch=2, length=8))
ROUNDS = dict(full=15, quick=5, tiny=2)
CALLS = dict(full=10, quick=5, tiny=2)


def models(s: dict) -> dict[str, torch.nn.Module]:
    torch.manual_seed(0)
    cfg = ModelConfig(family="seq2seq", vocab_size=s["vocab"], d_model=s["d"], n_layers=s["layers"],
                      n_heads=s["heads"], d_ff=4 * s["d"], max_len=128)
    never = build_model(cfg).eval()
    after = copy.deepcopy(never)
    with capture(after):
        pass  # in and out: what is left behind is what this measures
    return {"never": never, "never_again": copy.deepcopy(never), "after": after}


def arms(s: dict):
    m = models(s)
    yield "never", m["never"], nullcontext
    yield "never_again", m["never_again"], nullcontext
    yield "after", m["after"], nullcontext
    yield "capture_one", m["never"], lambda: capture(m["never"], layers=[s["layers"] - 1], kinds=("cross",))
    yield "capture_all", m["never"], lambda: capture(m["never"])


def run(size: str, threads: int) -> dict[str, Any]:
    torch.set_num_threads(threads)
    s = SHAPE[size]
    g = torch.Generator().manual_seed(1)
    src = torch.randint(4, s["vocab"], (s["batch"], s["length"]), generator=g)  # (B, S)
    tgt = torch.randint(4, s["vocab"], (s["batch"], s["length"]), generator=g)  # (B, T)
    plan = list(arms(s))
    times: dict[str, list[float]] = {name: [] for name, _, _ in plan}
    outputs = {}
    with torch.inference_mode():
        for _, model, context in plan:
            model(src, tgt)  # warm-up
        for _ in range(ROUNDS[size]):
            for name, model, context in plan:
                with context():
                    start = time.perf_counter()
                    for _ in range(CALLS[size]):
                        out = model(src, tgt)
                    times[name].append((time.perf_counter() - start) / CALLS[size])
                outputs[name] = out
    ms = {name: common.rounded(1e3 * median(t)) for name, t in times.items()}
    return dict(benchmark="capture_overhead", size=size, **common.environment("cpu", threads), shape=s,
                rounds=ROUNDS[size], calls=CALLS[size], ms_per_forward=ms,
                ratios={f"{a}/never": common.rounded(ms[a] / ms["never"]) for a in ms if a != "never"},
                after_bit_identical=bool(torch.equal(outputs["after"], outputs["never"])),
                capture_max_abs_diff=float((outputs["capture_all"] - outputs["never"]).abs().max()))


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = common.base_parser(__doc__.split("\n\n")[0], SHAPE)
    p.add_argument("--out", help="also write the JSON here")
    args = p.parse_args(argv)
    result = run("quick" if args.quick else args.size, args.threads)
    common.emit(result, args.out)
    return result


if __name__ == "__main__":
    main()
