"""Fetch a corpus from its public home (or a mirror) into a data folder, checksum first.

Each file is written to a temporary name, hashed, and renamed into place only when its
SHA-256 equals the digest pinned in ``sources.FILES``: a half-written or different file never
sits where the loaders would find it.
"""

from __future__ import annotations

import hashlib
import io
import os
import urllib.request
import zipfile
from pathlib import Path

from qkv.data.files import SUMS_NAME, DataError, check_choice, read_sums
from qkv.data.sources import CORPUS_DIRS, FILES, corpus_files

# Some hosts refuse urllib's default agent.
_HEADERS = {"User-Agent": "qkv-data/0.1 (Python urllib)"}


def _fetch(url: str) -> bytes:
    """Bytes at ``url`` (http(s) or file://)."""
    request = urllib.request.Request(url, headers=_HEADERS)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.read()
    except OSError as err:  # URLError subclasses OSError
        raise DataError(f"could not fetch {url}: {err}") from err


def _unzip(blob: bytes, member: str, url: str) -> bytes:
    with zipfile.ZipFile(io.BytesIO(blob)) as archive:
        try:
            return archive.read(member)
        except KeyError as err:
            raise DataError(f"{url} has no member {member!r}; it holds {archive.namelist()}") from err


def _write_verified(data: bytes, target: Path, relpath: str, url: str) -> None:
    pinned = FILES[relpath].sha256
    actual = hashlib.sha256(data).hexdigest()
    if actual != pinned:
        raise DataError(
            f"downloaded {relpath!r} from {url} has SHA-256 {actual}, expected {pinned}; "
            "the upstream file changed or the transfer was corrupted. Nothing was written; "
            "copy the pinned file instead (e.g. from a qkv shared/data folder).")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".part")
    partial.write_bytes(data)
    os.replace(partial, target)


def _update_sums(dest: Path, relpaths: list[str]) -> None:
    sums = read_sums(dest)
    sums.update({relpath: FILES[relpath].sha256 for relpath in relpaths})
    lines = [f"{digest}  ./{name}\n" for name, digest in sorted(sums.items())]
    (dest / SUMS_NAME).write_text("".join(lines), encoding="utf-8")


def download(name: str, dest: str | Path, *, base_url: str | None = None) -> list[Path]:
    """Download every file of corpus ``name`` into ``dest`` (laid out like shared/data).

    Args:
        name: one of 'multi30k', 'tatoeba', 'shakespeare', 'sst2', 'austen'.
        dest: the data root to fill; point ``QKV_DATA`` at it afterwards.
        base_url: a mirror laid out like shared/data (e.g. ``file:///mnt/data`` or an HTTP
            folder); file ``rel`` is then fetched from ``{base_url}/{rel}``. Default: each
            file's public home from ``sources.FILES``.

    Returns the written paths. Raises ``DataError`` on a checksum mismatch, an unreachable
    URL, or a file with no public home (``tatoeba-zh-en/test.tsv``) when no mirror is given;
    files fetched before the failure stay in place, verified.
    """
    check_choice("corpus", name, CORPUS_DIRS)
    dest = Path(dest)
    archives: dict[str, bytes] = {}  # one fetch per zip even when it holds several files
    written: list[Path] = []
    for relpath in corpus_files(name):
        source = FILES[relpath]
        if base_url is not None:
            url, member = f"{base_url.rstrip('/')}/{relpath}", None
        elif source.url is None:
            raise DataError(f"{relpath!r} has no public download; copy it from a qkv data folder "
                            "or pass base_url= a mirror that holds it")
        else:
            url, member = source.url, source.member
        if url not in archives:
            archives[url] = _fetch(url)
        data = archives[url] if member is None else _unzip(archives[url], member, url)
        _write_verified(data, dest / relpath, relpath, url)
        _update_sums(dest, [relpath])
        written.append(dest / relpath)
    return written
