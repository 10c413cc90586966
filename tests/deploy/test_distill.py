"""Sequence-level distillation: `qkv distill` writes the teacher's translation of every training
source in order, continues an interrupted run, and `train_targets=` makes a student learn those
lines instead of the references; bad files are one-line errors that leave no run folder."""

from __future__ import annotations

import pytest

from qkv.cli import main
from qkv.deploy import distill as D
from qkv.tasks.run import configure, open_checkpoint
from qkv.tasks.translation import translate

from .conftest import TINY_MT


@pytest.fixture(scope="module")
def teacher(tiny_mt_run):
    return tiny_mt_run


@pytest.fixture(scope="module")
def sources(teacher):
    return [s for s, _ in configure("translate-de-en", TINY_MT).pairs("train")]


@pytest.fixture(scope="module")
def distilled(teacher, tmp_path_factory):
    out = tmp_path_factory.mktemp("targets") / "teacher.en"
    assert main(["distill", str(teacher), "--out", str(out), "--beam", "2", "--batch-size", "1"]) == 0
    return out


def test_one_teacher_translation_per_training_pair_in_order(teacher, sources, distilled):
    lines = distilled.read_text(encoding="utf-8").split("\n")
    assert lines[-1] == "" and len(lines) - 1 == len(sources) == 64
    model, tok, _ = open_checkpoint(teacher, family="seq2seq")
    # each source alone (batch 1), as `qkv translate` would: the same line at the same place
    assert lines[:-1] == translate(model.eval(), tok, sources, beams=2, batch_size=1, truncate=True)
    assert not distilled.with_name("teacher.en.partial").exists()


def test_interrupted_run_continues_where_it_stopped(teacher, distilled, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(D, "CHUNK", 16)
    calls = []

    def translate_then_interrupt(*args, **kwargs):
        calls.append(len(args[2]))
        if len(calls) == 3:
            raise KeyboardInterrupt
        return translate(*args, **kwargs)

    monkeypatch.setattr(D, "translate", translate_then_interrupt)
    out = tmp_path / "t.en"
    argv = ["distill", str(teacher), "--out", str(out), "--beam", "2", "--batch-size", "1"]
    assert main(argv) == 130
    assert "after 32 of 64 sentences" in capsys.readouterr().err
    partial = tmp_path / "t.en.partial"
    assert not out.exists() and len(partial.read_text().splitlines()) == 32
    calls.clear()
    assert main(argv) == 0
    assert calls == [16, 16]  # only the chunks not yet written
    assert out.read_text() == distilled.read_text()


def test_partial_file_of_other_settings_is_refused(teacher, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(D, "CHUNK", 16)
    monkeypatch.setattr(D, "translate", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt))
    out = tmp_path / "t.en"
    assert main(["distill", str(teacher), "--out", str(out), "--beam", "2"]) == 130
    (tmp_path / "t.en.partial").write_text("a\n" * 16)
    capsys.readouterr()
    assert main(["distill", str(teacher), "--out", str(out), "--beam", "3"]) == 2
    err = capsys.readouterr().err
    assert "was begun by another teacher or other settings" in err and "Traceback" not in err
    assert (tmp_path / "t.en.partial").read_text() == "a\n" * 16  # left as it was


def test_existing_output_and_bad_arguments_are_one_line_errors(teacher, distilled, tmp_path, capsys):
    assert main(["distill", str(teacher), "--out", str(distilled)]) == 2
    assert "exists; give another --out" in capsys.readouterr().err
    assert main(["distill", str(teacher), "--out", str(tmp_path / "no/such/t.en")]) == 2
    assert "does not exist; create it first" in capsys.readouterr().err
    assert main(["distill", str(teacher), "--out", str(tmp_path / "t.en"), "--beam", "0"]) == 2
    assert "must be positive integers" in capsys.readouterr().err


def test_train_targets_replace_the_references_and_keep_the_tokenizer(teacher, distilled, tmp_path):
    plain = configure("translate-de-en", TINY_MT)
    student = configure("translate-de-en", [*TINY_MT, f"train_targets={distilled}"])
    tok = plain.prepare(tmp_path / "plain")
    student.prepare(tmp_path / "student")
    assert (tmp_path / "plain/tokenizer.json").read_text() == (tmp_path / "student/tokenizer.json").read_text()
    lines = distilled.read_text(encoding="utf-8").splitlines()
    refs = [t for _, t in plain.pairs("train")]
    kept = [line for line in lines if line]  # an empty translation is skipped like an empty reference
    got = [t for _, t in student._data["train"]]
    assert got == tok.encode_batch(kept, add_special_tokens=False)[: len(got)] and len(got) == len(kept)
    assert got != [t for _, t in plain._data["train"]] and lines != refs
    assert student._data["val"] == plain._data["val"]  # validation still scores against the references


def test_student_trains_on_the_teacher_file(distilled, tmp_path):
    out = tmp_path / "student"
    assert main(["train", "translate-de-en", *TINY_MT, f"train_targets={distilled}", "--out", str(out)]) == 0
    assert (out / "final/model.safetensors").is_file()


@pytest.mark.parametrize("content, message", [
    ("one line\n", "has 1 lines, but translate-de-en trains on 64 pairs"),
    (None, "no such file; write it with `qkv distill"),
    (b"\xff\xfe\n", "is not UTF-8 text"),
])
def test_bad_targets_file_is_one_line_and_leaves_no_run_folder(tmp_path, capsys, content, message):
    path = tmp_path / "targets.en"
    if isinstance(content, str):
        path.write_text(content)
    elif content is not None:
        path.write_bytes(content)
    out = tmp_path / "run"
    assert main(["train", "translate-de-en", *TINY_MT, f"train_targets={path}", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) <= 2
    assert not out.exists()
