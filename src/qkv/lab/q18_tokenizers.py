"""Question 18: WordPiece vs byte-pair encoding (分词)

Claims under test (as commonly answered): WordPiece and BPE differ only in the merge
criterion — BPE fuses the most frequent adjacent pair, WordPiece the pair maximising
count(ab) / (count(a)·count(b)); byte-level BPE (GPT-2) never produces an unknown token;
WordPiece gives fewer tokens per word.

Method, on three corpora — Multi30k German and English (captions) and the Chinese side of
Tatoeba — each seed drawing its own random subsample of the training split (``train_lines``
lines: the full corpora would fit too, the subsample is what makes seeds differ), and scoring on
the corpus's test split (held out, never trained on):
1. Train qkv's readable BPE (characters, ``</w>`` end marker), WordPiece (likelihood score,
   BERT normaliser and pre-tokeniser, ``##`` prefix) and byte-level BPE (GPT-2) at the same
   vocabulary size, plus WordPiece with the frequency score (the criterion alone changed).
2. Merge criterion on real merges: replay the first merges of BPE and of WordPiece with qkv's
   own pair queue and show, for each, count(ab), count(a), count(b), both scores, and the pair's
   rank by count among all pairs at that moment.
3. Encoding: segment every held-out word of the BPE's vocabulary by WordPiece's rule (greedy
   longest match) instead of BPE's merges; count the words that come out differently.
4. Vocabulary overlap (Jaccard of the piece strings with markers removed), tokens per word
   (per character for Chinese), unknown-token rate and characters lost, characters of the
   held-out text never seen in training and whether they survive encode → decode.
5. Encode speed of the readable encoder (word cache emptied first) against the same
   tokenizer.json run by Hugging Face ``tokenizers``, one line at a time on one thread, and the
   fraction of held-out lines on which the two give identical ids.

Reproduce: ``qkv ask 18 --size full``.
"""

from __future__ import annotations

import random
import time
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..data import load_multi30k, load_tatoeba
from ..tokenize import BPE, ByteBPE, WordPiece
from ..tokenize import fast as fast_tokenize
from ..tokenize.base import Tokenizer, count_words
from ..tokenize.merges import SCORES, PairQueue, spell_words
from ..tokenize.pretokenize import bytes_to_unicode
from . import base, plots
from .table import Table, fmt

NUMBER = 18
TITLE = "WordPiece vs byte-pair encoding"
KEYWORD = "分词"
CLAIMS = [
    "WordPiece and BPE differ only in the merge criterion (frequency vs count(ab)/(count(a)·count(b))).",
    "Byte-level BPE never produces unknown tokens.",
    "WordPiece gives fewer tokens per word than BPE.",
]
ANSWER = """\
All three start from characters (or bytes) and grow a vocabulary by fusing adjacent symbols. BPE
fuses the most frequent pair; WordPiece the pair whose merge most raises the likelihood of the
training text under a unigram model, count(ab)/(count(a)·count(b)) — a pointwise-mutual-
information score that prefers pairs whose parts rarely occur apart, so its first merges are
rare characters glued to their only neighbour while BPE's are the commonest letter pairs. But
the criterion is not the only difference. Encoding differs: BPE replays its merge list in rank
order, WordPiece keeps no merges and cuts each word greedily by longest match, which on the
same vocabulary segments some words differently. Unknowns differ: BPE loses one character,
WordPiece the whole word. And the pipelines differ by convention (## continuation vs end-of-word
marker; BERT splits punctuation and every CJK character, so on Chinese WordPiece cannot grow
past a character vocabulary). Byte-level BPE spells text in its 256 UTF-8 bytes, all in the
vocabulary from the start, so no input is unknown and decode(encode(s)) == s. The tables make
each of these an observed fact on held-out German, English and Chinese, and measure whether
WordPiece's vocabulary is really the more compact one."""
FULL_SEEDS = 3
SMOKE_SEEDS = 2
MIN_SEEDS = 3
N_SD = 2.0
MIN_DISAGREE = 0.005  # fraction of held-out words: fewer segmented differently counts as "the same"
MIN_REL_TOKENS = 0.02  # relative difference in tokens per word that counts as fewer / more
SHOWN_MERGES = 8
CORPORA = ("de", "en", "zh")
KINDS = ("bpe", "wordpiece", "wordpiece_frequency", "byte_bpe")
SIZES = {
    "smoke": {"train_lines": 150, "held_out_lines": 30, "vocab_size": 700},
    "full": {"train_lines": 10000, "held_out_lines": None, "vocab_size": 6000},  # None: the whole test split
}


