"""Finding the data folder, and refusing files that are missing or not the pinned bytes."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

import qkv.data.files as files
from qkv.data import DataError, corpus_texts, data_root, download, load_multi30k, load_shakespeare, load_sst2
from qkv.data.sources import FILES


def _corrupt(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[100] ^= 0x20  # flip the case of one letter: same size, different hash
    path.write_bytes(bytes(data))


def test_env_var_wins(tmp_path, monkeypatch):
    monkeypatch.setenv("QKV_DATA", str(tmp_path))
    assert data_root() == tmp_path


def test_default_root_is_shared_data_next_to_repo(real_root, monkeypatch):
    monkeypatch.delenv("QKV_DATA", raising=False)
    repo = Path(__file__).resolve().parents[2]
    expected = repo.parent / "shared" / "data"
    if not expected.is_dir():
        pytest.fail("this checkout has no ../shared/data; set QKV_DATA (see README)")
    assert data_root().resolve() == expected.resolve()


def test_falls_back_to_cwd(tmp_path, monkeypatch):
    monkeypatch.delenv("QKV_DATA", raising=False)
    monkeypatch.setattr(files, "_repo_root", lambda: tmp_path / "nowhere" / "repo")
    (tmp_path / "shared" / "data").mkdir(parents=True)
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    assert data_root().resolve() == (tmp_path / "shared" / "data").resolve()


def test_missing_file_says_where_and_how(tmp_path, monkeypatch):
    monkeypatch.setenv("QKV_DATA", str(tmp_path))
    with pytest.raises(DataError) as err:
        load_shakespeare("train")
    message = str(err.value)
    assert "tinyshakespeare/input.txt" in message
    assert str(tmp_path / "tinyshakespeare" / "input.txt") in message
    assert "QKV_DATA" in message and "download" in message


def test_good_copy_loads(copy_data, real_root):
    copy_data("sst2/dev.tsv")
    assert data_root() != real_root
    assert len(load_sst2("dev")) == 872


def test_corrupted_file_is_refused(copy_data):
    root = copy_data("tinyshakespeare/input.txt")
    _corrupt(root / "tinyshakespeare/input.txt")
    with pytest.raises(DataError, match="checksum mismatch") as err:
        load_shakespeare("val")
    assert str(root / "tinyshakespeare" / "input.txt") in str(err.value)
    assert FILES["tinyshakespeare/input.txt"].sha256 in str(err.value)


def test_tampered_sums_file_is_not_trusted(copy_data):
    """Corrupt the file AND rewrite SHA256SUMS to match it: the pinned digest still refuses it."""
    root = copy_data("tinyshakespeare/input.txt")
    path = root / "tinyshakespeare/input.txt"
    _corrupt(path)
    forged = hashlib.sha256(path.read_bytes()).hexdigest()
    (root / "SHA256SUMS").write_text(f"{forged}  ./tinyshakespeare/input.txt\n")
    with pytest.raises(DataError):
        load_shakespeare("train")


def test_sums_file_disagreeing_with_pin_is_reported(copy_data):
    root = copy_data("sst2/dev.tsv")
    (root / "SHA256SUMS").write_text(f"{'0' * 64}  ./sst2/dev.tsv\n")
    with pytest.raises(DataError, match="SHA256SUMS"):
        load_sst2("dev")


def test_each_file_hashed_once_until_it_changes(copy_data, monkeypatch):
    root = copy_data("sst2/dev.tsv")
    calls: list[Path] = []
    real_sha = files.sha256_of
    monkeypatch.setattr(files, "sha256_of", lambda p: calls.append(p) or real_sha(p))
    load_sst2("dev")
    load_sst2("dev")
    corpus_texts("sst2", "dev")
    assert len(calls) == 1
    _corrupt(root / "sst2/dev.tsv")  # new bytes (and mtime): must be checked again
    with pytest.raises(DataError):
        load_sst2("dev")
    assert len(calls) == 2


@pytest.mark.parametrize("call, allowed", [
    (lambda: load_multi30k("dev"), ["'train'", "'val'", "'test'"]),
    (lambda: load_sst2("test"), ["'train'", "'dev'"]),
    (lambda: corpus_texts("wikitext"), ["'multi30k'", "'tatoeba'", "'shakespeare'", "'sst2'", "'austen'"]),
    (lambda: download("wikitext", "/nonexistent"), ["'multi30k'", "'austen'"]),
])
def test_unknown_names_list_the_allowed_ones(call, allowed):
    with pytest.raises(DataError) as err:
        call()
    assert all(name in str(err.value) for name in allowed)
