"""Question 28's verdict follows the numbers (every outcome, and the flips), and the decoder-only
translation batch scores exactly the target tokens."""

from __future__ import annotations

import math

import torch

from qkv.data import IGNORE_INDEX, TranslationCollator
from qkv.lab import q28_variants as q28


def metrics(gap=0.3, noise=0.02, accuracy=0.8, lm_loss=2.2, bleu=20.0, seeds=3, size="full") -> dict:
    runs = []
    for s in range(seeds):
        wobble = noise * (s - (seeds - 1) / 2)
        runs.append({"seed": s, "seq2seq_loss": 3.0, "lm_loss": 3.0 + gap + wobble, "seq2seq_bleu": bleu,
                     "lm_bleu": bleu - 2, "seq2seq_params": 1000, "lm_params": 998})
    natural = {"encoder_sst2_accuracy": accuracy, "sst2_majority": 0.51, "encoder_params": 10,
               "lm_val_loss": lm_loss, "lm_unigram_entropy": 3.3}
    return {"question": 28, "size": size, "seeds": seeds, "results": {"runs": runs, "natural": natural, "lm_d_ff": 8}}


def test_confirmed_when_the_encoder_decoder_wins_beyond_noise_and_every_family_learns():
    label, reason = q28.verdict(metrics())
    assert label == "confirmed" and "+0.300 ± 0.020" in reason


def test_refuted_when_the_decoder_only_model_wins():
    label, reason = q28.verdict(metrics(gap=-0.3))
    assert label == "refuted" and "decoder-only model wins" in reason and "-0.300" in reason


def test_refuted_when_there_is_no_advantage_either_way():
    label, reason = q28.verdict(metrics(gap=0.005, noise=0.005))
    assert label == "refuted" and "no advantage" in reason


def test_inconclusive_when_noise_hides_the_difference():
    assert q28.verdict(metrics(gap=0.3, noise=0.02))[0] == "confirmed"
    assert q28.verdict(metrics(gap=0.3, noise=0.5))[0] == "inconclusive"


def test_depends_when_a_family_did_not_learn_its_natural_task():
    assert q28.verdict(metrics(accuracy=0.55))[0] == "depends"
    assert q28.verdict(metrics(lm_loss=3.4))[0] == "depends"
    assert q28.verdict(metrics(bleu=0.5))[0] == "depends"


def test_too_few_seeds_and_smoke_size_are_inconclusive():
    assert q28.verdict(metrics(seeds=2))[0] == "inconclusive"
    label, reason = q28.verdict(metrics(size="smoke"))
    assert label == "inconclusive" and "qkv ask 28 --size full" in reason


def test_lm_batch_scores_the_same_tokens_as_the_translation_collator():
    pairs = [([10, 11, 12], [20, 21]), ([13], [22, 23, 24])]
    batch = q28.lm_batch(pairs, bos=2, sep=4, eos=3, pad=0)
    assert batch["input_ids"][0].tolist() == [2, 10, 11, 12, 4, 20, 21]
    assert batch["input_ids"][1].tolist() == [2, 13, 4, 22, 23, 24, 0]
    assert batch["labels"][0].tolist() == [IGNORE_INDEX] * 4 + [20, 21, 3]
    assert batch["labels"][1].tolist() == [IGNORE_INDEX] * 2 + [22, 23, 24, 3, IGNORE_INDEX]
    seq2seq = TranslationCollator(pad_id=0, bos_id=2, eos_id=3)(pairs)
    scored = lambda labels: sorted(labels[labels != IGNORE_INDEX].tolist())  # noqa: E731
    assert scored(batch["labels"]) == scored(seq2seq["labels"])


def test_matched_configs_have_nearly_equal_parameters():
    s = q28.SIZES["smoke"]
    cfgs = q28.configs(s, 400)
    from qkv.models import build_model

    counts = [q28.n_params(build_model(c)) for c in cfgs.values()]
    assert cfgs["lm"].family == "lm" and cfgs["seq2seq"].family == "seq2seq"
    assert abs(counts[0] - counts[1]) / counts[0] < 0.01


def test_unigram_entropy_of_a_fair_coin_is_log_two():
    assert math.isclose(q28.unigram_entropy(torch.tensor([0, 1, 0, 1])), math.log(2), rel_tol=1e-6)