@lru_cache(maxsize=None)  # every seed reads the same files: verify and unpack them once
def corpus_lines(corpus: str, split: str) -> tuple[str, ...]:
    """One side of a parallel corpus: Multi30k German or English, or Tatoeba's Chinese."""
    if corpus == "zh":
        return tuple(zh for _, zh in load_tatoeba(split))
    return tuple(pair[0 if corpus == "de" else 1] for pair in load_multi30k(split))


def train_all(lines: list[str], vocab_size: int) -> dict[str, Tokenizer]:
    return {"bpe": BPE.train(lines, vocab_size), "wordpiece": WordPiece.train(lines, vocab_size),
            "wordpiece_frequency": WordPiece.train(lines, vocab_size, score="frequency"),
            "byte_bpe": ByteBPE.train(lines, vocab_size)}


# -- the merge criterion on real merges --------------------------------------------------------


def first_merges(lines: list[str], kind: str, k: int) -> list[dict[str, Any]]:
    """Replay the first ``k`` merges of BPE (frequency) or WordPiece (likelihood) with qkv's pair
    queue, as ``learn_merges`` makes them, recording both scores of each chosen pair."""
    cls, score = (BPE, "frequency") if kind == "bpe" else (WordPiece, "likelihood")
    specials = ["<pad>", "<unk>", "<s>", "</s>"] if kind == "bpe" else ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    marks = {"end_suffix": "</w>"} if kind == "bpe" else {"continuing_prefix": "##"}
    vocab, words, counts = spell_words(count_words(lines, cls.default_pipeline(specials)), specials, **marks)
    queue = PairQueue(words, counts, SCORES[score], 0)
    token_id = {t: i for i, t in enumerate(vocab)}
    chosen = []
    while len(chosen) < k and (best := queue.pop_best()) is not None:
        _, (a, b), _ = best
        n_ab, n_a, n_b = queue.pair_counts[(a, b)], queue.symbol_counts[a], queue.symbol_counts[b]
        rank = 1 + sum(1 for n in queue.pair_counts.values() if n > n_ab)
        new = vocab[a] + (vocab[b][2:] if kind != "bpe" and vocab[b].startswith("##") else vocab[b])
        chosen.append({"left": vocab[a], "right": vocab[b], "merged": new, "count_ab": n_ab, "count_a": n_a,
                       "count_b": n_b, "frequency_score": n_ab, "likelihood_score": n_ab / (n_a * n_b),
                       "rank_by_count": rank})
        if new not in token_id:
            token_id[new] = len(vocab)
            vocab.append(new)
        queue.merge((a, b), token_id[new])
    return chosen


# -- encoding: longest match vs merges on one vocabulary ---------------------------------------


def longest_match(word: str, vocab: dict[str, int], suffix: str = "</w>") -> list[str] | None:
    """WordPiece's greedy longest-match-first rule on a BPE vocabulary (end-of-word pieces carry
    ``suffix``); None when some character cannot be covered."""
    pieces, start = [], 0
    while start < len(word):
        for end in range(len(word), start, -1):
            piece = word[start:end] + (suffix if end == len(word) else "")
            if piece in vocab:
                pieces.append(piece)
                start = end
                break
        else:
            return None
    return pieces


def segmentation_disagreement(bpe: BPE, lines: list[str]) -> float:
    """Fraction of held-out word occurrences (all characters known) that BPE's merges and greedy
    longest match over the very same vocabulary cut differently."""
    differ = total = 0
    for line in lines:
        for word in bpe.pipeline.pre_tokenizer(bpe.pipeline.normalizer(line)):
            greedy = longest_match(word, bpe.vocab)
            if greedy is None:
                continue
            total += 1
            differ += greedy != [bpe.id_to_token[i] for i in bpe.encode(word, add_special_tokens=False)]
    return differ / max(total, 1)


# -- vocabulary, tokens, unknowns ----------------------------------------------------------------


def surface(token: str, kind: str) -> str:
    """A vocabulary entry as the text it stands for, markers removed (``##``, ``</w>``, ``Ġ``)."""
    if kind == "byte_bpe":
        byte_of = {c: b for b, c in bytes_to_unicode().items()}
        return bytes(byte_of[c] for c in token).decode("utf-8", errors="replace").strip()
    return token.removeprefix("##").removesuffix("</w>")


def jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / max(len(a | b), 1)


