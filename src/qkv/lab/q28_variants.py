"""Question 28: variants (BERT, GPT, ...) and their advantages (变体)

Claims under test (as commonly answered): the three Transformer families each suit a task —
encoder-only (BERT) reads the whole input both ways and is made for understanding
(classification, masked-LM); decoder-only (GPT) is made for generation; encoder-decoder (T5,
BART, the original Transformer) for mapping one sequence to another, where it beats a
decoder-only model given the same budget.

Method. The three families are one ``ModelConfig`` with ``family`` set to encoder, lm or seq2seq.
1. Each on its natural task, reused rather than retrained: the encoder is question 34's SST-2
   classifier (dev accuracy), the decoder-only model the lab's shared Tiny Shakespeare LM
   (``qkv.lab.shared``; held-out nats per character, as in questions 16 and others), the
   encoder-decoder the seq2seq arm of part 2 (Multi30k de→en).
2. The deciding experiment: decoder-only against encoder-decoder on the SAME translation data,
   joint BPE vocabulary, batches, steps, optimiser and initial seed, at equal parameter count
   (the decoder-only model gets encoder + decoder's layer count and a feed-forward width chosen
   so its parameters match). The decoder-only model reads ``source <sep> target </s>`` with a
   causal mask over everything, and its loss counts the target tokens (and ``</s>``) only — the
   same tokens the encoder-decoder predicts. Scored per seed: held-out (Multi30k validation)
   target loss in nats per token, and greedy-decoding BLEU on test_2016_flickr sentences.

Reproduce: ``qkv ask 28 --size full``.
"""

from __future__ import annotations

import logging
import random
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..config import ModelConfig
from ..data import IGNORE_INDEX, TranslationCollator, load_multi30k, pad_batch
from ..models import build_model
from ..tasks.common import mean_token_loss
from ..tasks.translation import score
from ..tokenize import BPE
from ..tokenize import fast as fast_tokenize
from ..train import TrainConfig
from . import base, plots, shared
from .table import Table, fmt

NUMBER = 28
TITLE = "Variants (BERT, GPT, ...) and their advantages"
KEYWORD = "变体"
CLAIMS = [
    "Encoder-only, decoder-only and encoder-decoder each learn their natural task (classification, "
    "language modelling, translation).",
    "On translation, an encoder-decoder beats a decoder-only model of equal parameters trained for equal steps.",
]
ANSWER = """\
The families differ in which positions may read which. An encoder lets every token attend to
every other, so each representation uses both sides of the context — what a classifier or a
masked-LM needs, but it has no left-to-right factorisation and cannot generate by itself. A
decoder-only model masks the future, so one pass trains every next-token prediction and the
same network generates; given a task prefix it can also translate, but its source tokens are
read causally (a source word never sees the words after it) and source and target share one
stack of weights. An encoder-decoder reads the source bidirectionally once, then a causal
decoder attends to it through cross-attention, spending separate weights on understanding and
on writing. Whether that separation wins at equal size is an empirical question: the deciding
run trains both on the same Multi30k pairs for the same steps at the same parameter count and
compares held-out target loss per seed (and BLEU), so the answer is a measured difference,
not the architecture diagram."""
FULL_SEEDS = 3
SMOKE_SEEDS = 2
MIN_SEEDS = 3
N_SD = 2.0
MIN_LOSS_GAP = 0.05  # nats per target token: a smaller difference is no advantage
MAJORITY_MARGIN = 0.1  # a classifier must beat the majority class by this (accuracy) to count as learnt
SEP = "<sep>"
SPECIALS = ("<pad>", "<unk>", "<s>", "</s>", SEP)
SIZES = {
    "smoke": {"train_pairs": 200, "vocab_size": 400, "d_model": 32, "d_ff": 64, "steps": 3, "batch": 8,
              "val_pairs": 16, "bleu_sentences": 4, "max_tokens": 20},
    "full": {"train_pairs": 29000, "vocab_size": 2000, "d_model": 64, "d_ff": 256, "steps": 800, "batch": 32,
             "val_pairs": 1014, "bleu_sentences": 200, "max_tokens": 30},
}
LR = 2e-3


def joint_tokenizer(pairs: list[tuple[str, str]], vocab_size: int):
    """One BPE over German and English (qkv's trainer), run by HF ``tokenizers`` for speed."""
    tok = BPE.train([x for pair in pairs for x in pair], vocab_size, special_tokens=SPECIALS)
    return fast_tokenize.from_tokenizer(tok), tok.vocab[SEP]


