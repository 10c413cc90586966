"""Question 35's distillation study: a small student trained on a teacher's beam outputs
(sequence-level knowledge distillation, Kim & Rush 2016) against the same student trained on
the references, and both against the teacher.

The models are ``qkv train`` runs, cached in the lab's shared folder (``shared.trained_by_preset``)
and trained on first use; the full size is the documented recipe:

    qkv train translate-de-en --max-minutes 45 --threads 1                       # the teacher
    qkv distill runs/translate-de-en --out teacher.en                            # its beam-4 outputs
    qkv train translate-de-en d_model=128 d_ff=512 max_steps=1200 seed=S         # student, references
    qkv train translate-de-en d_model=128 d_ff=512 max_steps=1200 seed=S train_targets=teacher.en

Each student's BLEU is its run's own test score (all of test_2016_flickr at full size, beam 4);
speed is sentences/s on the lab's test subset, the models interleaved over rounds.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

from ..data import load_multi30k
from ..deploy.distill import distill
from ..tasks.translation import translate
from . import shared

TINY = ["n_layers=1", "n_heads=2", "vocab_size=300", "train_limit=64", "test_limit=4", "max_steps=4",
        "save_every=2", "warmup_steps=2"]
SIZES = {
    "smoke": {"teacher": [*TINY, "d_model=32", "d_ff=64"], "teacher_minutes": None,
              "student": [*TINY, "d_model=16", "d_ff=32"], "name": "q35-smoke"},
    "full": {"teacher": [], "teacher_minutes": 45.0, "student": ["d_model=128", "d_ff=512", "max_steps=1200"],
             "name": "q35"},
}
TEACHER_FOLDER = {"smoke": "q35-smoke-teacher", "full": "translate-de-en-45min"}
KINDS = ("references", "distilled")


def teacher(size: str):
    s = SIZES[size]
    return shared.trained_by_preset("translate-de-en", s["teacher"], TEACHER_FOLDER[size],
                                    max_minutes=s["teacher_minutes"], threads=1)


def teacher_targets(size: str) -> Path:
    """The teacher's beam-4 translations of the training sources, written on first use."""
    teacher(size)
    path = shared.cache_root() / f"{TEACHER_FOLDER[size]}-beam4.en"
    if not path.is_file():
        distill(shared.cache_root() / TEACHER_FOLDER[size], path, progress=False)
    return path


def student(size: str, kind: str, seed: int):
    """The small model of ``size`` for ``seed``, trained on the references or on the teacher's outputs."""
    s = SIZES[size]
    targets = [f"train_targets={teacher_targets(size)}"] if kind == "distilled" else []
    return shared.trained_by_preset("translate-de-en", [*s["student"], f"seed={seed}", *targets],
                                    f"{s['name']}-student-{kind}-seed{seed}", threads=1)


def sentences_per_s(models: dict[str, tuple], sources: list[str], beams: int, batch: int, rounds: int) -> dict:
    """name → median sentences/s of its (model, tokenizer), the models interleaved in each round."""
    speeds: dict[str, list[float]] = {name: [] for name in models}
    for _ in range(rounds):
        for name, (model, tok) in models.items():
            start = time.perf_counter()
            translate(model, tok, sources, beams=beams, batch_size=batch, truncate=True)
            speeds[name].append(len(sources) / (time.perf_counter() - start))
    return {name: statistics.median(v) for name, v in speeds.items()}


def measure(size: str, seeds: int, s: dict) -> list[dict[str, Any]]:
    """One row per model: role (teacher / references / distilled), seed, its run's test BLEU,
    parameters and median sentences/s on the lab's test subset (beam, batch and rounds of ``s``)."""
    model, tok, results = teacher(size)
    models = {"teacher": (model, tok)}
    rows = [{"role": "teacher", "seed": 0, "bleu": results["bleu"], "steps": results["steps"]}]
    for seed in range(seeds):
        for kind in KINDS:
            model, tok, results = student(size, kind, seed)
            models[f"{kind}-{seed}"] = (model, tok)
            rows.append({"role": kind, "seed": seed, "bleu": results["bleu"], "steps": results["steps"]})
    sources = [p[0] for p in load_multi30k("test")[: s["test_sentences"]]]
    speeds = sentences_per_s(models, sources, s["beams"], s["batch_size"], s["rounds"])
    for row, (name, (model, _)) in zip(rows, models.items()):
        row.update(sentences_per_s=speeds[name], parameters=sum(p.numel() for p in model.parameters()))
    return rows


__all__ = ["SIZES", "KINDS", "teacher", "teacher_targets", "student", "measure"]
