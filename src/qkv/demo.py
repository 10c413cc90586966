"""``make demo``: train a German→English translator on Multi30k in a bounded time, then show it.

    python -m qkv.demo [--minutes 10] [--out runs/demo-...]

Trains the ``translate-de-en`` preset (3+3 layers, d=256, joint byte-level BPE) for
``--minutes`` of wall time, scores beam search on the Multi30k 2016 test set with sacreBLEU,
prints a few translations beside their references, and says how to use or continue the model.
Everything is read from the local data folder; nothing is downloaded.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from .tasks.run import train

# The preset is the 45-minute recipe. A short run keeps about four checkpoints, the first of them
# early in training: save a little more often and average only the last two.
SHORT_RUN = ["save_every=150", "average_last=2"]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m qkv.demo", description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=10.0, help="training budget in minutes (default 10)")
    p.add_argument("--out", help="run folder (default runs/demo-<time>)")
    args = p.parse_args(argv)
    out = Path(args.out or time.strftime("runs/demo-%Y%m%d-%H%M%S"))
    print(f"qkv demo: training a de→en translator on Multi30k for {args.minutes:g} minutes "
          f"on {torch.get_num_threads()} CPU threads → {out}\n")
    code = train("translate-de-en", SHORT_RUN if args.minutes < 30 else [], out=str(out), max_minutes=args.minutes)
    if code != 0:
        return code
    results = json.loads((out / "results.json").read_text())
    print("\nSome test translations (source / reference / qkv):")
    for ex in results["examples"]:
        print(f"  de:   {ex['source']}\n  ref:  {ex['reference']}\n  qkv:  {ex['hypothesis']}\n")
    print(f"Multi30k test_2016_flickr, beam {results['beams']}: sacreBLEU {results['bleu']:.1f} (13a, lowercase), "
          f"cased {results['bleu_cased']:.1f}, chrF {results['chrf']:.1f}, after {results['steps']} steps")
    ckpt = results["checkpoint"]
    print(f"\nCheckpoint: {ckpt}")
    print("Translate more:  .venv/bin/qkv translate " + ckpt + ' "Ein Hund rennt über die Wiese."')
    print("Keep training:   .venv/bin/qkv train translate-de-en --resume " + str(out) + " --max-minutes 30")
    print("Evaluate:        .venv/bin/qkv evaluate " + ckpt)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
