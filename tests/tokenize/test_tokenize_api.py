"""The interface models and the data pipeline rely on: special-token ids, the fast backend, the
CLI."""

from __future__ import annotations

import argparse
import json

import pytest
from conftest import first_mismatch

from qkv.tokenize import BPE, KINDS, ByteBPE, WordPiece, fast, load
from qkv.cli import main as qkv_main
from qkv.tokenize.cli import add_subparser


def test_default_special_tokens_take_the_first_ids(qkv_trained):
    bpe, byte_bpe, wordpiece = (qkv_trained[k] for k in ("bpe", "byte_bpe", "wordpiece"))
    for tok in (bpe, byte_bpe):
        assert tok.special_tokens == ["<pad>", "<unk>", "<s>", "</s>"]
        assert (tok.pad_id, tok.unk_id, tok.bos_id, tok.eos_id, tok.mask_id) == (0, 1, 2, 3, None)
    assert wordpiece.special_tokens == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    assert (wordpiece.pad_id, wordpiece.unk_id, wordpiece.bos_id, wordpiece.eos_id,
            wordpiece.mask_id) == (0, 1, 2, 3, 4)


def test_encode_wraps_in_bos_eos(qkv_trained):
    for tok in qkv_trained.values():
        inner = tok.encode("Ein Hund.", add_special_tokens=False)
        assert tok.encode("Ein Hund.") == [tok.bos_id, *inner, tok.eos_id]
        assert tok.encode_batch(["Ein Hund.", ""]) == [tok.encode("Ein Hund."),
                                                       [tok.bos_id, tok.eos_id]]


def test_custom_special_tokens(train_lines):
    tok = ByteBPE.train(train_lines[:300], 400, special_tokens=["<pad>", "<mask>", "<eos>"])
    assert (tok.pad_id, tok.mask_id, tok.bos_id, tok.eos_id, tok.unk_id) == (0, 1, None, None,
                                                                            None)
    assert tok.encode("hi") == tok.encode("hi", add_special_tokens=False)  # no template
    hf = fast.from_tokenizer(tok)
    assert hf.encode("a <mask> b") == tok.encode("a <mask> b")


def test_tokens_show_the_pieces(qkv_trained):
    tok = qkv_trained["wordpiece"]
    pieces = tok.tokens("Hunde spielen")
    assert "".join(p.removeprefix("##") for p in pieces) == "Hundespielen"
    assert tok.encode_pieces("Hunde spielen") == pieces
    assert fast.from_tokenizer(tok).tokens("Hunde spielen") == pieces


@pytest.mark.parametrize("kind", list(KINDS))
def test_fast_backend_agrees_with_the_reference(kind, qkv_trained, heldout_lines, tmp_path):
    tok = qkv_trained[kind]
    tok.save(tmp_path / "tokenizer.json")
    quick = fast.load(tmp_path / "tokenizer.json")
    assert first_mismatch(heldout_lines, quick.encode_batch(heldout_lines),
                          tok.encode_batch(heldout_lines)) is None
    assert (quick.vocab_size, quick.pad_id, quick.unk_id, quick.bos_id, quick.eos_id,
            quick.mask_id) == (tok.vocab_size, tok.pad_id, tok.unk_id, tok.bos_id, tok.eos_id,
                               tok.mask_id)
    assert quick.special_tokens == tok.special_tokens


def test_load_round_trips_the_json(qkv_trained, tmp_path):
    for kind, tok in qkv_trained.items():
        tok.save(tmp_path / f"{kind}.json")
        again = load(tmp_path / f"{kind}.json")
        assert type(again) is type(tok) and again.to_json() == tok.to_json()


def main(argv: list[str]) -> int:
    """`qkv tokenizer ...` through the real command's one exit path."""
    return qkv_main(argv if argv[0] == "tokenizer" else ["tokenizer", *argv])


