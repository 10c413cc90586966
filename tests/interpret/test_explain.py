"""`qkv explain` writes one self-contained page that a real browser renders without errors, for a
translator (cross-attention), a classifier (Integrated Gradients) and a language model."""

from __future__ import annotations

import json
import re
import time

import matplotlib.image
import pytest
import torch

from qkv.cli import main
from tests.lab.test_lab_browser import console_lines, open_page

TINY_MT = ["d_model=32", "n_layers=1", "n_heads=2", "d_ff=64", "vocab_size=300", "train_limit=64", "test_limit=4",
           "max_steps=2", "save_every=2", "warmup_steps=1"]
TINY_SST = ["d_model=32", "n_layers=1", "n_heads=2", "d_ff=64", "vocab_size=500", "max_tokens=3000",
            "max_epochs=none", "warmup_steps=1", "max_steps=2", "save_every=2", "eval_every=2"]
TINY_LM = ["d_model=32", "n_layers=2", "n_heads=2", "d_ff=64", "max_steps=2", "save_every=2", "eval_every=2",
           "steps_per_epoch=2", "batch_size=2", "warmup_steps=1", "max_len=300"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("explain")
    assert main(["train", "translate-de-en", *TINY_MT, "--out", str(root / "mt")]) == 0
    assert main(["train", "classify-sst2", *TINY_SST, "--out", str(root / "cls")]) == 0
    assert main(["train", "lm-shakespeare", *TINY_LM, "--out", str(root / "lm")]) == 0
    return root


def page_data(page) -> dict:
    text = page.read_text()
    assert "http://" not in text and "https://" not in text  # nothing fetched from outside
    return json.loads(re.search(r'<script id="data" type="application/json">(.*?)</script>', text, re.S)[1])


def test_translator_page_has_cross_attention_over_the_source(runs, tmp_path, capsys):
    page = tmp_path / "mt.html"
    assert main(["explain", str(runs / "mt"), "Ein Mann fährt Fahrrad.", "--out", str(page)]) == 0
    data = page_data(page)
    cross = [m for m in data["attention"] if m["kind"] == "cross"]
    assert cross and cross[0]["cols"] == len(data["source"]) and cross[0]["rows"] == len(data["target"])
    assert {(m["stack"], m["kind"]) for m in data["attention"]} == {("encoder", "self"), ("decoder", "self"),
                                                                   ("decoder", "cross")}
    shown = open_page(page, tmp_path / "p", "--dump-dom")
    assert shown.returncode == 0 and not console_lines(shown.stderr), console_lines(shown.stderr)
    assert shown.stdout.count('class="tok"') == len(data["source"]) + len(data["target"])


def test_classifier_page_carries_integrated_gradients(runs, tmp_path):
    page = tmp_path / "cls.html"
    assert main(["explain", str(runs / "cls"), "a gripping , funny film", "--out", str(page)]) == 0
    data = page_data(page)
    assert len(data["ig"]) == len(data["source"]) and data["ig_delta"] <= 0.01
    assert "class probabilities" in data["output"]


def test_a_256_token_prompt_opens_quickly_and_is_not_blank(runs, tmp_path):
    page = tmp_path / "lm.html"
    prompt = ("To be, or not to be, that is the question: " * 7)[:256]
    assert main(["explain", str(runs / "lm"), prompt, "--out", str(page)]) == 0
    assert len(page_data(page)["source"]) == 256
    shot = tmp_path / "shot.png"
    start = time.perf_counter()
    done = open_page(page, tmp_path / "p", f"--screenshot={shot}", "--window-size=1100,1400")
    assert done.returncode == 0 and not console_lines(done.stderr)
    assert time.perf_counter() - start < 60  # a frozen page would hit the browser's own timeout instead
    assert matplotlib.image.imread(shot)[..., :3].std() > 0.05


def test_bad_input_is_one_line(runs, tmp_path, capsys):
    assert main(["explain", str(runs / "lm"), "   ", "--out", str(tmp_path / "x.html")]) == 2
    assert "nothing to explain" in capsys.readouterr().err
    assert main(["explain", str(runs / "lm"), "ab", "--out", str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err