def overlaps(toks: dict[str, Tokenizer]) -> dict[str, float]:
    pieces = {kind: {surface(t, kind) for t in tok.vocab if t not in tok.special_tokens} - {""}
              for kind, tok in toks.items()}
    pairs = [("bpe", "wordpiece"), ("bpe", "byte_bpe"), ("wordpiece", "byte_bpe"), ("wordpiece", "wordpiece_frequency")]
    return {f"{a}~{b}": jaccard(pieces[a], pieces[b]) for a, b in pairs}


def lost_characters(tok: Tokenizer, line: str) -> int:
    """Characters an encoding turns into unknown tokens: one per BPE ``<unk>``, the whole word per
    WordPiece ``[UNK]`` (it replaces the word), none for byte-level BPE."""
    if tok.unk_id is None:
        return 0
    lost = 0
    for word in tok.pipeline.pre_tokenizer(tok.pipeline.normalizer(line)):
        ids = tok.encode(word, add_special_tokens=False)
        lost += (len(word) if isinstance(tok, WordPiece) else 1) * ids.count(tok.unk_id)
    return lost


def text_counts(tok: Tokenizer, lines: list[str], unseen: set[str]) -> dict[str, Any]:
    """Tokens, unknown tokens, lost characters and the unseen characters' survival on ``lines``."""
    tokens = unks = lost = unseen_total = unseen_back = exact = 0
    for line in lines:
        ids = tok.encode(line, add_special_tokens=False)
        tokens += len(ids)
        unks += ids.count(tok.unk_id) if tok.unk_id is not None else 0
        lost += lost_characters(tok, line)
        back = tok.decode(ids)
        exact += back == line
        for c in set(line) & unseen:
            unseen_total += line.count(c)
            unseen_back += min(line.count(c), back.count(c))
    return {"tokens": tokens, "unk_tokens": unks, "lost_chars": lost, "unseen_occurrences": unseen_total,
            "unseen_survived": unseen_back, "exact_round_trip": exact / len(lines)}


def speed_and_parity(tok: Tokenizer, lines: list[str]) -> dict[str, float]:
    """Lines per second of the readable encoder (empty word cache) and of HF ``tokenizers``, one
    line at a time, and the fraction of lines on which their ids agree."""
    hf = fast_tokenize.from_tokenizer(tok).hf
    tok._cache.clear()  # a cold cache: the readable encoder pays for every word once, as on new text
    start = time.perf_counter()
    ours = [tok.encode(line, add_special_tokens=False) for line in lines]
    readable_s = time.perf_counter() - start
    start = time.perf_counter()
    theirs = [hf.encode(line, add_special_tokens=False).ids for line in lines]
    hf_s = time.perf_counter() - start
    agree = sum(a == b for a, b in zip(ours, theirs)) / len(lines)
    return {"readable_lines_per_s": len(lines) / readable_s, "hf_lines_per_s": len(lines) / hf_s,
            "hf_agreement": agree}


def measure(corpus: str, seed: int, s: dict) -> dict[str, Any]:
    """Every number of one (corpus, seed): train on a random subsample, score on the test split."""
    pool = corpus_lines(corpus, "train")
    lines = random.Random(seed).sample(pool, min(s["train_lines"], len(pool)))
    held_out = list(corpus_lines(corpus, "test")[: s["held_out_lines"]])
    toks = train_all(lines, s["vocab_size"])
    seen = set("".join(lines))
    unseen = set("".join(held_out)) - seen - {" "}
    row: dict[str, Any] = {"corpus": corpus, "seed": seed, "train_lines": len(lines), "held_out_lines": len(held_out),
                           "words": sum(len(x.split()) for x in held_out),
                           "chars": sum(len(x.replace(" ", "")) for x in held_out),
                           "unseen_chars": len(unseen), "overlap": overlaps(toks),
                           "bpe_vs_longest_match": segmentation_disagreement(toks["bpe"], held_out)}
    for kind, tok in toks.items():
        row[kind] = {"vocab_size": len(tok.vocab), **text_counts(tok, held_out, unseen),
                     **speed_and_parity(tok, held_out)}
    return row


def run(size: str, seeds: int, out: Path) -> dict[str, Any]:
    started = time.perf_counter()
    s = SIZES[size]
    with base.one_thread():
        rows = [measure(corpus, seed, s) for corpus in CORPORA for seed in range(seeds)]
        merges = {corpus: {kind: first_merges(random.Random(0).sample(corpus_lines(corpus, "train"), s["train_lines"]),
                                              kind, SHOWN_MERGES) for kind in ("bpe", "wordpiece")}
                  for corpus in CORPORA}
    results = {"runs": rows, "first_merges": merges}
    config = {**s, "corpora": {"de": "Multi30k German", "en": "Multi30k English", "zh": "Tatoeba Chinese"},
              "held_out": "each corpus's test split", "training_text": "random subsample of the train split per seed",
              "first_merges_from": "seed 0's subsample", "speed": "one line at a time, one thread"}
    names = [plot(results, out)]
    return base.finish(verdict, base.record(NUMBER, size, seeds, out, config, results, names, started), out)


