"""Tokenizer speed: qkv's readable trainers and encoders against HF `tokenizers`, in one run.

Question: are the readable tokenizers fast enough for real corpora? Claim under test (the
tokenizer issue): an 8,000-token BPE trains on Multi30k train (de+en, 58,000 lines, 3.9 MB) in
under 30 s on a 2-core CPU. We report the ratio to HF's Rust trainer with matching settings
(`qkv.tokenize.fast.train_hf`), the encode throughput of both, and check on the whole corpus
that HF, given our tokenizer.json, produces exactly our ids.

Rerun (from the repository root; JSON to stdout and to `--out`)::

    python -m benchmarks.tokenizer_speed --out runs/bench/tokenizer_speed.json
    python -m benchmarks.tokenizer_speed --size tiny      # the tests' smoke size

Timing: peers interleaved round by round, median window (`benchmarks.common.time_interleaved`),
since the machine is shared. Training times a full `train` call; encoding times a cold start
(tokenizer built from its JSON, empty word cache) then the whole corpus, one line per text.
qkv runs on one core; HF trains and `encode_batch`es on all cores (`hf_one_by_one` calls
`encode` per line). Verdict: `bpe_under_30s`.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file, not with -m: make `benchmarks.common` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks import common  # noqa: E402
from tokenizers import Tokenizer as HFTokenizer  # noqa: E402

from qkv.tokenize import KINDS  # noqa: E402
from qkv.tokenize._corpus import read_corpus  # noqa: E402
from qkv.tokenize.fast import train_hf  # noqa: E402
from qkv.tokenize.io import from_json  # noqa: E402

# lines: None = the whole corpus (split between its start and end, i.e. both languages).
SIZES = {
    "tiny": dict(lines=1_000, vocab=600, rounds=1),
    "quick": dict(lines=10_000, vocab=4_000, rounds=2),
    "full": dict(lines=None, vocab=8_000, rounds=3),
}


def _timings(fns: dict[str, Any], rounds: int) -> dict[str, float]:
    result = common.time_interleaved(fns, warmup=1, rounds=rounds, min_window_s=0.0)
    return {name: r["median_s"] for name, r in result.items()}


def bench_kind(kind: str, lines: list[str], vocab: int, rounds: int) -> dict[str, Any]:
    megabytes = sum(len(line.encode("utf-8")) for line in lines) / 1e6
    train = _timings({"qkv": lambda: KINDS[kind].train(lines, vocab),
                      "hf": lambda: train_hf(kind, lines, vocab)}, rounds)
    ours = KINDS[kind].train(lines, vocab)
    as_json = ours.to_json()
    as_text = json.dumps(as_json, ensure_ascii=False)
    encode = _timings({
        "qkv": lambda: from_json(as_json).encode_batch(lines),
        "hf_batch": lambda: [e.ids for e in HFTokenizer.from_str(as_text).encode_batch(lines)],
        "hf_one_by_one": lambda: [e.ids for e in map(HFTokenizer.from_str(as_text).encode,
                                                     lines)],
    }, rounds)
    hf_ids = [e.ids for e in HFTokenizer.from_str(as_text).encode_batch(lines)]
    return {
        "kind": kind,
        "vocab_size": ours.vocab_size,
        "merges": len(ours.train_log.scores),
        "first_tie": ours.train_log.first_tie,
        "train_s": {name: common.rounded(t) for name, t in train.items()},
        "train_qkv_over_hf": common.rounded(train["qkv"] / train["hf"], 3),
        "encode_mb_per_s": {name: common.rounded(megabytes / t, 3) for name, t in encode.items()},
        "identical_ids_to_hf": from_json(as_json).encode_batch(lines) == hf_ids,
    }


def run(size: str = "full", *, corpus: str = "multi30k",
        kinds: tuple[str, ...] = tuple(KINDS)) -> dict[str, Any]:
    config = SIZES[size]
    lines = read_corpus(corpus)
    if config["lines"] is not None:
        half = config["lines"] // 2
        lines = lines[:half] + lines[-half:]
    results = [bench_kind(kind, lines, config["vocab"], config["rounds"]) for kind in kinds]
    bpe = next((r for r in results if r["kind"] == "bpe"), None)
    return {
        "size": size,
        "corpus": corpus,
        "lines": len(lines),
        "megabytes": common.rounded(sum(len(x.encode("utf-8")) for x in lines) / 1e6, 3),
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
        "results": results,
        "bpe_under_30s": None if bpe is None else bpe["train_s"]["qkv"] < 30,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    import argparse

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", default="full", choices=list(SIZES))
    p.add_argument("--corpus", default="multi30k", help="a corpus name or a text file")
    p.add_argument("--kinds", nargs="+", default=list(KINDS), choices=list(KINDS))
    p.add_argument("--out", help="also write the JSON here")
    args = p.parse_args(argv)
    result = run(args.size, corpus=args.corpus, kinds=tuple(args.kinds))
    common.emit(result, args.out)
    return result


if __name__ == "__main__":
    main()
