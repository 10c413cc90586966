"""Fixtures for the data tests: the real data folder, and throwaway copies of parts of it."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Callable

import pytest

from qkv.data import data_root
from qkv.data.sources import FILES


@pytest.fixture(scope="session")
def real_root() -> Path:
    """The real data folder (shared/data or $QKV_DATA); fail with directions when this machine has none."""
    root = data_root()
    if not (root / "SHA256SUMS").is_file():
        pytest.fail(f"no qkv data folder at {root}; set QKV_DATA to the data folder (see README)")
    return root


@pytest.fixture
def copy_data(real_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Path]:
    """Copy some data files into a fresh folder and point QKV_DATA at it.

    ``copy_data("sst2/dev.tsv", sums=True)`` also writes those files' lines of SHA256SUMS.
    """

    def make(*relpaths: str, sums: bool = True) -> Path:
        root = tmp_path / "data"
        root.mkdir(exist_ok=True)
        for relpath in relpaths:
            (root / relpath).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(real_root / relpath, root / relpath)
            os.chmod(root / relpath, 0o644)  # the shared copies are read-only
        if sums:
            lines = [f"{FILES[r].sha256}  ./{r}\n" for r in relpaths]
            (root / "SHA256SUMS").write_text("".join(lines))
        monkeypatch.setenv("QKV_DATA", str(root))
        return root

    return make
