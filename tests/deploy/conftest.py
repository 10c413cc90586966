"""One tiny Multi30k translator run (``qkv train``, four steps), shared by the deploy tests that
only read it: the precision and export tests translate it, the distillation tests use it as the
teacher."""

from __future__ import annotations

import pytest
import torch

from qkv.cli import main

TINY_MT = ["d_model=32", "n_layers=1", "n_heads=2", "d_ff=64", "vocab_size=300", "train_limit=64", "test_limit=4",
           "max_steps=4", "save_every=2", "warmup_steps=2"]


@pytest.fixture(scope="session")
def tiny_mt_run(tmp_path_factory):
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("tiny-mt")
    assert main(["train", "translate-de-en", *TINY_MT, "--out", str(root / "mt")]) == 0
    return root / "mt"
