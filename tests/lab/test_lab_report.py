"""`qkv report`: both pages from a results folder; broken results stop it with the file's name."""

from __future__ import annotations

import argparse
import json
import re
import shutil

import pytest

from qkv.errors import DataError
from qkv.lab import base
from qkv.lab.cli import add_subparser
from qkv.lab.report import build


@pytest.fixture
def results(smoke_results, tmp_path):
    """A private copy of the smoke results, free to damage."""
    root, _ = smoke_results
    copy = tmp_path / "results"
    shutil.copytree(root, copy)
    return copy


def test_html_is_one_self_contained_page_with_35_sections(results, smoke_results, tmp_path):
    _, runs = smoke_results
    readme, page = build(results, tmp_path / "site")
    text = page.read_text(encoding="utf-8")
    assert len(re.findall(r"<section id=\"q\d\d\"", text)) == 35
    assert not re.search(r"https?://", text) and "<script" not in text and "<link" not in text
    n_plots = sum(len(m["plots"]) for m in runs.values())
    assert text.count('src="data:image/png;base64,') == n_plots
    assert text.count('<p class="pending">not yet measured</p>') == 35 - len(runs)
    for number in runs:
        section = text.split(f'<section id="q{number:02d}"')[1].split("</section>")[0]
        assert 'class="badge"' in section and "inconclusive" in section and "data:image/png" in section
        assert f"qkv ask {number} --size smoke" in section


def test_markdown_links_the_plots_and_lists_every_question(results, smoke_results, tmp_path):
    _, runs = smoke_results
    readme, _ = build(results, tmp_path / "site")
    text = readme.read_text(encoding="utf-8")
    assert len(re.findall(r"^## \d+\. ", text, flags=re.M)) == 35
    for number, metrics in runs.items():
        for name in metrics["plots"]:
            link = f"../results/q{number:02d}/{name}"
            assert f"]({link})" in text and (tmp_path / "site" / link).resolve().is_file()
    assert text.count("*not yet measured.*") == 35 - len(runs)


def test_report_command_writes_both_files(results, capsys):
    p = argparse.ArgumentParser()
    add_subparser(p.add_subparsers(dest="command"))
    args = p.parse_args(["report", "--results", str(results), "--out", str(results)])
    assert args.fn(args) == 0
    assert (results / "README.md").is_file() and (results / "report.html").is_file()
    assert "q04/q04_softmax.png" in (results / "README.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("damage, words", [
    (lambda f: f.write_text("{ not json"), "cannot be read as JSON"),
    (lambda f: f.unlink(), "is missing"),
    (lambda f: f.write_text(json.dumps({"question": 5})), "lacks"),
])
def test_broken_result_file_is_an_error_naming_it(results, tmp_path, damage, words):
    path = results / "q05" / base.METRICS_FILE
    damage(path)
    with pytest.raises(DataError, match=words) as err:
        build(results, tmp_path / "site")
    assert str(path) in str(err.value)
    assert not (tmp_path / "site" / "report.html").exists()  # no half page


def test_stored_verdict_that_disagrees_with_its_numbers_is_refused(results, tmp_path):
    path = results / "q22" / base.METRICS_FILE
    metrics = json.loads(path.read_text())
    metrics["verdict"] = ["confirmed", "edited by hand"]  # the label disagrees with the numbers
    path.write_text(json.dumps(metrics))
    with pytest.raises(DataError, match="stores verdict 'confirmed' but its numbers give 'inconclusive'") as err:
        build(results, tmp_path / "site")
    assert str(path) in str(err.value)


def test_missing_plot_is_an_error_naming_it(results, tmp_path):
    plot = results / "q04" / "q04_training.png"
    plot.unlink()
    with pytest.raises(DataError, match="is missing") as err:
        build(results, tmp_path / "site")
    assert str(plot) in str(err.value)


def test_missing_results_folder_is_an_error(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        build(tmp_path / "nowhere", tmp_path / "site")
