"""What a run reports: ``metrics.jsonl`` (for files and plots) and a tqdm progress bar (for people).

The log holds only values that a resumed run reproduces exactly (step, epoch, loss, lr, gradient
norm, token count, evaluation metrics) — wall-clock numbers such as tokens/s go to the progress
bar — so an interrupted-and-resumed run's log is byte-identical to an uninterrupted one's.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm


class MetricsLog:
    """``metrics.jsonl``: one JSON object per line, appended (by rank 0 only: ``enabled``)."""

    def __init__(self, path: Path, enabled: bool = True) -> None:
        self.path, self.enabled = path, enabled

    def start(self) -> None:
        """An empty log for a fresh run."""
        if self.enabled:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text("")

    def append(self, record: dict[str, Any]) -> None:
        if self.enabled:
            with self.path.open("a") as f:
                f.write(json.dumps(record) + "\n")

    def reset_to(self, copy: Path) -> None:
        """Replace the log by a checkpoint's copy, dropping lines a lost run wrote after it."""
        if not self.enabled:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".tmp-{self.path.name}")
        if copy.exists():
            shutil.copyfile(copy, tmp)
        else:
            tmp.write_text("")
        os.replace(tmp, self.path)  # atomic: the old log or the new one, never half of each


class Progress:
    """A tqdm bar over optimizer steps showing loss, lr and tokens/s; tqdm adds the ETA when
    the run's length is known."""

    def __init__(self, total: int | None, initial: int, enabled: bool) -> None:
        self.bar = tqdm(total=total, initial=initial, unit="step", dynamic_ncols=True, disable=not enabled)
        self.last = time.monotonic()

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.close()

    def update(self, record: dict[str, Any]) -> None:
        now = time.monotonic()
        elapsed, self.last = now - self.last, now
        tokens_per_s = record["tokens"] / elapsed if elapsed > 0 else float("nan")
        self.bar.set_postfix(loss=f"{record['loss']:.3f}", lr=f"{record['lr']:.2e}",
                             tok_s=f"{tokens_per_s:,.0f}", refresh=False)
        self.bar.update(1)

    def write(self, message: str) -> None:
        if not self.bar.disable:
            tqdm.write(message)


__all__ = ["MetricsLog", "Progress"]
