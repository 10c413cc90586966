"""What pruning a trained translator does to BLEU and to decoding speed, against what was predicted.

Question: heads and feed-forward neurons removed physically (``qkv.interpret.heads``,
``qkv.deploy.pruning``) make every matrix smaller — how much faster does decoding get, and how
much quality goes? Magnitude pruning, beside them, zeroes half of every weight matrix: what
does that buy on dense kernels? And did the head importance scores predict the damage? (The
sum of each pruned head's own ablation loss increase, against the loss increase of pruning
them together.)

Rerun (from the repository root; the JSON goes to stdout and to ``--out``)::

    python -m benchmarks.structured_pruning runs/translate-de-en --threads 2 --out runs/bench/structured_pruning.json
    python -m benchmarks.structured_pruning runs/translate-de-en --quick   # 64 sentences

Head importance: each head alone masked out (``ablation_importance``) on the first 512
validation pairs, the loss increase. Variants: ``dense``; ``heads_25`` / ``heads_50`` (the
least important quarter / half of all heads removed, every module keeping one); ``ffn_25`` /
``ffn_50`` (that share of every feed-forward block's neurons, smallest ‖up‖·‖down‖);
``heads_50+ffn_50``; ``magnitude_50`` (half of every linear layer's weights zeroed, dense).
Each translates test_2016_flickr (or its first ``--sentences``) at beam 4 in batches of 32:
sacreBLEU, sentences/s (median of interleaved rounds) and output words/s (a damaged model may
write longer outputs, which costs sentences/s without any kernel being slower), the output's
length against the references', parameters, validation loss.
"""

from __future__ import annotations

import copy
import sys
import time
from pathlib import Path
from statistics import median
from typing import Any

import torch

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks import common  # noqa: E402
from qkv.data import load_multi30k  # noqa: E402
from qkv.deploy.precision import open_model  # noqa: E402
from qkv.deploy.pruning import magnitude_prune, prune_ffn_fraction, translation_loss, validation_batches  # noqa: E402
from qkv.interpret import ablation_importance, prune_least_important  # noqa: E402
from qkv.tasks.translation import score, translate  # noqa: E402

SENTENCES = dict(full=None, quick=64, tiny=6)
VAL_PAIRS = dict(full=512, quick=128, tiny=8)
ROUNDS = dict(full=3, quick=2, tiny=1)
BEAMS, BATCH = 4, 32


def val_batches(tok, cfg, n: int) -> list[dict]:
    return validation_batches(tok, cfg, load_multi30k("val")[:n])


@torch.no_grad()
def val_loss(model: torch.nn.Module, batches: list[dict]) -> float:
    return sum(translation_loss(model, b).item() for b in batches) / len(batches)


def variants(model: torch.nn.Module, importance: dict, n_heads: int) -> dict[str, tuple[torch.nn.Module, list]]:
    """name → (pruned copy, the heads it removed)."""
    out: dict[str, tuple[torch.nn.Module, list]] = {"dense": (model, [])}
    for name, heads, ffn in (("heads_25", n_heads // 4, 0.0), ("heads_50", n_heads // 2, 0.0),
                             ("ffn_25", 0, 0.25), ("ffn_50", 0, 0.5), ("heads_50+ffn_50", n_heads // 2, 0.5)):
        pruned = copy.deepcopy(model)
        removed = prune_least_important(pruned, importance, heads) if heads else []
        if ffn:
            prune_ffn_fraction(pruned, ffn)
        out[name] = (pruned, removed)
    sparse = copy.deepcopy(model)
    magnitude_prune(sparse, 0.5)
    out["magnitude_50"] = (sparse, [])
    return out


def timed(models: dict[str, torch.nn.Module], tok, sources: list[str], rounds: int) -> dict[str, dict]:
    hyps, speeds = {}, {name: [] for name in models}
    for _ in range(rounds):
        for name, model in models.items():
            start = time.perf_counter()
            out = translate(model, tok, sources, beams=BEAMS, batch_size=BATCH, truncate=True)
            speeds[name].append(len(sources) / (time.perf_counter() - start))
            hyps.setdefault(name, out)
    return {name: {"hyps": hyps[name], "sentences_per_s": median(speeds[name])} for name in models}


def run(checkpoint: str, size: str, threads: int, limit: int | None) -> dict[str, Any]:
    torch.set_num_threads(threads)
    model, tok, _ = open_model(checkpoint, family="seq2seq", command="benchmarks.structured_pruning")
    batches = val_batches(tok, model.config, VAL_PAIRS[size])
    with torch.no_grad():
        importance = ablation_importance(model, batches, translation_loss)
    n_heads = sum(len(v) for v in importance.values())
    built = variants(model, importance, n_heads)
    pairs = load_multi30k("test")[:limit] if limit else load_multi30k("test")
    sources, refs = [p[0] for p in pairs], [p[1] for p in pairs]
    measured = timed({name: m for name, (m, _) in built.items()}, tok, sources, ROUNDS[size])
    base_loss, base_speed = val_loss(model, batches), measured["dense"]["sentences_per_s"]
    rows = {}
    for name, (pruned, removed) in built.items():
        m = measured[name]
        words = sum(len(h.split()) for h in m["hyps"])
        rows[name] = {"bleu": common.rounded(score(m["hyps"], refs)["bleu"]),
                      "sentences_per_s": common.rounded(m["sentences_per_s"]),
                      "words_per_s": common.rounded(m["sentences_per_s"] * words / len(refs)),
                      "length_ratio": common.rounded(words / sum(len(r.split()) for r in refs)),
                      "speed_vs_dense": common.rounded(m["sentences_per_s"] / base_speed),
                      "parameters": sum(p.numel() for p in pruned.parameters()),
                      "val_loss_increase": common.rounded(val_loss(pruned, batches) - base_loss),
                      "predicted_increase": common.rounded(sum(importance[k][h] for k, h in removed))
                      if removed else None}
    return dict(benchmark="structured_pruning", size=size, **common.environment("cpu", threads),
                checkpoint=checkpoint, sentences=len(refs), heads=n_heads, beams=BEAMS, batch=BATCH,
                rounds=ROUNDS[size], variants=rows)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = common.translator_parser(__doc__.split("\n\n")[0], SENTENCES).parse_args(argv)
    size = "quick" if args.quick else args.size
    result = run(args.checkpoint, size, args.threads, args.sentences or SENTENCES[size])
    common.emit(result, args.out)
    return result


if __name__ == "__main__":
    main()
