"""download(): file:// mirrors and archives only; no test touches the network."""

from __future__ import annotations

import shutil
import zipfile
from urllib.parse import urlparse

import pytest

import qkv.data.sources as sources
from qkv.data import DataError, download, load_multi30k, load_tatoeba
from qkv.data.files import read_sums
from qkv.data.sources import FILES, Source, corpus_files


def test_pinned_digests_agree_with_the_data_folder(real_root):
    """The two records of the expected bytes (code and SHA256SUMS) must name the same files."""
    assert read_sums(real_root) == {path: source.sha256 for path, source in FILES.items()}


def test_every_file_but_the_derived_one_has_a_public_https_home():
    homeless = {path for path, source in FILES.items() if source.url is None}
    assert homeless == {"tatoeba-zh-en/test.tsv"}
    for source in FILES.values():
        if source.url is not None:
            assert urlparse(source.url).scheme == "https"


def test_download_from_a_file_mirror(real_root, tmp_path, monkeypatch):
    mirror = tmp_path / "mirror"
    for relpath in corpus_files("multi30k"):
        (mirror / relpath).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(real_root / relpath, mirror / relpath)
    dest = tmp_path / "dest"
    written = download("multi30k", dest, base_url=mirror.as_uri())
    assert sorted(p.relative_to(dest).as_posix() for p in written) == corpus_files("multi30k")
    for relpath in corpus_files("multi30k"):
        assert (dest / relpath).read_bytes() == (real_root / relpath).read_bytes()
    assert set(read_sums(dest)) == set(corpus_files("multi30k"))
    monkeypatch.setenv("QKV_DATA", str(dest))
    assert len(load_multi30k("val")) == 1014


def test_download_refuses_bytes_that_do_not_match(real_root, tmp_path):
    mirror = tmp_path / "mirror" / "tinyshakespeare"
    mirror.mkdir(parents=True)
    (mirror / "input.txt").write_bytes((real_root / "tinyshakespeare/input.txt").read_bytes()[:-1])
    dest = tmp_path / "dest"
    with pytest.raises(DataError, match="SHA-256"):
        download("shakespeare", dest, base_url=(tmp_path / "mirror").as_uri())
    assert not (dest / "tinyshakespeare").exists() or not any((dest / "tinyshakespeare").iterdir())


def test_download_reports_an_unreachable_mirror(tmp_path):
    with pytest.raises(DataError, match="could not fetch"):
        download("shakespeare", tmp_path / "dest", base_url=(tmp_path / "empty").as_uri())


def test_download_extracts_from_a_zip_and_stops_at_a_file_without_home(real_root, tmp_path, monkeypatch):
    archive = tmp_path / "cmn-eng.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(real_root / "tatoeba-zh-en/cmn.txt", "cmn.txt")
        zf.writestr("_about.txt", "attribution")
    pinned = FILES["tatoeba-zh-en/cmn.txt"]
    monkeypatch.setitem(sources.FILES, "tatoeba-zh-en/cmn.txt", Source(pinned.sha256, archive.as_uri(), "cmn.txt"))
    dest = tmp_path / "dest"
    with pytest.raises(DataError, match="test.tsv"):
        download("tatoeba", dest)
    assert (dest / "tatoeba-zh-en/cmn.txt").read_bytes() == (real_root / "tatoeba-zh-en/cmn.txt").read_bytes()
    shutil.copyfile(real_root / "tatoeba-zh-en/test.tsv", dest / "tatoeba-zh-en/test.tsv")
    monkeypatch.setenv("QKV_DATA", str(dest))
    assert len(load_tatoeba("train")) + len(load_tatoeba("val")) == 29_155
