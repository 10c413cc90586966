"""Question 35: Deploying on different hardware (部署)

Claims under test (as commonly answered): int8 quantisation makes CPU inference faster at a
negligible cost in quality; a dedicated inference runtime (ONNX Runtime, CTranslate2) is faster
than the framework the model was trained in; bf16 speeds inference up wherever it is used;
pruning attention heads speeds inference up; a small model distilled from a large one's outputs
beats the same small model trained on the references.

Method: the lab's shared Multi30k de→en translators (``qkv.lab.shared.trained_translator``,
one per seed; their recipe and BLEU in the record) are put into every deployment form qkv ships
(``qkv.deploy.forms``: eager PyTorch at fp32, bf16 and int8; ONNX Runtime at fp32 and int8;
CTranslate2 at fp32 and int8), and pruned (``torch-heads25``: the quarter of all heads whose
ablation raises the validation loss least, removed physically). Each form translates the same
subset of test_2016_flickr with beam 4 in batches of 32, the forms interleaved over 5 rounds:
sacreBLEU (13a, lowercase), the median sentences/s, weights on disk, how many translations are
identical to the fp32 model's, and the median time of one sentence sent alone (batch 1, its
first 30). All of it on one CPU thread and again on two; the claims are judged on one. Quality and speed differences are
paired by seed against the seed noise. bf16 runs only where the CPU has AVX-512-BF16 or AMX
(elsewhere it is several times slower and not a deployment choice).

Distillation (``qkv.lab.distillation``): the 45-minute translator (the README's recipe, on one
thread) is the teacher; its beam-4 translations of the 29,000 training sources (``qkv
distill``) train a student of half its width (d 128, FFN 512, 1,200 steps), against the same
student trained on the references, one pair per seed. BLEU is each run's own test score (all of
test_2016_flickr); speed is measured on the forms' subset, the same way. The models are cached
in the lab's shared folder; trained from nothing they take about 45 + 6 × 20 minutes of one
core.

Served (``qkv.deploy.loadtest``): seed 0's translator behind ``qkv serve`` (PyTorch fp32, one
thread), 32 clients each sending one test sentence at a time for 20 s, with micro-batching (up to
32 sentences, a 5 ms window) and without: requests/s, latency percentiles, the server's batches.

Reproduce: ``qkv ask 35 --size full``.
"""

from __future__ import annotations

import contextlib
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator

import sacrebleu
import torch

from ..data import load_multi30k
from ..deploy.forms import available, build_forms, heads_pruned_form
from ..deploy.loadtest import served_throughput
from ..deploy.pruning import validation_batches
from ..train.runtime import cpu_has_fast_bf16
from . import base, distillation, plots, shared
from .table import Table, fmt

