"""Exact resume: a run killed with SIGKILL after a checkpoint, resumed from it, ends with the
same weights (bit for bit, on CPU) and the same metrics log as a run never interrupted."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import torch

from qkv.train import Trainer, list_checkpoints
from train_helpers import RESUME_MAX_STEPS, RESUME_SAVE_AT, resume_setup

SCRIPT = Path(__file__).resolve().parent / "scripts" / "killable_run.py"


def run_killed(out: Path) -> None:
    """Start the run in a subprocess and SIGKILL it once it reports it is past the checkpoint."""
    proc = subprocess.Popen([sys.executable, str(SCRIPT), str(out), str(torch.get_num_threads())],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.strip() == "READY", proc.stderr.read() if proc.poll() is not None else line
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL


def test_resume_after_sigkill_continues_exactly(tmp_path: Path) -> None:
    model, config, batches = resume_setup()
    straight = Trainer(model, config, batches, tmp_path / "straight", progress=False)
    straight.fit()

    killed = tmp_path / "killed"
    run_killed(killed)
    lines_before_resume = (killed / "metrics.jsonl").read_text().splitlines()
    assert len(lines_before_resume) > RESUME_SAVE_AT  # the lost steps were logged...
    assert [p.name for p in list_checkpoints(killed)] == [f"checkpoint-{RESUME_SAVE_AT:08d}"]  # ...not saved
    state = json.loads((killed / f"checkpoint-{RESUME_SAVE_AT:08d}" / "trainer_state.json").read_text())
    assert (state["epoch"], state["batch_in_epoch"]) == (1, 2)  # mid-epoch: the skip is exercised

    model2, config2, batches2 = resume_setup()
    resumed = Trainer(model2, config2, batches2, killed, progress=False).resume()
    result = resumed.fit()

    assert result.step == RESUME_MAX_STEPS
    for (name, a), (_, b) in zip(straight.model.state_dict().items(), resumed.model.state_dict().items()):
        assert torch.equal(a, b), name
    assert (killed / "metrics.jsonl").read_text() == (tmp_path / "straight" / "metrics.jsonl").read_text()
    straight_opt = straight.optimizer.state_dict()["state"]
    resumed_opt = resumed.optimizer.state_dict()["state"]
    assert all(torch.equal(straight_opt[i]["exp_avg_sq"], resumed_opt[i]["exp_avg_sq"]) for i in straight_opt)


def test_resume_without_rng_restore_would_differ(tmp_path: Path) -> None:
    """The resume test can fail: with dropout, skipping the RNG restore changes the weights."""
    model, config, batches = resume_setup()
    first = Trainer(model, config.replace(max_steps=RESUME_SAVE_AT), batches, tmp_path / "a", progress=False)
    first.fit()
    straight_model, _, _ = resume_setup()
    straight = Trainer(straight_model, config.replace(max_steps=RESUME_SAVE_AT + 1), batches, tmp_path / "b",
                       progress=False)
    straight.fit()
    model2, _, _ = resume_setup()
    careless = Trainer(model2, config.replace(max_steps=RESUME_SAVE_AT + 1), batches, tmp_path / "a",
                       progress=False).resume()
    torch.manual_seed(12345)  # as if the checkpoint had not kept the RNG states
    careless.fit()
    differs = any(not torch.equal(a, b) for a, b in zip(straight.model.state_dict().values(),
                                                          careless.model.state_dict().values()))
    assert differs
