"""One smoke run of every question, shared by the lab's tests (the runs take seconds together)."""

from __future__ import annotations

import pytest

from qkv.lab import base


@pytest.fixture(scope="session")
def smoke_results(tmp_path_factory):
    """{number: metrics} after running each answered question at smoke size into one folder."""
    root = tmp_path_factory.mktemp("lab")
    runs = {}
    for number in sorted(base.QUESTIONS):
        module = base.question(number)
        runs[number] = module.run("smoke", module.SMOKE_SEEDS, root / base.folder_name(number))
    return root, runs


@pytest.fixture(scope="session", autouse=True)
def _lab_cache(tmp_path_factory):
    """The shared trained models go to a temporary cache, never into the checkout's runs/."""
    mp = pytest.MonkeyPatch()
    mp.setenv("QKV_LAB_CACHE", str(tmp_path_factory.mktemp("lab-cache")))
    yield
    mp.undo()