NUMBER = 35
TITLE = "Deploying on different hardware"
KEYWORD = "部署"
CLAIMS = [
    "int8 quantisation makes CPU inference faster at a negligible cost in quality (< 0.5 BLEU).",
    "A dedicated inference runtime (ONNX Runtime, CTranslate2) is faster than eager PyTorch.",
    "bf16 inference is faster than fp32.",
    "Pruning a quarter of the attention heads speeds inference up.",
    "Sequence-level distillation beats training the small model on the references.",
]
ANSWER = """\
Deployment is fitting the same function into the hardware's cheapest arithmetic and the least
work around it. Decoding a small translator on a CPU is bound by moving weights and by the
framework's work between matrix products, not by the products themselves. int8 weights are a
quarter of fp32's bytes and the CPU's int8 dot-product instructions (AVX-512 VNNI, AMX) do four
times the work per instruction; the error they add is a rounding per output channel, small
against what the model has learnt. A dedicated runtime removes the rest: ONNX Runtime runs a
fixed graph without Python in between, CTranslate2 is written for exactly this decoder loop
(fused layers, cached keys, batched beams in C++). bf16 halves the bytes, but only hardware with
native bf16 units computes in it fast; elsewhere it is emulated and slower. On a GPU the same
reasoning picks fp16/bf16 and large batches; qkv's forms run on the CPU here. Making the model
smaller is the other lever: pruning removes heads or neurons the model barely uses (the products
shrink, the work between them does not), and distillation trains a small model on a large one's
outputs, which are easier to imitate than human references. The tables show what each form
buys on this CPU, for a translator this small, at beam 4, on one thread."""
FULL_SEEDS = 3
SMOKE_SEEDS = 1
MIN_SEEDS = 3
N_SD = 2.0
MAX_BLEU_DROP = 0.5  # BLEU points: a quantised form within this of fp32 keeps quality
MIN_SPEEDUP = 1.1  # a form must be this much faster than torch-fp32 to count as faster
MIN_BLEU_GAIN = 0.5  # BLEU points a distilled student must gain over its reference-trained twin
SIZES = {
    "smoke": {"translator": "smoke", "test_sentences": 6, "beams": 2, "batch_size": 4, "rounds": 1, "val_pairs": 8,
              "latency_sentences": 2, "serve_clients": 2, "serve_seconds": 0.5},
    "full": {"translator": "full", "test_sentences": 300, "beams": 4, "batch_size": 32, "rounds": 5,
             "val_pairs": 512, "latency_sentences": 30, "serve_clients": 32, "serve_seconds": 20.0},
}
SERVE_WINDOW_MS = 5.0  # the micro-batching window of the served phase with batching on
PRUNED = "torch-heads25"
THREADS = (1, 2)  # every form is measured on each; the claims are judged on one thread
INT8 = ("torch-int8", "onnx-int8", "ct2-int8")
RUNTIMES = ("onnx-fp32", "ct2-fp32", "onnx-int8", "ct2-int8")


def measure(forms, sources: list[str], refs: list[str], s: dict) -> list[dict[str, Any]]:
    """Each form on the test subset, the forms interleaved over ``rounds`` rounds (so a change in
    the machine's load falls on all of them): BLEU of the first round's translations, the median
    sentences/s, size, and the share of translations identical to the first form's (torch-fp32)."""
    hyps: dict[str, list[str]] = {}
    speeds: dict[str, list[float]] = {f.name: [] for f in forms}
    for _ in range(s["rounds"]):
        for form in forms:
            start = time.perf_counter()
            out = form.translate(sources, s["beams"], s["batch_size"])
            speeds[form.name].append(len(sources) / (time.perf_counter() - start))
            hyps.setdefault(form.name, out)
    reference = hyps[forms[0].name]
    return [{"form": f.name, "bleu": sacrebleu.corpus_bleu(hyps[f.name], [refs], lowercase=True).score,
             "sentences_per_s": statistics.median(speeds[f.name]), "mib": f.bytes / 2**20,
             "latency_ms_batch1": latency_ms(f, sources[: s["latency_sentences"]], s["beams"]),
             "same_as_fp32": sum(h == r for h, r in zip(hyps[f.name], reference)) / len(refs)} for f in forms]


def latency_ms(form, sources: list[str], beams: int) -> float:
    """Milliseconds per request when each sentence comes alone (batch 1), the median over ``sources``."""
    times = []
    for sentence in sources:
        start = time.perf_counter()
        form.translate([sentence], beams, 1)
        times.append(1000 * (time.perf_counter() - start))
    return statistics.median(times)


def run_seed(seed: int, s: dict, names: list[str]) -> list[dict[str, Any]]:
    model, tok, record = shared.trained_translator(s["translator"], seed)
    pairs = load_multi30k("test")[: s["test_sentences"]]
    sources, refs = [p[0] for p in pairs], [p[1] for p in pairs]
    val = validation_batches(tok, model.config, load_multi30k("val")[: s["val_pairs"]])
    rows = []
    for threads in THREADS:
        with tempfile.TemporaryDirectory() as tmp, torch_threads(threads):
            forms = build_forms(model, tok, Path(tmp), names, threads=threads)
            forms.append(heads_pruned_form(model, tok, Path(tmp), val))
            rows += [{"threads": threads, **row} for row in measure(forms, sources, refs, s)]
    return [{"seed": seed, "translator_bleu": record.get("bleu"), **row} for row in rows]