@pytest.mark.parametrize("kind", list(KINDS))
def test_cli_train_and_encode(kind, tmp_path, capsys):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("Zwei Hunde spielen im Schnee.\nA dog runs.\n我是学生。\n" * 20)
    out = tmp_path / "tok.json"
    assert main(["train", "--corpus", str(corpus), "--kind", kind, "--vocab", "320",
                 "--out", str(out)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["kind"] == kind and report["vocab_size"] <= 320 and out.is_file()
    assert main(["tokenizer", "encode", str(out), "Zwei Hunde"]) == 0
    shown = capsys.readouterr().out
    tok = load(out)
    assert " ".join(map(str, tok.encode("Zwei Hunde"))) in shown
    assert "pieces:" in shown and "decode(ids)" in shown


def test_cli_hf_backend_and_errors(tmp_path, capsys):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("ein kleiner Test\n" * 5)
    assert main(["train", "--corpus", str(corpus), "--kind", "wordpiece", "--vocab", "60",
                 "--backend", "hf", "--out", str(tmp_path / "hf.json")]) == 0
    assert isinstance(load(tmp_path / "hf.json"), WordPiece)
    capsys.readouterr()
    assert main(["train", "--corpus", "no-such-corpus", "--out", str(tmp_path / "x.json")]) == 2
    assert "neither a corpus" in capsys.readouterr().err
    assert main(["train", "--corpus", str(corpus), "--kind", "bpe", "--vocab", "3",
                 "--out", str(tmp_path / "x.json")]) == 2
    assert "smaller than" in capsys.readouterr().err


def test_add_subparser_registers_the_tokenizer_command():
    parser = argparse.ArgumentParser(prog="qkv")
    add_subparser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["tokenizer", "train", "--corpus", "multi30k", "--out", "t.json"])
    assert (args.command, args.kind, args.vocab, args.corpus) == ("tokenizer", "bpe", 8000,
                                                                  "multi30k")
    assert callable(args.run)


MERGE_LISTS = {
    # runs of one symbol: which overlapping (a, a) is merged first matters
    "runs": [("a", "a"), ("aa", "a"), ("aa", "aa"), ("b", "b"), ("a", "b")],
    # a merge ranked before the merge that creates its left part (HF applies it as soon as it
    # can, before the remaining occurrences of the later merge)
    "rank_inversion": [("ab", "a"), ("a", "b"), ("b", "a"), ("ba", "b")],
    # two merges spelling the same token
    "duplicates": [("a", "b"), ("b", "a"), ("ab", "a"), ("a", "ba"), ("aba", "b")],
}


@pytest.mark.parametrize("name", list(MERGE_LISTS))
def test_hand_built_merges_apply_like_hf(name):
    """Every string over {a, b} up to length 8, as BPE and as byte-level BPE."""
    merges = MERGE_LISTS[name]
    tokens = ["a", "b"] + [x + y for x, y in merges]
    texts = [""]
    for length in range(8):  # the last 2**length texts are those of that length
        texts += [t + c for t in texts[-2 ** length:] for c in "ab"]
    bpe = BPE({t: i for i, t in enumerate(dict.fromkeys(["<unk>", *tokens]))}, merges,
              special_tokens=["<unk>"], end_of_word_suffix=None)
    byte_bpe = ByteBPE({t: i for i, t in enumerate(dict.fromkeys(tokens))}, merges,
                       special_tokens=[])
    for tok in (bpe, byte_bpe):
        hf = fast.from_tokenizer(tok)
        assert first_mismatch(texts, tok.encode_batch(texts), hf.encode_batch(texts)) is None


def test_cli_wordpiece_score(tmp_path, capsys):
    # --score frequency trains the same vocabulary as the library call; misuse names the fix.
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("the cat sat on the mat\nthe dog sat there\n" * 20)
    assert main(["train", "--corpus", str(corpus), "--kind", "wordpiece", "--vocab", "40", "--score", "frequency",
                 "--out", str(tmp_path / "f.json")]) == 0
    expected = WordPiece.train(corpus.read_text().splitlines(), 40, score="frequency")
    assert load(tmp_path / "f.json").encode("the mat") == expected.encode("the mat")
    textbook = WordPiece.train(corpus.read_text().splitlines(), 40, score="likelihood")
    assert textbook.encode("the mat") != expected.encode("the mat")  # the flag made a difference
    capsys.readouterr()
    assert main(["train", "--corpus", str(corpus), "--kind", "bpe", "--score", "frequency",
                 "--out", str(tmp_path / "x.json")]) == 2
    assert "--score applies to --kind wordpiece only" in capsys.readouterr().err
    assert main(["train", "--corpus", str(corpus), "--kind", "wordpiece", "--score", "likelihood",
                 "--backend", "hf", "--out", str(tmp_path / "x.json")]) == 2
    assert "frequency only" in capsys.readouterr().err
