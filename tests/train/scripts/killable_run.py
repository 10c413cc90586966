"""The run the exact-resume test kills: train the resume setup until the checkpoint at
RESUME_SAVE_AT exists and two more steps are done, then print READY and hang (the test then
sends SIGKILL, so nothing after the checkpoint is cleanly saved).

    python killable_run.py OUTPUT_DIR NUM_THREADS
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from train_helpers import resume_setup  # noqa: E402

from qkv.train import Trainer  # noqa: E402


def main() -> None:
    out, threads = Path(sys.argv[1]), int(sys.argv[2])
    torch.set_num_threads(threads)
    model, config, batches = resume_setup()

    def hang_in_epoch_2(epoch: int):
        for batch in batches(epoch):
            if epoch == 2:  # steps 5 and 6 (epoch 1) are done and logged, but not checkpointed
                print("READY", flush=True)
                time.sleep(600)
            yield batch

    Trainer(model, config, hang_in_epoch_2, out, progress=False).fit()


if __name__ == "__main__":
    main()