def served(s: dict) -> dict[str, Any]:
    """Seed 0's translator behind ``qkv serve`` (PyTorch fp32, one thread): ``serve_clients``
    clients, each sending one test sentence at a time at the lab's beam, for ``serve_seconds``
    with micro-batching on (up to a batch of the lab's size, a SERVE_WINDOW_MS window), then off."""
    sources = [p[0] for p in load_multi30k("test")[: s["test_sentences"]]]
    checkpoint = shared.translator_folder(s["translator"], 0) / "averaged"
    body_of = lambda rng: {"text": rng.choice(sources), "beams": s["beams"], "truncate": True}  # noqa: E731
    return served_throughput(checkpoint, body_of, clients=s["serve_clients"], seconds=s["serve_seconds"],
                             threads=1, max_batch=s["batch_size"], window_ms=SERVE_WINDOW_MS)


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def run(size: str, seeds: int, out: Path) -> dict[str, Any]:
    started = time.perf_counter()
    s = SIZES[size]
    names = available()
    with base.one_thread():
        rows = [row for seed in range(seeds) for row in run_seed(seed, s, names)]
        students = distillation.measure(size, seeds, s)
        served_numbers = served(s)
    results = {"rows": rows, "forms": [*names, PRUNED], "bf16_native": cpu_has_fast_bf16(), "distillation": students,
               "served": served_numbers}
    config = {**s, "translator_sizes": shared.TRANSLATOR_SIZES[s["translator"]], "data": "Multi30k de→en",
              "distillation": distillation.SIZES[size],
              "test_subset": f"first {s['test_sentences']} pairs of test_2016_flickr", "threads": list(THREADS),
              "serve_window_ms": SERVE_WINDOW_MS}
    names_out = [plot(results, out)]
    return base.finish(verdict, base.record(NUMBER, size, seeds, out, config, results, names_out, started), out)


def column(metrics: dict[str, Any], form: str, key: str, threads: int = 1) -> list[float]:
    """``key`` of ``form`` per seed, measured on ``threads`` threads."""
    rows = (r for r in metrics["results"]["rows"] if r["form"] == form and r.get("threads", 1) == threads)
    return [r[key] for r in sorted(rows, key=lambda r: r["seed"])]


def speedup(metrics: dict[str, Any], form: str) -> dict[str, Any]:
    """sentences/s of ``form`` over torch-fp32's, paired by seed. ``outcome``: "faster" beyond
    noise and by MIN_SPEEDUP, "not faster" when even mean + N_SD·sd stays below MIN_SPEEDUP,
    else "unclear"."""
    ratios = [a / b for a, b in zip(column(metrics, form, "sentences_per_s"),
                                    column(metrics, "torch-fp32", "sentences_per_s"))]
    m, sd = base.mean(ratios), base.std(ratios)
    outcome = ("faster" if m - 1 > N_SD * sd and m >= MIN_SPEEDUP else
               "not faster" if m + N_SD * sd < MIN_SPEEDUP else "unclear")
    return {"mean": m, "sd": sd, "outcome": outcome}


def bleu_drop(metrics: dict[str, Any], form: str) -> dict[str, Any]:
    """BLEU of torch-fp32 − ``form``, paired by seed: "kept" when mean + N_SD·sd < MAX_BLEU_DROP,
    "lost" when mean − N_SD·sd > MAX_BLEU_DROP, else "unclear"."""
    d = base.paired_effect(column(metrics, "torch-fp32", "bleu"), column(metrics, form, "bleu"), N_SD, 0.0)
    outcome = ("kept" if d["mean"] + N_SD * d["sd"] < MAX_BLEU_DROP else
               "lost" if d["mean"] - N_SD * d["sd"] > MAX_BLEU_DROP else "unclear")
    return {**d, "outcome": outcome}


def combined(outcomes: list[str]) -> str:
    """Per-form outcomes ("holds", "fails", "unclear") → the claim's: all alike, else unclear."""
    return outcomes[0] if len(set(outcomes)) == 1 else "unclear"