# -- verdict, tables, plot -----------------------------------------------------------------------


def per_word(row: dict, kind: str) -> float:
    """Tokens per whitespace word (German, English) or per character (Chinese: no spaces)."""
    return row[kind]["tokens"] / (row["chars"] if row["corpus"] == "zh" else row["words"])


def corpus_rows(metrics: dict, corpus: str) -> list[dict]:
    return sorted((r for r in metrics["results"]["runs"] if r["corpus"] == corpus), key=lambda r: r["seed"])


def claim_outcomes(metrics: dict[str, Any]) -> dict[str, tuple[str, str]]:
    found = {}
    disagree = {c: base.paired_effect([r["bpe_vs_longest_match"] for r in corpus_rows(metrics, c)],
                                      [0.0] * len(corpus_rows(metrics, c)), N_SD, MIN_DISAGREE) for c in CORPORA}
    differ = [c for c in CORPORA if disagree[c]["significant"]]
    same = [c for c in CORPORA if disagree[c]["mean"] + N_SD * disagree[c]["sd"] < MIN_DISAGREE]
    text = ", ".join(f"{c} {100 * d['mean']:.2f} ± {100 * d['sd']:.2f}%" for c, d in disagree.items())
    found["only the merge criterion differs"] = (
        "fails" if differ else "holds" if len(same) == len(CORPORA) else "unclear",
        f"the same BPE vocabulary cut by longest match instead of merges changes held-out words: {text}")
    runs = metrics["results"]["runs"]
    unk = sum(r["byte_bpe"]["unk_tokens"] for r in runs)
    exact = min(r["byte_bpe"]["exact_round_trip"] for r in runs)
    survived = sum(r["byte_bpe"]["unseen_survived"] for r in runs)
    occurring = sum(r["byte_bpe"]["unseen_occurrences"] for r in runs)
    found["byte-level BPE never produces an unknown token"] = (
        "holds" if unk == 0 and exact == 1.0 and survived == occurring else "fails",
        f"{unk} unknown tokens, worst exact round trip {100 * exact:.1f}% of lines, {survived} of {occurring} "
        f"unseen-character occurrences restored")
    found["WordPiece gives fewer tokens per word"] = fewer_tokens(metrics)
    return found


def fewer_tokens(metrics: dict[str, Any]) -> tuple[str, str]:
    """Per corpus, BPE's tokens per word minus WordPiece's, relative to BPE's, paired by seed."""
    outcome, parts = {}, []
    for c in CORPORA:
        rows = corpus_rows(metrics, c)
        rel = [(per_word(r, "bpe") - per_word(r, "wordpiece")) / per_word(r, "bpe") for r in rows]
        wp_fewer = base.paired_effect(rel, [0.0] * len(rel), N_SD, MIN_REL_TOKENS)
        wp_more = base.paired_effect([-x for x in rel], [0.0] * len(rel), N_SD, MIN_REL_TOKENS)
        outcome[c] = "fewer" if wp_fewer["significant"] else "more" if wp_more["significant"] else "same"
        parts.append(f"{c}: WordPiece {outcome[c]} ({-100 * wp_fewer['mean']:+.1f} ± {100 * wp_fewer['sd']:.1f}% "
                     f"tokens per word against BPE)")
    kinds = set(outcome.values())
    label = "holds" if kinds == {"fewer"} else "fails" if "fewer" not in kinds else "depends"
    return label, "; ".join(parts)


def verdict(metrics: dict[str, Any]) -> tuple[str, str]:
    undecided = base.undecidable(metrics, MIN_SEEDS)
    if undecided:
        return undecided
    found = claim_outcomes(metrics)
    text = "; ".join(f"{claim}: {o} ({why})" for claim, (o, why) in found.items())
    outcomes = {o for o, _ in found.values()}
    if outcomes == {"holds"}:
        return "confirmed", text
    if outcomes == {"fails"}:
        return "refuted", text
    if outcomes == {"unclear"}:
        return "inconclusive", f"nothing decided beyond seed noise: {text}"
    return "depends", text


def stat(values: list[float], scale: float = 1.0, digits: int = 3) -> str:
    return f"{scale * base.mean(values):.{digits}f} ± {scale * base.std(values):.{digits}f}"


