"""Make ``train_helpers`` importable, and run the training tests on one intra-op thread.

Tiny models gain nothing from several threads, and on a busy 2-core machine the threads'
spin-waiting makes a step 10-20× slower; the thread count is restored after each test.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