def encode_pairs(tok, pairs: list[tuple[str, str]], max_tokens: int) -> list[tuple[list[int], list[int]]]:
    src = tok.encode_batch([de for de, _ in pairs], add_special_tokens=False)
    tgt = tok.encode_batch([en for _, en in pairs], add_special_tokens=False)
    return [(s, t) for s, t in zip(src, tgt) if len(s) <= max_tokens and len(t) <= max_tokens]


def lm_batch(pairs: list[tuple[list[int], list[int]]], bos: int, sep: int, eos: int, pad: int) -> dict:
    """``<s> source <sep> target </s>`` as one causal sequence; labels only on target and ``</s>``.

    input_ids ``(B, L)``, mask ``(B, L)``, labels ``(B, L)`` with -100 on the source positions.
    """
    seqs = [[bos, *s, sep, *t, eos] for s, t in pairs]
    ids, mask = pad_batch([q[:-1] for q in seqs], pad)  # (B, L)
    labels, _ = pad_batch([[IGNORE_INDEX] * (len(s) + 1) + [*t, eos] for s, t in pairs], IGNORE_INDEX)  # (B, L)
    return {"input_ids": ids, "mask": mask, "labels": labels}


def configs(s: dict, vocab_size: int) -> dict[str, ModelConfig]:
    """Encoder-decoder (1 + 1 layers) and a decoder-only model (2 layers) of matched parameter count."""
    common = dict(vocab_size=vocab_size, d_model=s["d_model"], n_heads=4, max_len=2 * s["max_tokens"] + 4,
                  norm_placement="pre", dropout_embed=0.0, dropout_residual=0.0, pad_id=0, bos_id=2, eos_id=3)
    seq2seq = ModelConfig(family="seq2seq", n_layers=1, n_decoder_layers=1, d_ff=s["d_ff"], **common)
    target = n_params(build_model(seq2seq))
    # a decoder layer holds a cross-attention (4d² + 4d) more than a decoder-only layer: give it back as
    # feed-forward width; the count is linear in d_ff, so two probes give the matching width (a multiple of 8)
    lm_params = lambda w: n_params(build_model(ModelConfig(family="lm", n_layers=2, d_ff=w, **common)))  # noqa: E731
    per_unit = (lm_params(16) - lm_params(8)) / 8
    d_ff = 8 * max(1, round((s["d_ff"] + (target - lm_params(s["d_ff"])) / per_unit) / 8))
    return {"seq2seq": seq2seq, "lm": ModelConfig(family="lm", n_layers=2, d_ff=d_ff, **common)}


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def train(cfg: ModelConfig, batches: list[dict], seed: int) -> nn.Module:
    """Same seed, same steps, same schedule for both families; only the wiring differs."""
    torch.manual_seed(seed)
    model = build_model(cfg)
    tcfg = TrainConfig(lr=LR, schedule="cosine", warmup_steps=max(1, len(batches) // 10), max_steps=len(batches),
                       label_smoothing=0.0, precision="fp32", device="cpu", seed=seed, log_every=len(batches) + 1,
                       weight_decay=0.0)
    shared.train_steps(model, tcfg, batches)
    return model.eval()


@torch.no_grad()
def greedy_bleu(models: dict[str, nn.Module], tok, sep: int, pairs: list[tuple[str, str]], s: dict) -> dict[str, float]:
    """Greedy translations of test sentences by each family, scored by sacreBLEU against the references."""
    src = [ids[: s["max_tokens"]] for ids in tok.encode_batch([de for de, _ in pairs], add_special_tokens=False)]
    refs = [en for _, en in pairs]
    out = {}
    for name, model in models.items():
        hyps = []
        for start in range(0, len(src), 64):
            chunk = src[start:start + 64]
            if name == "seq2seq":
                ids, mask = pad_batch([[*x, 3] for x in chunk], 0)  # (B, S) right-padded
                new = model.generate(ids, mask, max_new_tokens=s["max_tokens"] + 1)  # (B, L)
            else:
                prompts = [[2, *x, sep] for x in chunk]
                width = max(map(len, prompts))
                ids = torch.tensor([[0] * (width - len(p)) + p for p in prompts])  # (B, P) left-padded
                new = model.generate(ids, ids != 0, max_new_tokens=s["max_tokens"] + 1)[:, width:]  # (B, L)
            for row in new.tolist():
                hyps.append(tok.decode(row[: row.index(3)] if 3 in row else row).strip())
        # sacreBLEU warns that "a man ." looks tokenized: its own 13a tokenizer splits "man." the same way
        logging.getLogger("sacrebleu").setLevel(logging.ERROR)
        out[name] = score(hyps, refs[: len(hyps)])["bleu"]
    return out


def deciding_run(seed: int, s: dict, data: dict) -> dict[str, Any]:
    """Both families trained on the same batches from one seed; held-out target loss and BLEU."""
    rng = random.Random(seed)
    picks = [rng.sample(data["train"], s["batch"]) for _ in range(s["steps"])]
    collate = TranslationCollator(pad_id=0, bos_id=2, eos_id=3)
    make = {"seq2seq": collate, "lm": lambda b: lm_batch(b, 2, data["sep"], 3, 0)}
    row: dict[str, Any] = {"seed": seed}
    models = {}
    for name, cfg in data["configs"].items():
        models[name] = train(cfg, [make[name](p) for p in picks], seed)
        val = [make[name](data["val"][i:i + 64]) for i in range(0, len(data["val"]), 64)]
        row[f"{name}_loss"] = mean_token_loss(models[name], val)["loss"]
        row[f"{name}_params"] = n_params(models[name])
    for name, bleu in greedy_bleu(models, data["tok"], data["sep"], data["test"], s).items():
        row[f"{name}_bleu"] = bleu
    return row


def natural_tasks(size: str) -> dict[str, Any]:
    """Each family on its own task, reused: question 34's SST-2 encoder, the shared Shakespeare LM (seed 0)."""
    from .q34_interpretation import accuracy_and_time, dev_batch, trained_classifier

    classifier, tok = trained_classifier(size, 0)
    ids, mask, labels = dev_batch(tok, 872 if size == "full" else 16)
    accuracy, _ = accuracy_and_time(classifier, ids, mask, labels)
    majority = max(float(labels.float().mean()), 1 - float(labels.float().mean()))
    _, lm_record = shared.trained_lm(size, 0)
    unigram = unigram_entropy(shared.shakespeare_ids("train"))
    return {"encoder_sst2_accuracy": accuracy, "sst2_majority": majority, "encoder_params": n_params(classifier),
            "lm_val_loss": lm_record["loss"], "lm_unigram_entropy": unigram}


def unigram_entropy(ids: torch.Tensor) -> float:
    """Nats per symbol of the symbol frequencies alone: the loss an LM that learnt nothing about context reaches."""
    p = torch.bincount(ids).float()
    p = p[p > 0] / p.sum()
    return float(-(p * p.log()).sum())


def run(size: str, seeds: int, out: Path) -> dict[str, Any]:
    started = time.perf_counter()
    s = SIZES[size]
    with base.one_thread():
        train_text = load_multi30k("train")[: s["train_pairs"]]
        tok, sep = joint_tokenizer(train_text, s["vocab_size"])
        data = {"tok": tok, "sep": sep, "train": encode_pairs(tok, train_text, s["max_tokens"]),
                "val": encode_pairs(tok, load_multi30k("val")[: s["val_pairs"]], s["max_tokens"]),
                "test": load_multi30k("test")[: s["bleu_sentences"]], "configs": configs(s, tok.vocab_size)}
        rows = [deciding_run(seed, s, data) for seed in range(seeds)]
        natural = natural_tasks(size)
    results = {"runs": rows, "natural": natural, "lm_d_ff": data["configs"]["lm"].d_ff}
    config = {**s, "lr": LR, "tokenizer": "joint BPE (qkv trainer) over de + en training pairs",
              "seq2seq": "1 encoder + 1 decoder layer", "lm": "2 decoder-only layers, causal over source <sep> target",
              "decoding": "greedy", "natural_tasks": "seed 0 of q34's SST-2 classifier and of the shared Shakespeare LM"}
    names = [plot(results, out)]
    return base.finish(verdict, base.record(NUMBER, size, seeds, out, config, results, names, started), out)


# -- verdict, tables, plot -----------------------------------------------------------------------


def natural_outcome(natural: dict[str, Any], rows: list[dict]) -> tuple[str, str]:
    encoder = natural["encoder_sst2_accuracy"] > natural["sst2_majority"] + MAJORITY_MARGIN
    lm = natural["lm_val_loss"] < natural["lm_unigram_entropy"] - MIN_LOSS_GAP
    bleu = min(r["seq2seq_bleu"] for r in rows)
    seq2seq = bleu > 1.0
    text = (f"encoder SST-2 accuracy {natural['encoder_sst2_accuracy']:.3f} (majority {natural['sst2_majority']:.3f}); "
            f"LM {natural['lm_val_loss']:.2f} nats/char (unigram {natural['lm_unigram_entropy']:.2f}); "
            f"encoder-decoder BLEU at least {bleu:.1f}")
    return ("holds" if encoder and lm and seq2seq else "fails"), text


def gap(rows: list[dict]) -> dict[str, float | bool]:
    rows = sorted(rows, key=lambda r: r["seed"])
    return base.paired_effect([r["lm_loss"] for r in rows], [r["seq2seq_loss"] for r in rows], N_SD, MIN_LOSS_GAP)


def verdict(metrics: dict[str, Any]) -> tuple[str, str]:
    undecided = base.undecidable(metrics, MIN_SEEDS)
    if undecided:
        return undecided
    r = metrics["results"]
    natural, natural_text = natural_outcome(r["natural"], r["runs"])
    g = gap(r["runs"])
    bleu = {k: [x[f"{k}_bleu"] for x in r["runs"]] for k in ("seq2seq", "lm")}
    numbers = (f"held-out target loss decoder-only − encoder-decoder {g['mean']:+.3f} ± {g['sd']:.3f} nats/token, "
               f"BLEU {base.mean(bleu['seq2seq']):.1f} ± {base.std(bleu['seq2seq']):.1f} vs "
               f"{base.mean(bleu['lm']):.1f} ± {base.std(bleu['lm']):.1f}; natural tasks {natural} ({natural_text})")
    reverse = base.paired_effect([x["seq2seq_loss"] for x in sorted(r["runs"], key=lambda x: x["seed"])],
                                 [x["lm_loss"] for x in sorted(r["runs"], key=lambda x: x["seed"])], N_SD, MIN_LOSS_GAP)
    if g["significant"] and natural == "holds":
        return "confirmed", f"the encoder-decoder wins beyond {N_SD:g} sd and {MIN_LOSS_GAP} nats: {numbers}"
    if reverse["significant"]:
        return "refuted", f"the decoder-only model wins: {numbers}"
    if abs(g["mean"]) + N_SD * g["sd"] < MIN_LOSS_GAP:
        return "refuted", f"no advantage either way beyond {MIN_LOSS_GAP} nats: {numbers}"
    if g["significant"]:
        return "depends", f"the encoder-decoder wins but a natural task was not learnt: {numbers}"
    return "inconclusive", f"the difference is within seed noise: {numbers}"


def tables(metrics: dict[str, Any]) -> list[Table]:
    r = metrics["results"]
    rows = sorted(r["runs"], key=lambda x: x["seed"])
    per_seed = [[str(x["seed"]), fmt(x["seq2seq_loss"]), fmt(x["lm_loss"]), fmt(x["lm_loss"] - x["seq2seq_loss"]),
                 f"{x['seq2seq_bleu']:.1f}", f"{x['lm_bleu']:.1f}", f"{x['seq2seq_params']} / {x['lm_params']}"]
                for x in rows]
    first = (["seed", "enc-dec target loss", "dec-only target loss", "difference (nats/token)", "enc-dec BLEU",
              "dec-only BLEU", "parameters enc-dec / dec-only"], per_seed)
    n = r["natural"]
    second = (["family", "natural task", "score", "reference"], [
        ["encoder (family encoder)", "SST-2 classification (q34's model, seed 0)", f"{n['encoder_sst2_accuracy']:.3f} accuracy",
         f"majority class {n['sst2_majority']:.3f}"],
        ["decoder-only (family lm)", "Tiny Shakespeare LM (shared, seed 0)", f"{n['lm_val_loss']:.3f} nats/char",
         f"unigram entropy {n['lm_unigram_entropy']:.3f}"],
        ["encoder-decoder (family seq2seq)", "Multi30k de→en (this question)",
         f"{base.mean([x['seq2seq_bleu'] for x in rows]):.1f} BLEU", "decoder-only on the same data: "
         f"{base.mean([x['lm_bleu'] for x in rows]):.1f} BLEU"]])
    return [first, second]


def plot(results: dict[str, Any], out: Path) -> str:
    fig, (ax_loss, ax_bleu) = plots.figure(2, width=4.0)
    rows = results["runs"]
    for i, (name, color) in enumerate((("seq2seq", "C0"), ("lm", "C1"))):
        plots.seed_points(ax_loss, i, [x[f"{name}_loss"] for x in rows], color, width=0.2)
        plots.seed_points(ax_bleu, i, [x[f"{name}_bleu"] for x in rows], color, width=0.2)
    for ax in (ax_loss, ax_bleu):
        ax.set_xticks([0, 1])
        ax.set_xticklabels(["encoder-decoder", "decoder-only\n(source <sep> target)"])
    ax_loss.set(ylabel="held-out target loss (nats/token)", title="Multi30k de→en, equal parameters and steps")
    ax_bleu.set(ylabel="BLEU (greedy, test_2016_flickr)", title="translations")
    return plots.save(fig, out, "q28_variants.png")