def tables(metrics: dict[str, Any]) -> list[Table]:
    rows = []
    for c in CORPORA:
        runs = corpus_rows(metrics, c)
        for kind in KINDS:
            col = lambda key: [r[kind][key] for r in runs]  # noqa: E731
            rows.append([c, kind, fmt(base.mean(col("vocab_size"))), stat([per_word(r, kind) for r in runs]),
                         stat([r[kind]["unk_tokens"] / r[kind]["tokens"] for r in runs], 100, 2),
                         stat([r[kind]["lost_chars"] / r["chars"] for r in runs], 100, 2),
                         f"{sum(r[kind]['unseen_survived'] for r in runs)} / {sum(r[kind]['unseen_occurrences'] for r in runs)}",
                         stat(col("exact_round_trip"), 100, 1), stat(col("readable_lines_per_s"), 1, 0),
                         stat(col("hf_lines_per_s"), 1, 0), stat(col("hf_agreement"), 100, 2)])
    main = (["corpus", "tokenizer", "vocab", "tokens / word (zh: / char)", "unk tokens %", "chars lost %",
             "unseen chars restored", "exact round trip %", "readable lines/s", "HF lines/s", "ids = HF %"], rows)
    overlap_rows = []
    for c in CORPORA:
        runs = corpus_rows(metrics, c)
        overlap_rows.append([c, *(stat([r["overlap"][k] for r in runs]) for k in runs[0]["overlap"]),
                             stat([r["bpe_vs_longest_match"] for r in runs], 100, 2),
                             stat([r["unseen_chars"] for r in runs], 1, 1)])
    keys = list(corpus_rows(metrics, CORPORA[0])[0]["overlap"])
    overlap = (["corpus", *(f"Jaccard {k}" for k in keys), "words cut differently by longest match %",
                "distinct unseen chars"], overlap_rows)
    return [main, overlap, merge_table(metrics), claims_table(metrics)]


def merge_table(metrics: dict[str, Any]) -> Table:
    rows = []
    for c, by_kind in metrics["results"]["first_merges"].items():
        for kind, merges in by_kind.items():
            for i, m in enumerate(merges):
                rows.append([c, kind, str(i + 1), f"{m['left']} + {m['right']} → {m['merged']}", str(m["count_ab"]),
                             f"{m['count_a']} · {m['count_b']}", f"{m['likelihood_score']:.3g}", str(m["rank_by_count"])])
    return (["corpus", "trainer", "merge", "pair", "count(ab)", "count(a) · count(b)",
             "count(ab)/(count(a)·count(b))", "rank of pair by count"], rows)


def claims_table(metrics: dict[str, Any]) -> Table:
    if metrics["seeds"] < 1:
        return (["claim", "outcome", "numbers"], [])
    return (["claim", "outcome", "numbers"], [[c, o, why] for c, (o, why) in claim_outcomes(metrics).items()])


def plot(results: dict[str, Any], out: Path) -> str:
    fig, (ax_tok, ax_unk, ax_speed) = plots.figure(3, width=4.0)
    colors = dict(zip(KINDS, ("C0", "C1", "C2", "C3")))
    for i, c in enumerate(CORPORA):
        runs = [r for r in results["runs"] if r["corpus"] == c]
        for j, kind in enumerate(KINDS):
            x = i + 0.2 * (j - 1.5)
            label = kind if i == 0 else None
            plots.seed_points(ax_tok, x, [per_word(r, kind) for r in runs], colors[kind], label, width=0.1)
            plots.seed_points(ax_unk, x, [100 * r[kind]["lost_chars"] / r["chars"] for r in runs], colors[kind],
                              width=0.1)
            plots.seed_points(ax_speed, x, [r[kind]["hf_lines_per_s"] / r[kind]["readable_lines_per_s"] for r in runs],
                              colors[kind], width=0.1)
    for ax in (ax_tok, ax_unk, ax_speed):
        ax.set_xticks(range(len(CORPORA)))
        ax.set_xticklabels(["Multi30k de", "Multi30k en", "Tatoeba zh"])
    ax_tok.set(ylabel="tokens per word (zh: per character)", title="held-out text, same vocabulary size")
    ax_tok.legend(fontsize=7)
    ax_unk.set(ylabel="held-out characters lost to unknown tokens (%)", title="unknowns (byte-level BPE: none)")
    ax_speed.set(yscale="log", ylabel="HF tokenizers speed / readable encoder (×)", title="encode speed, one thread")
    return plots.save(fig, out, "q18_tokenizers.png")
