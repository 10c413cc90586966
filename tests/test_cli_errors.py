"""What a new user meets, through the real ``qkv`` command in a subprocess: every expected
failure is one ``qkv: error:`` line (plus at most one hint), exit 2, no traceback, and nothing
written into an existing run folder; Ctrl-C is one line and exit 130."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from qkv.cli import main

TINY_MT = ["d_model=32", "n_layers=1", "n_heads=2", "d_ff=64", "vocab_size=300", "train_limit=64", "test_limit=4",
           "max_steps=4", "save_every=2", "warmup_steps=2"]
TINY_LM = ["d_model=32", "n_layers=1", "n_heads=2", "d_ff=64", "max_steps=2", "save_every=2", "eval_every=2",
           "steps_per_epoch=2", "batch_size=2", "warmup_steps=1"]


def qkv(*args: str, stdin: bytes | None = None, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "qkv.cli", *args], input=stdin, capture_output=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}, timeout=timeout)


def clean_error(proc: subprocess.CompletedProcess, *words: str) -> str:
    """Exit 2, no traceback, one ``qkv: error:`` line (and at most a hint line) naming ``words``."""
    err = proc.stderr.decode()
    lines = [line for line in err.splitlines() if line.strip()]
    assert proc.returncode == 2, (proc.returncode, err)
    assert "Traceback" not in err, err
    assert lines and lines[0].startswith("qkv: error: ") and len(lines) <= 2, err
    assert len(lines) == 1 or lines[1].startswith("qkv: hint: "), err
    for word in words:
        assert word in err, (word, err)
    return err


def tree_digest(folder: Path) -> str:
    """A hash of every file's path and bytes: equal before and after means nothing was written."""
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        digest.update(str(path.relative_to(folder)).encode())
        if path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A tiny translator run and a tiny language-model run, trained once for every case here."""
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("runs")
    assert main(["train", "translate-de-en", *TINY_MT, "--out", str(root / "mt")]) == 0
    assert main(["train", "lm-shakespeare", *TINY_LM, "--out", str(root / "lm")]) == 0
    return root


# -- checkpoints -------------------------------------------------------------------------------

def test_missing_averaged_folder_points_at_final(runs):
    err = clean_error(qkv("translate", str(runs / "mt" / "averagedx"), "Ein Hund."), "does not exist")
    assert str(runs / "mt" / "final") in err


def test_run_folder_translates_with_its_final_weights(runs):
    proc = qkv("translate", str(runs / "mt"), "Ein Hund läuft.", "--beam", "2")
    assert proc.returncode == 0 and proc.stdout.strip(), proc.stderr.decode()


@pytest.mark.parametrize("damage", ["truncated weights", "broken config", "no weights", "is a file"])
def test_damaged_checkpoint_is_one_line(runs, tmp_path, damage):
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    for name in ("config.json", "model.safetensors", "tokenizer.json"):
        (ckpt / name).write_bytes((runs / "mt" / "final" / name).read_bytes())
    target = ckpt
    if damage == "truncated weights":
        (ckpt / "model.safetensors").write_bytes((ckpt / "model.safetensors").read_bytes()[:1000])
    elif damage == "broken config":
        (ckpt / "config.json").write_text("{bad json")
    elif damage == "no weights":
        (ckpt / "model.safetensors").unlink()
    else:
        target = ckpt / "config.json"
    clean_error(qkv("translate", str(target), "Ein Hund."), str(target))


class NotATensor:  # pickled by torch.save: a weights_only load must refuse it
    pass


@pytest.mark.parametrize("content", ["unsafe", "truncated"])
def test_resume_with_a_bad_optimizer_file_says_which_problem(runs, tmp_path, content):
    run = tmp_path / "mt"
    subprocess.run(["cp", "-r", str(runs / "mt"), str(run)], check=True)
    ckpt = run / "checkpoint-00000004"
    if content == "unsafe":
        torch.save({"optimizer": NotATensor()}, ckpt / "optimizer.pt")
        words = ("refused as unsafe",)
    else:
        (ckpt / "optimizer.pt").write_bytes((ckpt / "optimizer.pt").read_bytes()[:200])
        words = ("truncated or corrupted",)
    clean_error(qkv("train", "translate-de-en", "--resume", str(run), "max_steps=6"), "optimizer.pt", *words)


# -- run folders -----------------------------------------------------------------------------

def test_training_into_an_existing_run_refuses_and_writes_nothing(runs):
    before = tree_digest(runs / "mt")
    err = clean_error(qkv("train", "translate-de-en", "d_model=64", "--out", str(runs / "mt")), "already holds")
    assert "--resume" in err and "trainer.resume" not in err
    assert tree_digest(runs / "mt") == before


def test_resume_of_another_preset_is_refused_with_both_named(runs):
    before = tree_digest(runs / "mt")
    clean_error(qkv("train", "lm-shakespeare", "--resume", str(runs / "mt")), "translate-de-en", "lm-shakespeare")
    assert tree_digest(runs / "mt") == before


def test_resume_changing_the_model_is_refused(runs):
    before = tree_digest(runs / "mt")
    clean_error(qkv("train", "translate-de-en", "d_model=64", "--resume", str(runs / "mt")), "d_model", "32", "64")
    assert tree_digest(runs / "mt") == before


def test_resume_may_extend_the_run_and_records_it(runs, tmp_path):
    run = tmp_path / "mt"
    subprocess.run(["cp", "-r", str(runs / "mt"), str(run)], check=True)
    proc = qkv("train", "translate-de-en", "max_steps=6", "--resume", str(run), "--max-minutes", "5")
    assert proc.returncode == 0, proc.stderr.decode()
    record = json.loads((run / "task.json").read_text())
    assert record["resumes"] == [{"at_step": 4, "overrides": ["max_steps=6"], "max_minutes": 5.0}]
    assert (run / "checkpoint-00000006").is_dir()
    assert json.loads((run / "final" / "config.json").read_text())["final_from"] in ("averaged", "checkpoint-00000006")


def test_resume_refuses_a_checkpoint_of_another_recipe(runs, tmp_path):
    # A run started when the preset had other defaults: its checkpoint's config.json says so.
    run = tmp_path / "mt"
    subprocess.run(["cp", "-r", str(runs / "mt"), str(run)], check=True)
    config_file = run / "checkpoint-00000004" / "config.json"
    config = json.loads(config_file.read_text())
    config["train"]["warmup_steps"] = 600
    config_file.write_text(json.dumps(config))
    before = tree_digest(run)
    err = clean_error(qkv("train", "translate-de-en", "--resume", str(run), "max_steps=6"), "warmup_steps=600")
    assert "qkv: hint: resume it as it was trained: add warmup_steps=600" in err
    assert tree_digest(run) == before


def test_out_naming_a_file(runs):
    clean_error(qkv("train", "translate-de-en", "--out", str(runs / "mt" / "task.json")), "is a file")


@pytest.mark.parametrize("problem", ["missing folder", "checksum mismatch"])
def test_data_problems_leave_no_run_folder(tmp_path, problem):
    data = tmp_path / "data"
    data.mkdir()
    if problem == "checksum mismatch":
        real = Path(__file__).resolve().parents[1].parent / "shared" / "data"
        real = Path(os.environ.get("QKV_DATA", real))
        (data / "multi30k").mkdir()
        for f in (real / "multi30k").iterdir():
            (data / "multi30k" / f.name).write_bytes(f.read_bytes()[:300])
    out = tmp_path / "run"
    words = ("missing data file",) if problem == "missing folder" else ("checksum mismatch",)
    clean_error(qkv("train", "translate-de-en", "--out", str(out), env={"QKV_DATA": str(data)}), *words)
    assert not out.exists()
    if problem == "checksum mismatch":  # the tokenizer command checks the sums too (no raw EOFError)
        clean_error(qkv("tokenizer", "train", "--corpus", "multi30k", "--out", str(tmp_path / "t.json"),
                        env={"QKV_DATA": str(data)}), "checksum mismatch")


# -- arguments and input ------------------------------------------------------------------------

@pytest.mark.parametrize("override,words", [
    ("lr0=1", ("'lr0'", "did you mean lr")),
    ("warmup=100", ("'warmup'", "warmup_steps")),
    ("vocab_size=abc", ("vocab_size", "'abc'")),
    ("max_steps=-3", ("max_steps",)),
])
def test_bad_overrides_name_the_key(tmp_path, override, words):
    clean_error(qkv("train", "translate-de-en", override, "--out", str(tmp_path / "r")), *words)
    assert not (tmp_path / "r").exists()


def test_threads_must_be_positive(tmp_path):
    clean_error(qkv("train", "translate-de-en", "--threads", "-1", "--out", str(tmp_path / "r")), "--threads")


@pytest.mark.parametrize("size", ["0", "-1"])
def test_translate_batch_size_must_be_positive(runs, size):
    clean_error(qkv("translate", str(runs / "mt"), "Ein Hund.", "--batch-size", size), "--batch-size")


def test_non_utf8_stdin_names_its_source(runs):
    clean_error(qkv("translate", str(runs / "mt"), stdin=b"Ein Hund\xff.\n"), "standard input", "UTF-8", "0xff")


def test_over_long_input_is_refused_or_cut_when_asked(runs):
    text = ("Ein Mann fährt Fahrrad. " * 1000).encode()
    clean_error(qkv("translate", str(runs / "mt"), stdin=text), "over this model's limit", "--truncate")
    cut = qkv("translate", str(runs / "mt"), "--truncate", "--beam", "1", stdin=text)
    assert cut.returncode == 0 and "qkv: note: cut 1 of 1 inputs" in cut.stderr.decode(), cut.stderr.decode()


def test_wrong_family_is_refused_both_ways(runs):
    clean_error(qkv("translate", str(runs / "lm"), "Ein Hund."), "language model", "qkv generate")
    clean_error(qkv("generate", str(runs / "mt"), "--prompt", "Hi"), "translator", "qkv translate")
    clean_error(qkv("evaluate", str(runs / "lm" / "final"), "--split", "test"), "no split 'test'")


def test_help_lists_presets_and_version():
    help_text = qkv("train", "--help").stdout.decode()
    assert "translate-de-en" in help_text and "classify-sst2" in help_text and "qkv presets" in help_text
    assert "samples by default" in " ".join(qkv("generate", "--help").stdout.decode().split()).lower()
    version = qkv("--version")
    assert version.returncode == 0 and version.stdout.decode().startswith("qkv 0.")
    recipe = qkv("presets", "translate-de-en").stdout.decode()
    assert "warmup_steps" in recipe and "400" in recipe and "max_tokens" in recipe


# -- Ctrl-C ----------------------------------------------------------------------------------------

def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _interrupt_when_busy(args: list[str], cpu_seconds: float = 4.0) -> subprocess.CompletedProcess:
    """Start ``qkv ARGS``, send SIGINT once it has used ``cpu_seconds`` (imports are done)."""
    proc = subprocess.Popen([sys.executable, "-m", "qkv.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env={**os.environ, "OMP_NUM_THREADS": "1"})
    while proc.poll() is None and _cpu_seconds(proc.pid) < cpu_seconds:
        time.sleep(0.05)
    assert proc.poll() is None, "finished before it could be interrupted; make the job longer"
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    return subprocess.CompletedProcess(args, proc.returncode, out, err)


def test_ctrl_c_during_evaluate_is_one_line(runs):
    proc = _interrupt_when_busy(["evaluate", str(runs / "mt"), "--beam", "12", "--limit", "1000"])
    err = proc.stderr.decode()
    assert proc.returncode == 130 and "Traceback" not in err, err
    assert [line for line in err.splitlines() if line.strip()] == ["qkv: interrupted"], err


def test_ctrl_c_during_the_final_scoring_keeps_the_weights(tmp_path, monkeypatch, capsys):
    from qkv.tasks.translation import TranslationTask

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(TranslationTask, "test", interrupted)
    out = tmp_path / "mt"
    assert main(["train", "translate-de-en", *TINY_MT, "--out", str(out)]) == 130
    err = capsys.readouterr().err
    assert "qkv: interrupted while scoring" in err and f"qkv evaluate {out / 'final'}" in err
    assert (out / "final" / "model.safetensors").is_file() and not (out / "results.json").exists()
