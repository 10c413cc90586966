"""A trained translator in every deployment form: BLEU, sentences/s and size (question 35).

Question: what does each way of shipping the model (``qkv.deploy.forms``: eager PyTorch at
fp32/bf16/int8, ONNX Runtime fp32/int8, CTranslate2 fp32/int8) cost in quality and buy in
speed, on the full Multi30k test set? Claims under test: int8 stays within 0.5 BLEU of fp32;
the runtimes are faster than eager PyTorch; qkv's best form against CTranslate2 int8, the
engine people pick for fast CPU translation.

Rerun (from the repository root; the JSON goes to stdout and to ``--out``)::

    python -m benchmarks.deploy_forms runs/translate-de-en --threads 2 --out runs/bench/deploy_forms.json
    python -m benchmarks.deploy_forms runs/translate-de-en --quick   # 64 sentences

Every form translates the same sentences (test_2016_flickr, or its first ``--sentences``) at
beam 4 (α 0.6) in batches of 32 on ``--threads`` threads; sentences/s is the median of
``--rounds`` rounds, the forms interleaved within each round, after one warm-up batch each.
BLEU is sacreBLEU 13a (lowercased, as the README's number). "same" is the share of
translations identical to torch-fp32's. ``torch_fp32_profile``: where eager fp32 decoding of one
batch spends its time (each op's share of self CPU time, torch.profiler).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from statistics import median
from typing import Any

import torch

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks import common  # noqa: E402
from qkv.data import load_multi30k  # noqa: E402
from qkv.deploy.forms import available, build_forms  # noqa: E402
from qkv.deploy.precision import open_model  # noqa: E402
from qkv.tasks.translation import score  # noqa: E402

SENTENCES = dict(full=None, quick=64, tiny=6)
ROUNDS = dict(full=3, quick=2, tiny=1)
BEAMS, BATCH = 4, 32


def timed_rounds(forms, sources: list[str], rounds: int) -> dict[str, dict[str, Any]]:
    """Each form's translations (first round) and the median sentences/s over interleaved rounds."""
    for form in forms:
        form.translate(sources[:BATCH], BEAMS, BATCH)  # warm-up: thread pools, graph optimisation
    hyps: dict[str, list[str]] = {}
    speeds: dict[str, list[float]] = {f.name: [] for f in forms}
    for _ in range(rounds):
        for form in forms:
            start = time.perf_counter()
            out = form.translate(sources, BEAMS, BATCH)
            speeds[form.name].append(len(sources) / (time.perf_counter() - start))
            hyps.setdefault(form.name, out)
    return {f.name: {"hyps": hyps[f.name], "sentences_per_s": median(speeds[f.name])} for f in forms}


def profile_torch(model: torch.nn.Module, tok, sources: list[str], top: int = 8) -> dict[str, float]:
    """Where eager PyTorch spends one batch's decoding: each op's share of self CPU time, the
    ``top`` largest, plus the share of every op not among them ("other")."""
    from torch.profiler import ProfilerActivity, profile

    from qkv.tasks.translation import translate

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        translate(model, tok, sources[:BATCH], beams=BEAMS, batch_size=BATCH, truncate=True)
    events = [(e.key, e.self_cpu_time_total) for e in prof.key_averages()]
    total = sum(t for _, t in events) or 1.0
    ranked = sorted(events, key=lambda e: -e[1])
    shares = {key: common.rounded(t / total, 3) for key, t in ranked[:top]}
    shares["other"] = common.rounded(sum(t for _, t in ranked[top:]) / total, 3)
    return shares


def run(checkpoint: str, size: str, threads: int, limit: int | None) -> dict[str, Any]:
    torch.set_num_threads(threads)
    model, tok, _ = open_model(checkpoint, family="seq2seq", command="benchmarks.deploy_forms")
    pairs = load_multi30k("test")[:limit] if limit else load_multi30k("test")
    sources, refs = [p[0] for p in pairs], [p[1] for p in pairs]
    with tempfile.TemporaryDirectory() as tmp:
        forms = build_forms(model, tok, Path(tmp), available(), threads=threads)
        measured = timed_rounds(forms, sources, ROUNDS[size])
        sizes = {f.name: f.bytes for f in forms}
    fp32 = measured["torch-fp32"]
    rows = {}
    for name, m in measured.items():
        rows[name] = {**{k: common.rounded(v) for k, v in score(m["hyps"], refs).items()},
                      "sentences_per_s": common.rounded(m["sentences_per_s"]),
                      "speed_vs_torch_fp32": common.rounded(m["sentences_per_s"] / fp32["sentences_per_s"]),
                      "mib": common.rounded(sizes[name] / 2**20),
                      "same_as_fp32": common.rounded(sum(a == b for a, b in zip(m["hyps"], fp32["hyps"])) / len(refs))}
    return dict(benchmark="deploy_forms", size=size, **common.environment("cpu", threads), checkpoint=checkpoint,
                sentences=len(refs), beams=BEAMS, batch=BATCH, rounds=ROUNDS[size], forms=rows,
                torch_fp32_profile=profile_torch(model, tok, sources))


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = common.translator_parser(__doc__.split("\n\n")[0], SENTENCES).parse_args(argv)
    size = "quick" if args.quick else args.size
    result = run(args.checkpoint, size, args.threads, args.sentences or SENTENCES[size])
    common.emit(result, args.out)
    return result


if __name__ == "__main__":
    main()
