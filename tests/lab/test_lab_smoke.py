"""Every question runs at smoke size, writes its record and plots, and prints through `qkv ask`."""

from __future__ import annotations

import argparse
import json
import re

import pytest

from qkv.errors import InputError
from qkv.lab import base
from qkv.lab.catalog import CATALOG
from qkv.lab.cli import add_subparser

RECORD_KEYS = {"question", "title", "size", "seeds", "config", "command", "qkv_version", "git_commit",
               "hardware", "wall_time_s", "results", "plots", "verdict"}


def parse(argv):
    p = argparse.ArgumentParser()
    add_subparser(p.add_subparsers(dest="command"))
    return p.parse_args(argv)


@pytest.mark.parametrize("number", sorted(base.QUESTIONS))
def test_smoke_run_writes_metrics_and_plots(number, smoke_results):
    root, runs = smoke_results
    folder = root / base.folder_name(number)
    stored = json.loads((folder / base.METRICS_FILE).read_text())
    assert RECORD_KEYS <= set(stored)
    assert stored["hardware"]["torch"] and stored["hardware"]["cpu"] and stored["hardware"]["threads"] >= 1
    assert stored["command"].startswith(f"qkv ask {number} --size smoke")
    assert stored["plots"] and all((folder / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for name in stored["plots"])
    assert all((folder / name).stat().st_size < 200_000 for name in stored["plots"])
    assert stored["verdict"][0] == "inconclusive" and stored["verdict"][1].startswith("smoke size")
    again = base.recomputed_verdict(base.question(number), stored, folder / base.METRICS_FILE)
    assert again == tuple(stored["verdict"]) == tuple(runs[number]["verdict"])


@pytest.mark.parametrize("number", sorted(base.QUESTIONS))
def test_question_module_states_question_claims_answer(number):
    module = base.question(number)
    assert module.__doc__.startswith(f"Question {number}:") and module.KEYWORD in module.__doc__
    assert module.TITLE and module.CLAIMS and len(module.ANSWER) > 200
    assert "Reproduce: ``qkv ask" in module.__doc__


def test_catalog_has_the_35_questions():
    assert [e.number for e in CATALOG] == list(range(1, 36))
    assert all(e.title and e.keyword for e in CATALOG)


def test_ask_prints_answer_table_verdict_and_the_full_command(tmp_path, capsys):
    args = parse(["ask", "22", "--out", str(tmp_path / "q22")])
    assert args.fn(args) == 0
    out = capsys.readouterr().out
    assert "softmax(Q Kᵀ / √d_k) V" in out and "weights" in out
    assert "verdict: inconclusive — smoke size" in out
    assert "for the verdict, run the full size: qkv ask 22 --size full" in out
    assert (tmp_path / "q22" / base.METRICS_FILE).is_file()


def test_ask_list_shows_all_35_with_status(capsys):
    args = parse(["ask", "--list"])
    assert args.fn(args) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if re.match(r" ?\d{1,2}  \w", line)]
    assert len(lines) == 35
    assert all("answered" in line for line in lines)


def test_a_question_without_a_module_is_listed_and_refused_as_not_yet_measured(monkeypatch, capsys):
    monkeypatch.delitem(base.QUESTIONS, 35)
    args = parse(["ask", "--list"])
    assert args.fn(args) == 0
    out = capsys.readouterr().out
    assert "34 of 35 answered" in out
    assert "not yet measured" in [line for line in out.splitlines() if line.startswith("35  ")][0]
    args = parse(["ask", "35"])
    with pytest.raises(InputError, match=re.escape("question 35 (Deploying on different hardware) is not yet measured")):
        args.fn(args)


@pytest.mark.parametrize("argv, words", [
    (["ask", "99"], "no question 99"),
    (["ask"], "needs a question number"),
    (["ask", "22", "--seeds", "0"], "--seeds 0"),
])
def test_ask_refuses_bad_input_with_a_clear_error(argv, words):
    args = parse(argv)
    with pytest.raises(InputError, match=re.escape(words)):
        args.fn(args)


def test_qkv_ask_prints_expected_errors_as_one_line(capsys):
    from qkv.cli import main

    assert main(["ask", "99"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("qkv: error: there is no question 99") and "Traceback" not in err
