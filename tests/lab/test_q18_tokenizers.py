"""Question 18's verdict follows the numbers (every outcome, and the flips), and its measuring
functions are right on hand-checked examples."""

from __future__ import annotations

from qkv.lab import q18_tokenizers as q18
from qkv.tokenize import BPE


def kind_counts(tokens, unk=0, exact=1.0, unseen=10, survived=10):
    return {"vocab_size": 1000, "tokens": tokens, "unk_tokens": unk, "lost_chars": unk, "unseen_occurrences": unseen,
            "unseen_survived": survived, "exact_round_trip": exact, "readable_lines_per_s": 1000.0,
            "hf_lines_per_s": 20000.0, "hf_agreement": 1.0}


def metrics(disagree=0.05, wp_tokens=1300, byte_unk=0, byte_exact=1.0, noise=0.0, seeds=3, size="full"):
    runs = []
    for c in q18.CORPORA:
        for s in range(seeds):
            wobble = noise * (s - (seeds - 1) / 2)
            runs.append({"corpus": c, "seed": s, "words": 1000, "chars": 5000, "unseen_chars": 3,
                         "bpe_vs_longest_match": max(disagree + wobble, 0.0),
                         "overlap": {"bpe~wordpiece": 0.5, "wordpiece~wordpiece_frequency": 0.7},
                         "bpe": kind_counts(1200), "wordpiece": kind_counts(int(wp_tokens * (1 + wobble))),
                         "wordpiece_frequency": kind_counts(1250),
                         "byte_bpe": kind_counts(1400, unk=byte_unk, exact=byte_exact)})
    merges = {c: {"bpe": [{"left": "e", "right": "n</w>", "merged": "en</w>", "count_ab": 5, "count_a": 9,
                           "count_b": 6, "frequency_score": 5, "likelihood_score": 5 / 54, "rank_by_count": 1}],
                  "wordpiece": []} for c in q18.CORPORA}
    return {"question": 18, "size": size, "seeds": seeds, "results": {"runs": runs, "first_merges": merges}}


def test_depends_when_encoding_differs_bytes_are_safe_and_wordpiece_is_longer():
    label, reason = q18.verdict(metrics())
    assert label == "depends"
    assert "only the merge criterion differs: fails" in reason and "de 5.00 ± 0.00%" in reason
    assert "never produces an unknown token: holds" in reason
    assert "fewer tokens per word: fails" in reason and "+8.3" in reason  # 1300 / 1200 − 1


def test_confirmed_when_every_claim_holds():
    label, _ = q18.verdict(metrics(disagree=0.0, wp_tokens=1000))
    assert label == "confirmed"


def test_refuted_when_every_claim_fails():
    label, reason = q18.verdict(metrics(byte_unk=3, byte_exact=0.9))
    assert label == "refuted" and "27 unknown tokens" in reason  # 3 in each of 9 runs


def test_noise_larger_than_the_effect_leaves_claims_unclear():
    assert q18.fewer_tokens(metrics(wp_tokens=1000))[0] == "holds"
    assert q18.fewer_tokens(metrics(wp_tokens=1190, noise=0.05))[0] == "fails"  # "same" everywhere: never fewer
    found = q18.claim_outcomes(metrics(disagree=0.01, noise=0.02))
    assert found["only the merge criterion differs"][0] == "unclear"


def test_too_few_seeds_and_smoke_size_are_inconclusive():
    assert q18.verdict(metrics(seeds=2))[0] == "inconclusive"
    label, reason = q18.verdict(metrics(size="smoke"))
    assert label == "inconclusive" and "qkv ask 18 --size full" in reason


def test_longest_match_is_greedy_and_marks_the_word_end():
    vocab = {"a": 0, "b": 1, "ab": 2, "c</w>": 3, "abc</w>": 4, "bc</w>": 5}
    assert q18.longest_match("abc", vocab) == ["abc</w>"]
    assert q18.longest_match("abbc", vocab) == ["ab", "bc</w>"]
    assert q18.longest_match("abx", vocab) is None


def test_longest_match_and_merges_can_cut_one_word_differently():
    # merges: b+c first, then a+b never applies inside "abc"; longest match takes "ab" first
    vocab = {t: i for i, t in enumerate(["<unk>", "a", "b", "c", "a</w>", "b</w>", "c</w>", "bc</w>", "ab"])}
    bpe = BPE(vocab, [("b", "c</w>"), ("a", "b")], special_tokens=["<unk>"])
    assert bpe.tokens("abc") == ["a", "bc</w>"]
    assert q18.longest_match("abc", bpe.vocab) == ["ab", "c</w>"]
    assert q18.segmentation_disagreement(bpe, ["abc ab"]) == 0.5  # "ab" is a, b</w> both ways


def test_first_merges_score_each_pair_by_both_criteria():
    lines = ["low low low lower", "xq"]
    bpe = q18.first_merges(lines, "bpe", 1)[0]
    assert (bpe["left"], bpe["right"], bpe["count_ab"], bpe["rank_by_count"]) == ("l", "o", 4, 1)
    wp = q18.first_merges(lines, "wordpiece", 1)[0]
    # x and ##q occur once each and only together: score 1 / (1 · 1), the largest possible
    assert (wp["merged"], wp["likelihood_score"]) == ("xq", 1.0)


def test_surface_strips_every_marker():
    assert q18.surface("##ing", "wordpiece") == "ing"
    assert q18.surface("ing</w>", "bpe") == "ing"
    assert q18.surface("Ġthe", "byte_bpe") == "the"
    assert q18.jaccard({"a", "b"}, {"b", "c"}) == 1 / 3
