"""A short DDP run for the distributed test; launch with torchrun:

    torchrun --standalone --nproc_per_node=2 ddp_run.py OUTPUT_DIR
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from train_helpers import ddp_setup  # noqa: E402

from qkv.train import Trainer  # noqa: E402
from qkv.train.distributed import teardown  # noqa: E402


def main() -> None:
    torch.set_num_threads(1)
    model, config, batches = ddp_setup()
    result = Trainer(model, config, batches, Path(sys.argv[1]), progress=False).fit()
    print(f"rank {result.step} done", flush=True)
    teardown()


if __name__ == "__main__":
    main()