def int8_claim(metrics: dict[str, Any]) -> tuple[str, str]:
    forms = [f for f in INT8 if f in metrics["results"]["forms"]]
    parts, outcomes = [], []
    for f in forms:
        sp, drop = speedup(metrics, f), bleu_drop(metrics, f)
        outcomes.append("holds" if sp["outcome"] == "faster" and drop["outcome"] == "kept" else
                        "fails" if sp["outcome"] == "not faster" or drop["outcome"] == "lost" else "unclear")
        parts.append(f"{f} ×{sp['mean']:.2f} ± {sp['sd']:.2f} speed ({sp['outcome']}), "
                     f"BLEU fp32 − int8 {drop['mean']:+.2f} ± {drop['sd']:.2f} ({drop['outcome']})")
    return combined(outcomes), "; ".join(parts)


def runtime_claim(metrics: dict[str, Any]) -> tuple[str, str]:
    forms = [f for f in RUNTIMES if f in metrics["results"]["forms"]]
    speeds = {f: speedup(metrics, f) for f in forms}
    outcomes = [{"faster": "holds", "not faster": "fails"}.get(v["outcome"], "unclear") for v in speeds.values()]
    return combined(outcomes), "; ".join(f"{f} ×{v['mean']:.2f} ± {v['sd']:.2f} ({v['outcome']})"
                                         for f, v in speeds.items())


def bf16_claim(metrics: dict[str, Any]) -> tuple[str, str]:
    if "torch-bf16" not in metrics["results"]["forms"]:
        return "unclear", "not measured: this CPU has neither AVX-512-BF16 nor AMX"
    sp = speedup(metrics, "torch-bf16")
    text = (f"torch-bf16 ×{sp['mean']:.2f} ± {sp['sd']:.2f} against torch-fp32 ({sp['outcome']}), "
            "on a CPU with native bf16")
    return {"faster": "holds", "not faster": "fails"}.get(sp["outcome"], "unclear"), text


def pruning_claim(metrics: dict[str, Any]) -> tuple[str, str]:
    sp, drop = speedup(metrics, PRUNED), bleu_drop(metrics, PRUNED)
    text = (f"{PRUNED} ×{sp['mean']:.2f} ± {sp['sd']:.2f} speed ({sp['outcome']}), "
            f"BLEU fp32 − pruned {drop['mean']:+.2f} ± {drop['sd']:.2f}")
    return {"faster": "holds", "not faster": "fails"}.get(sp["outcome"], "unclear"), text


def students(metrics: dict[str, Any], role: str, key: str) -> list[float]:
    rows = metrics["results"]["distillation"]
    return [r[key] for r in sorted((r for r in rows if r["role"] == role), key=lambda r: r["seed"])]


def distillation_claim(metrics: dict[str, Any]) -> tuple[str, str]:
    """Distilled − references student BLEU, paired by seed: "holds" when the gain is beyond
    N_SD·sd and at least MIN_BLEU_GAIN, "fails" when even mean + N_SD·sd stays below
    MIN_BLEU_GAIN, else "unclear"."""
    distilled, refs = students(metrics, "distilled", "bleu"), students(metrics, "references", "bleu")
    d = base.paired_effect(distilled, refs, N_SD, MIN_BLEU_GAIN)
    outcome = "holds" if d["significant"] else "fails" if d["mean"] + N_SD * d["sd"] < MIN_BLEU_GAIN else "unclear"
    return outcome, (f"BLEU distilled − references {d['mean']:+.2f} ± {d['sd']:.2f} over {d['n']} seeds "
                     f"(distilled {base.mean(distilled):.2f}, references {base.mean(refs):.2f}, "
                     f"teacher {students(metrics, 'teacher', 'bleu')[0]:.2f})")


def verdict(metrics: dict[str, Any]) -> tuple[str, str]:
    undecided = base.undecidable(metrics, MIN_SEEDS)
    if undecided:
        return undecided
    found = {"int8": int8_claim(metrics), "runtime": runtime_claim(metrics), "bf16": bf16_claim(metrics),
             "pruning": pruning_claim(metrics), "distillation": distillation_claim(metrics)}
    return base.claims_verdict(found, N_SD)


