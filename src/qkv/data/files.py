"""Finding the data folder and handing out only files whose bytes are the pinned ones.

Lookup order for the data root: ``$QKV_DATA``; then ``<repo>/../shared/data``, with the
repository root found from this file's location; then ``./../shared/data`` from the current
directory. Every file is hashed once per process (and again only if its size or mtime
changes) and must match both the digest pinned in ``sources.FILES`` and the folder's
``SHA256SUMS`` line, when the folder has one.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Iterable

from qkv.data.sources import CORPUS_DIRS, FILES
from qkv.errors import DataError  # re-exported

ENV_VAR = "QKV_DATA"
SUMS_NAME = "SHA256SUMS"

# (resolved path, size, mtime_ns) of files already verified in this process.
_VERIFIED: set[tuple[str, int, int]] = set()


def _repo_root() -> Path:
    # src/qkv/data/files.py → parents: data, qkv, src, <repo root>
    return Path(__file__).resolve().parents[3]


def candidate_roots() -> list[Path]:
    """Every place ``data_root`` considers, in order of preference."""
    env = os.environ.get(ENV_VAR)
    if env:
        return [Path(env).expanduser()]
    return [_repo_root().parent / "shared" / "data", Path.cwd().parent / "shared" / "data"]


def data_root() -> Path:
    """The data folder: ``$QKV_DATA`` if set, else the first default that exists.

    When none exists the first candidate is returned, so errors can say where data was
    expected; loading from it then raises ``DataError``.
    """
    roots = candidate_roots()
    return next((root for root in roots if root.is_dir()), roots[0])


def check_choice(kind: str, value: str, allowed: Iterable[str]) -> None:
    """Raise ``DataError`` naming ``value`` and the allowed values unless it is one of them."""
    allowed = list(allowed)
    if value not in allowed:
        raise DataError(f"unknown {kind} {value!r}; allowed: {', '.join(map(repr, allowed))}")


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_sums(root: Path) -> dict[str, str]:
    """``SHA256SUMS`` of ``root`` as {relative path: hex digest}; empty if there is none."""
    sums_path = root / SUMS_NAME
    if not sums_path.is_file():
        return {}
    sums = {}
    for line in sums_path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            digest, name = line.split(maxsplit=1)
            sums[name.lstrip("*").removeprefix("./")] = digest.lower()
    return sums


def _how_to_get(relpath: str) -> str:
    folder = relpath.split("/")[0]
    corpus = next((name for name, d in CORPUS_DIRS.items() if d == folder), folder)
    return (f"Point {ENV_VAR} at a folder laid out like shared/data (export {ENV_VAR}=/path/to/data), "
            f"or fetch it with qkv.data.download({corpus!r}, dest) and set {ENV_VAR}=dest.")


def data_file(relpath: str, root: Path | None = None) -> Path:
    """Path of the pinned file ``relpath`` under the data root, after checking its bytes.

    Raises ``DataError`` when the file is missing (naming where it was looked for and how to
    get it) or when its SHA-256 differs from the pinned digest or from ``SHA256SUMS``.
    """
    if relpath not in FILES:
        raise DataError(f"{relpath!r} is not a known qkv data file")
    roots = [root] if root is not None else candidate_roots()
    path = next((r / relpath for r in roots if (r / relpath).is_file()), None)
    if path is None:
        looked = ", ".join(str(r / relpath) for r in roots)
        raise DataError(f"missing data file {relpath!r}; looked for it at: {looked}. {_how_to_get(relpath)}")
    verify(path, relpath)
    return path


def verify(path: Path, relpath: str) -> None:
    """Check ``path`` (the data file ``relpath``) against the pinned digest and SHA256SUMS."""
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key in _VERIFIED:
        return
    pinned = FILES[relpath].sha256
    listed = read_sums(path.parents[len(Path(relpath).parts) - 1]).get(relpath)
    if listed is not None and listed != pinned:
        raise DataError(
            f"{SUMS_NAME} next to {path} lists {listed} for {relpath!r}, but qkv pins {pinned}; "
            f"the folder holds a different or tampered copy. {_how_to_get(relpath)}")
    actual = sha256_of(path)
    if actual != pinned:
        raise DataError(
            f"checksum mismatch for {path}: SHA-256 is {actual}, expected {pinned}; the file is "
            f"corrupted or a different version. {_how_to_get(relpath)}")
    _VERIFIED.add(key)
