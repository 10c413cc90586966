"""The layers import only downwards: nn → models → generate/train → tasks → cli; loading a
checkpoint and decoding never import the trainer."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "qkv"
# package → the qkv packages it must not import (anything above it)
FORBIDDEN = {
    "errors.py": {"*"},
    "nn": {"models", "generate", "train", "tasks", "cli", "checkpoint", "data", "tokenize"},
    # models/ may import qkv.generate for one thing: GenerationMixin, so that `model.generate(...)`
    # works as Hugging Face users expect. generate/ never imports models/, so there is no cycle.
    "models": {"train", "tasks", "cli", "data", "tokenize"},
    "checkpoint.py": {"generate", "train", "tasks", "cli"},
    "generate": {"models", "train", "tasks", "cli", "data", "tokenize"},
    "data": {"models", "generate", "train", "tasks", "cli"},
    "tokenize": {"models", "generate", "train", "tasks", "cli"},
    "train": {"generate", "tasks", "cli"},
    "tasks": {"cli"},
    # the packages above the models they use: nothing below imports them, and they do not import the CLI
    "lab": {"cli"},
    "deploy": {"cli", "lab"},
    "interpret": {"cli", "lab", "deploy"},
}


def qkv_imports(path: Path) -> set[str]:
    """The top-level qkv packages a module imports (absolute ``qkv.x`` or relative)."""
    depth = len(path.relative_to(SRC).parts) - 1  # how many packages below qkv the file sits
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level == 0 and (node.module or "").startswith("qkv."):
                found.add(node.module.split(".")[1])
            elif node.level == depth + 1:  # resolves from qkv itself: `from ..train import x`, `from .. import y`
                found |= {node.module.split(".")[0]} if node.module else {a.name for a in node.names}
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[1] for a in node.names if a.name.startswith("qkv.")}
    return found


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layer_imports_nothing_above_it(layer):
    files = [SRC / layer] if layer.endswith(".py") else sorted((SRC / layer).rglob("*.py"))
    for path in files:
        imported = qkv_imports(path)
        bad = imported if FORBIDDEN[layer] == {"*"} else imported & FORBIDDEN[layer]
        assert not bad, f"{path.relative_to(SRC)} imports {sorted(bad)}"


def test_loading_and_decoding_do_not_import_the_trainer():
    code = ("import sys, qkv, qkv.generate, qkv.checkpoint; "
            "print(sorted(m for m in sys.modules if m.startswith(('qkv.train', 'qkv.tasks'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", out


def test_models_take_only_the_generation_mixin_from_generate():
    for path in sorted((SRC / "models").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 2 and node.module == "generate":
                assert [a.name for a in node.names] == ["GenerationMixin"], path.name
