"""DDP under torchrun (gloo, 2 CPU processes) gives the single-process update on the global batch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist

import qkv
from qkv.train import Trainer
from qkv.train.distributed import Dist, shard
from train_helpers import ddp_setup, ragged_lm_batches

SCRIPT = Path(__file__).resolve().parent / "scripts" / "ddp_run.py"


def test_shards_are_disjoint_and_cover_the_batch() -> None:
    batch = ragged_lm_batches(1, B=5)[0]
    parts = [shard(batch, Dist(rank=r, world_size=2)) for r in range(2)]
    for key in batch:
        torch.testing.assert_close(torch.cat([p[key] for p in parts]), batch[key])
    assert [len(p["input_ids"]) for p in parts] == [3, 2]


@pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(), reason="needs torch.distributed gloo")
def test_torchrun_two_ranks_match_one_process(tmp_path: Path) -> None:
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                           str(SCRIPT), str(out)], env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]

    model, config, batches = ddp_setup()
    single = Trainer(model, config, batches, tmp_path / "single", progress=False)
    single.fit()

    ddp_model = qkv.load(out / "checkpoint-00000003")
    for (name, a), (_, b) in zip(single.model.state_dict().items(), ddp_model.state_dict().items()):
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-6, msg=name)
    ddp_lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    one_lines = [json.loads(line) for line in (tmp_path / "single" / "metrics.jsonl").read_text().splitlines()]
    assert [m["tokens"] for m in ddp_lines] == [m["tokens"] for m in one_lines]
    assert [m["loss"] for m in ddp_lines] == pytest.approx([m["loss"] for m in one_lines], rel=1e-5)
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint-00000003", "metrics.jsonl"]  # rank 0 only