def plot(results: dict[str, Any], out: Path) -> str:
    fig, (ax_speed, ax_bleu) = plots.figure(2, width=5.0)
    forms = results["forms"]
    for i, form in enumerate(forms):
        rows = [r for r in results["rows"] if r["form"] == form and r.get("threads", 1) == 1]
        color = "C0" if form == "torch-fp32" else "C1" if "int8" in form else "C2"
        plots.seed_points(ax_speed, i, [r["sentences_per_s"] for r in rows], color, width=0.2)
        plots.seed_points(ax_bleu, i, [r["bleu"] for r in rows], color, width=0.2)
    for ax, label in ((ax_speed, "sentences/s (beam 4, batch 32, 1 thread)"), (ax_bleu, "BLEU (test subset)")):
        ax.set(xticks=range(len(forms)), ylabel=label)
        ax.set_xticklabels(forms, rotation=35, fontsize=8, ha="right")
    ax_speed.set_title("each deployment form of the same translator")
    return plots.save(fig, out, "q35_deployment.png")


def tables(metrics: dict[str, Any]) -> list[Table]:
    stat = lambda xs: f"{base.mean(xs):.2f} ± {base.std(xs):.2f}"  # noqa: E731
    latency = lambda form: " / ".join(  # noqa: E731
        f"{base.mean(column(metrics, form, 'latency_ms_batch1', t)):.0f}" for t in THREADS)
    rows = []
    for form in metrics["results"]["forms"]:
        sp = speedup(metrics, form)
        rows.append([form, stat(column(metrics, form, "bleu")), stat(column(metrics, form, "sentences_per_s")),
                     f"×{sp['mean']:.2f} ± {sp['sd']:.2f}", stat(column(metrics, form, "sentences_per_s", 2)),
                     latency(form), fmt(base.mean(column(metrics, form, "mib"))),
                     f"{100 * base.mean(column(metrics, form, 'same_as_fp32')):.0f}%"])
    header = ["form", "BLEU", "sentences/s, 1 thread", "speed vs torch-fp32", "sentences/s, 2 threads",
              "ms per sentence at batch 1 (1 / 2 threads)", "MiB on disk", "same output as fp32"]
    return [(header, rows), distillation_table(metrics), served_table(metrics)]


def served_table(metrics: dict[str, Any]) -> Table:
    """The served phases of seed 0's translator: what the clients got, and the batches the server ran."""
    served = metrics["results"]["served"]
    rows = []
    for phase in ("batching_on", "batching_off"):
        p = served[phase]
        sizes = {int(k): v for k, v in p["server_batch_sizes"].items()}  # batch size → batches run
        mean_batch = sum(k * v for k, v in sizes.items()) / sum(sizes.values()) if sizes else float("nan")
        latency = " / ".join(fmt(p["latency_ms"][q]) for q in ("p50", "p95", "p99"))
        rows.append([phase.replace("_", " "), str(p["requests"]), str(sum(p["errors_by_status"].values())),
                     f"{p['throughput_rps']:.1f}", latency, f"{mean_batch:.1f}"])
    rows[0].append(f"×{served['throughput_ratio_on_over_off']:.2f}" if served["throughput_ratio_on_over_off"] else "—")
    rows[1].append("×1")
    return (["served (seed 0, torch-fp32, 1 thread)", "requests", "errors", "requests/s",
             "latency p50 / p95 / p99 ms", "mean server batch", "throughput vs batch 1"], rows)


def distillation_table(metrics: dict[str, Any]) -> Table:
    stat = lambda xs: f"{base.mean(xs):.2f} ± {base.std(xs):.2f}"  # noqa: E731
    teacher_speed = students(metrics, "teacher", "sentences_per_s")[0]
    rows = []
    for role in ("teacher", *distillation.KINDS):
        speeds = students(metrics, role, "sentences_per_s")
        rows.append([role, str(len(speeds)), stat(students(metrics, role, "bleu")), stat(speeds),
                     f"×{base.mean(speeds) / teacher_speed:.2f}",
                     f"{base.mean(students(metrics, role, 'parameters')) / 1e6:.2f}M"])
    return (["model", "seeds", "BLEU (test)", "sentences/s", "speed vs teacher", "parameters"], rows)
